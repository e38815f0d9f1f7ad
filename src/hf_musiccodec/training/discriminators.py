"""GAN discriminators for neural audio codec training (SoundStream / EnCodec / DAC).

Every discriminator here takes a waveform ``(B, C, T)`` and returns a list with one
entry per sub-discriminator::

    [(logits, [feature_map, ...]), ...]

``logits`` is the last (non-activated) conv output of a sub-discriminator, any
shape with batch first; ``feature_maps`` are the activations of all layers before
it (used by the feature matching loss). Lists from several discriminators can be
concatenated, which is what :class:`CombinedDiscriminator` does.

Channels: a discriminator built with ``in_channels=1`` that gets a C-channel input
folds the channels into the batch (as DAC does for stereo), so its logits have
batch ``B * C``. Build it with ``in_channels=C`` to look at all channels jointly
(EnCodec's stereo discriminator).

Implemented:

* :class:`MultiPeriodDiscriminator` - HiFi-GAN / DAC MPD: the waveform reshaped to
  ``(T / p, p)`` and scanned by 2-D convs with kernels ``(k, 1)``.
* :class:`MultiScaleSTFTDiscriminator` - EnCodec's MS-STFTD: 2-D convs over the real
  and imaginary parts of normalised complex STFTs at several resolutions.
* :class:`MultiBandMultiScaleSTFTDiscriminator` - DAC's multi-resolution
  discriminator (MRD): complex STFTs split into frequency bands with a conv stack
  per band, joined before the output conv.
"""

from __future__ import annotations

import inspect
from typing import Iterable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from hf_musiccodec.audio.spectral import stft

__all__ = [
    "DiscriminatorOutput",
    "PeriodDiscriminator",
    "MultiPeriodDiscriminator",
    "STFTDiscriminator",
    "MultiScaleSTFTDiscriminator",
    "BandSTFTDiscriminator",
    "MultiBandMultiScaleSTFTDiscriminator",
    "CombinedDiscriminator",
    "build_discriminator",
    "DAC_BANDS",
]

# list of (logits, feature_maps), one per sub-discriminator
DiscriminatorOutput = list[tuple[torch.Tensor, list[torch.Tensor]]]

# DAC's frequency bands, as fractions of the number of STFT bins
DAC_BANDS: tuple[tuple[float, float], ...] = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))


# ----------------------------------------------------------------------------- helpers


def _normed(module: nn.Module, norm: str) -> nn.Module:
    """A conv with weight norm (the codecs' implementation: ``weight_g`` / ``weight_v``), spectral
    norm (torch's parametrization) or nothing."""
    if norm == "weight_norm":
        from hf_musiccodec.codecs.modules.weight_norm import weight_norm

        return weight_norm(module)
    if norm == "spectral_norm":
        return nn.utils.parametrizations.spectral_norm(module)
    if norm in ("none", None, ""):
        return module
    raise ValueError(f"norm must be 'weight_norm', 'spectral_norm' or 'none', got {norm!r}")


def _conv2d(
    in_ch: int,
    out_ch: int,
    kernel: tuple[int, int],
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    norm: str = "weight_norm",
) -> nn.Module:
    # "same" padding along both axes (for odd kernels)
    padding = ((kernel[0] - 1) * dilation[0] // 2, (kernel[1] - 1) * dilation[1] // 2)
    return _normed(nn.Conv2d(in_ch, out_ch, kernel, stride=stride, dilation=dilation, padding=padding), norm)


def _fold_channels(x: torch.Tensor, in_channels: int) -> torch.Tensor:
    """(B, C, T) -> (B', in_channels, T), folding channels into batch if in_channels == 1."""
    if x.dim() == 2:
        x = x.unsqueeze(1)
    if x.dim() != 3:
        raise ValueError(f"expected a waveform (B, C, T), got shape {tuple(x.shape)}")
    b, c, t = x.shape
    if c == in_channels:
        return x
    if in_channels == 1:
        return x.reshape(b * c, 1, t)
    raise ValueError(f"discriminator built for {in_channels} channels got {c}")


def _complex_to_image(spec: torch.Tensor) -> torch.Tensor:
    """(B, C, F, frames) complex -> (B, 2C, frames, F) real: [re..., im...] channels, time x freq."""
    return torch.cat([spec.real, spec.imag], dim=1).transpose(-1, -2)


# ----------------------------------------------------------------------------- MPD


class PeriodDiscriminator(nn.Module):
    """One HiFi-GAN / DAC period discriminator.

    Args:
        period: the waveform is padded to a multiple of ``period`` and reshaped to
            ``(T / period, period)``; convs run along the first axis only.
        in_channels: audio channels seen jointly (see module docstring).
        channels: output channels of the conv stack (the last conv has stride 1), or
            an int ``c`` for HiFi-GAN/DAC's widths ``(c, 4c, 16c, 32c, 32c)``
            (default 32: 32, 128, 512, 1024, 1024).
        kernel_size: kernel length along time.
        stride: stride along time of all but the last conv of the stack.
        negative_slope: LeakyReLU slope.
        norm: ``"weight_norm"`` (default), ``"spectral_norm"`` or ``"none"``.
    """

    def __init__(
        self,
        period: int,
        in_channels: int = 1,
        channels: Union[int, Sequence[int]] = 32,
        kernel_size: int = 5,
        stride: int = 3,
        negative_slope: float = 0.1,
        norm: str = "weight_norm",
    ):
        super().__init__()
        self.period = int(period)
        self.in_channels = in_channels
        self.negative_slope = negative_slope
        if isinstance(channels, int):
            channels = [channels * m for m in (1, 4, 16, 32, 32)]
        convs = []
        prev = in_channels
        for i, ch in enumerate(channels):
            s = stride if i < len(channels) - 1 else 1
            convs.append(_conv2d(prev, ch, (kernel_size, 1), (s, 1), norm=norm))
            prev = ch
        self.convs = nn.ModuleList(convs)
        self.conv_post = _conv2d(prev, 1, (3, 1), norm=norm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = _fold_channels(x, self.in_channels)
        t = x.shape[-1]
        pad = (-t) % self.period
        if pad:
            x = F.pad(x, (0, pad), mode="reflect" if pad < t else "constant")
        x = x.reshape(x.shape[0], x.shape[1], -1, self.period)
        fmaps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), self.negative_slope)
            fmaps.append(x)
        return self.conv_post(x), fmaps


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN / DAC multi-period discriminator.

    Args:
        periods: one :class:`PeriodDiscriminator` per period (prime periods avoid overlap).
        **kwargs: forwarded to every :class:`PeriodDiscriminator` (``in_channels``,
            ``channels``, ``kernel_size``, ``stride``, ``negative_slope``, ``norm``).
    """

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), **kwargs):
        super().__init__()
        self.periods = tuple(periods)
        self.discriminators = nn.ModuleList([PeriodDiscriminator(p, **kwargs) for p in self.periods])

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        return [d(x) for d in self.discriminators]


# ----------------------------------------------------------------------------- EnCodec MS-STFTD


class STFTDiscriminator(nn.Module):
    """One EnCodec STFT discriminator on the complex spectrogram.

    The input of the convs is ``(B, 2 * in_channels, frames, freq)`` (real and
    imaginary parts), from a normalised, non-centred STFT.

    Args:
        n_fft: FFT size.
        hop_length: hop (default ``n_fft // 4``).
        win_length: window length (default ``n_fft``).
        in_channels: audio channels seen jointly.
        filters: channels of the first conv.
        max_filters: cap on channels.
        filters_scale: channel growth factor per dilated conv (EnCodec: 1).
        kernel_size: (time, freq) kernel of the main convs.
        dilations: time dilations of the strided convs, one conv each.
        stride: (time, freq) stride of the dilated convs (EnCodec downsamples freq only).
        negative_slope: LeakyReLU slope (EnCodec: 0.2).
        normalized: use ``n_fft ** -0.5`` STFT normalisation (EnCodec: True).
        norm: ``"weight_norm"`` (default), ``"spectral_norm"`` or ``"none"``.
    """

    def __init__(
        self,
        n_fft: int = 1024,
        hop_length: Optional[int] = None,
        win_length: Optional[int] = None,
        in_channels: int = 1,
        filters: int = 32,
        max_filters: int = 1024,
        filters_scale: int = 1,
        kernel_size: tuple[int, int] = (3, 9),
        dilations: Sequence[int] = (1, 2, 4),
        stride: tuple[int, int] = (1, 2),
        negative_slope: float = 0.2,
        normalized: bool = True,
        norm: str = "weight_norm",
    ):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length or n_fft // 4
        self.win_length = win_length or n_fft
        self.in_channels = in_channels
        self.normalized = normalized
        self.negative_slope = negative_slope
        kernel_size = tuple(kernel_size)
        prev = min(filters, max_filters)
        convs = [_conv2d(2 * in_channels, prev, kernel_size, norm=norm)]
        for i, d in enumerate(dilations):
            ch = min(filters_scale ** (i + 1) * filters, max_filters)
            convs.append(_conv2d(prev, ch, kernel_size, tuple(stride), (d, 1), norm=norm))
            prev = ch
        ch = min(filters_scale ** (len(dilations) + 1) * filters, max_filters)
        square = (kernel_size[0], kernel_size[0])
        convs.append(_conv2d(prev, ch, square, norm=norm))
        self.convs = nn.ModuleList(convs)
        self.conv_post = _conv2d(ch, 1, square, norm=norm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = _fold_channels(x, self.in_channels)
        spec = stft(
            x, self.n_fft, self.hop_length, self.win_length, center=False, normalized=self.normalized
        )
        z = _complex_to_image(spec)
        fmaps = []
        for conv in self.convs:
            z = F.leaky_relu(conv(z), self.negative_slope)
            fmaps.append(z)
        return self.conv_post(z), fmaps


class MultiScaleSTFTDiscriminator(nn.Module):
    """EnCodec's multi-scale STFT discriminator (MS-STFTD).

    Args:
        n_ffts: FFT size of each sub-discriminator.
        hop_lengths: hops (default ``n_fft // 4`` each).
        win_lengths: window lengths (default ``n_fft`` each).
        channels: ``filters`` of every :class:`STFTDiscriminator` (EnCodec: 32).
        **kwargs: forwarded to every :class:`STFTDiscriminator`.
    """

    def __init__(
        self,
        n_ffts: Sequence[int] = (2048, 1024, 512, 256, 128),
        hop_lengths: Optional[Sequence[int]] = None,
        win_lengths: Optional[Sequence[int]] = None,
        channels: int = 32,
        **kwargs,
    ):
        super().__init__()
        hop_lengths = hop_lengths or [n // 4 for n in n_ffts]
        win_lengths = win_lengths or list(n_ffts)
        if not len(n_ffts) == len(hop_lengths) == len(win_lengths):
            raise ValueError("n_ffts, hop_lengths and win_lengths must have the same length")
        self.discriminators = nn.ModuleList(
            [
                STFTDiscriminator(n, h, w, filters=channels, **kwargs)
                for n, h, w in zip(n_ffts, hop_lengths, win_lengths)
            ]
        )

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        return [d(x) for d in self.discriminators]


# ----------------------------------------------------------------------------- DAC MRD


class BandSTFTDiscriminator(nn.Module):
    """One DAC multi-band STFT discriminator (an "MRD" scale).

    The complex STFT ``(B, 2 * in_channels, frames, freq)`` is split along frequency
    into ``bands``; each band goes through its own conv stack (which halves the
    frequency axis three times), the band outputs are concatenated along
    frequency and one output conv gives the logits.

    Args:
        window_length: STFT window and FFT size.
        hop_factor: hop = ``int(window_length * hop_factor)``.
        bands: (start, end) fractions of the ``window_length // 2 + 1`` bins.
        channels: channels of every conv (DAC: 32).
        in_channels: audio channels seen jointly.
        negative_slope: LeakyReLU slope (DAC: 0.1).
        norm: ``"weight_norm"`` (default), ``"spectral_norm"`` or ``"none"``.
    """

    def __init__(
        self,
        window_length: int = 2048,
        hop_factor: float = 0.25,
        bands: Sequence[tuple[float, float]] = DAC_BANDS,
        channels: int = 32,
        in_channels: int = 1,
        negative_slope: float = 0.1,
        norm: str = "weight_norm",
    ):
        super().__init__()
        self.window_length = window_length
        self.hop_length = max(1, int(window_length * hop_factor))
        self.in_channels = in_channels
        self.negative_slope = negative_slope
        n_bins = window_length // 2 + 1
        self.bands = [(int(lo * n_bins), int(hi * n_bins)) for lo, hi in bands]
        if any(hi <= lo for lo, hi in self.bands):
            raise ValueError(f"empty frequency band in {self.bands} for window_length={window_length}")

        def stack() -> nn.ModuleList:
            return nn.ModuleList(
                [
                    _conv2d(2 * in_channels, channels, (3, 9), norm=norm),
                    _conv2d(channels, channels, (3, 9), (1, 2), norm=norm),
                    _conv2d(channels, channels, (3, 9), (1, 2), norm=norm),
                    _conv2d(channels, channels, (3, 9), (1, 2), norm=norm),
                    _conv2d(channels, channels, (3, 3), norm=norm),
                ]
            )

        self.band_convs = nn.ModuleList([stack() for _ in self.bands])
        self.conv_post = _conv2d(channels, 1, (3, 3), norm=norm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = _fold_channels(x, self.in_channels)
        z = _complex_to_image(stft(x, self.window_length, self.hop_length, center=True))
        fmaps, outs = [], []
        for (lo, hi), convs in zip(self.bands, self.band_convs):
            h = z[..., lo:hi]
            for conv in convs:
                h = F.leaky_relu(conv(h), self.negative_slope)
                fmaps.append(h)
            outs.append(h)
        return self.conv_post(torch.cat(outs, dim=-1)), fmaps


class MultiBandMultiScaleSTFTDiscriminator(nn.Module):
    """DAC's multi-resolution, multi-band complex STFT discriminator.

    Args:
        window_lengths: one :class:`BandSTFTDiscriminator` per window length.
        hop_factor: hop as a fraction of the window.
        bands: frequency band split (fractions of the bins), shared by all scales.
        channels: conv channels.
        **kwargs: forwarded to every :class:`BandSTFTDiscriminator` (``in_channels``,
            ``negative_slope``, ``norm``).
    """

    def __init__(
        self,
        window_lengths: Sequence[int] = (2048, 1024, 512),
        hop_factor: float = 0.25,
        bands: Sequence[tuple[float, float]] = DAC_BANDS,
        channels: int = 32,
        **kwargs,
    ):
        super().__init__()
        self.discriminators = nn.ModuleList(
            [BandSTFTDiscriminator(w, hop_factor, bands, channels, **kwargs) for w in window_lengths]
        )

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        return [d(x) for d in self.discriminators]


# ----------------------------------------------------------------------------- combination


class CombinedDiscriminator(nn.Module):
    """Run several discriminators and concatenate their output lists.

    Args:
        discriminators: modules returning :data:`DiscriminatorOutput` (or a single
            ``(logits, feature_maps)`` tuple).
        normalize_input: DAC's preprocessing: remove the DC offset and peak-normalise
            every item to 0.8 before discriminating (makes the GAN loudness invariant).
    """

    def __init__(self, discriminators: Iterable[nn.Module], normalize_input: bool = False):
        super().__init__()
        self.discriminators = nn.ModuleList(list(discriminators))
        self.normalize_input = normalize_input

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        if self.normalize_input:
            x = x - x.mean(dim=-1, keepdim=True)
            x = 0.8 * x / (x.abs().amax(dim=-1, keepdim=True) + 1e-9)
        out: DiscriminatorOutput = []
        for d in self.discriminators:
            o = d(x)
            out.extend([o] if isinstance(o, tuple) else o)
        return out


_REGISTRY: dict[str, type[nn.Module]] = {
    "mpd": MultiPeriodDiscriminator,
    "multi_period": MultiPeriodDiscriminator,
    "multiperioddiscriminator": MultiPeriodDiscriminator,
    "msstftd": MultiScaleSTFTDiscriminator,
    "ms_stft": MultiScaleSTFTDiscriminator,
    "ms_stftd": MultiScaleSTFTDiscriminator,
    "multi_scale_stft": MultiScaleSTFTDiscriminator,
    "multiscalestftdiscriminator": MultiScaleSTFTDiscriminator,
    "mrd": MultiBandMultiScaleSTFTDiscriminator,
    "mbmsstftd": MultiBandMultiScaleSTFTDiscriminator,
    "multi_band": MultiBandMultiScaleSTFTDiscriminator,
    "multi_band_multi_scale_stft": MultiBandMultiScaleSTFTDiscriminator,
    "multibandmultiscalestftdiscriminator": MultiBandMultiScaleSTFTDiscriminator,
}

# presets: the discriminator sets of the papers (DAC's MSD waveform discriminator is not included)
_PRESETS: dict[str, tuple[list[str], bool]] = {
    "dac": (["mpd", "mrd"], True),
    "encodec": (["msstftd"], False),
    "hifigan": (["mpd"], False),
}


def _options(cls: type) -> set[str]:
    """Keyword names the constructor (or the sub-discriminator it forwards to, less the arguments
    it sets itself) accepts."""
    sub, set_by_cls = {
        MultiPeriodDiscriminator: (PeriodDiscriminator, {"period"}),
        MultiScaleSTFTDiscriminator: (STFTDiscriminator, {"n_fft", "hop_length", "win_length", "filters"}),
        MultiBandMultiScaleSTFTDiscriminator: (BandSTFTDiscriminator, {"window_length"}),
    }.get(cls, (None, set()))
    names = set(inspect.signature(cls.__init__).parameters)
    if sub is not None:
        names |= set(inspect.signature(sub.__init__).parameters) - set_by_cls
    return names - {"self", "kwargs"}


def _accepted_kwargs(cls: type, kwargs: dict) -> dict:
    """Keep the kwargs the constructor (or the sub-discriminator it forwards to) accepts."""
    names = _options(cls)
    return {k: v for k, v in kwargs.items() if k in names}


def _key(name: str) -> str:
    return name.lower().replace("-", "_").replace(" ", "_")


def discriminator_options(name_or_list) -> set[str]:
    """The shared keyword options that some discriminator of ``build_discriminator(name_or_list)``
    accepts. ``build_discriminator`` hands each constructor only its own options, so a config checks
    its keys against this set: a misspelled option would otherwise vanish silently."""
    if isinstance(name_or_list, nn.Module):
        return set()
    if isinstance(name_or_list, str):
        key = _key(name_or_list)
        if key in _PRESETS:
            return set().union(*(discriminator_options(n) for n in _PRESETS[key][0]), {"normalize_input"})
        if key not in _REGISTRY:
            raise ValueError(f"unknown discriminator {name_or_list!r}; known: {sorted(set(_REGISTRY) | set(_PRESETS))}")
        return _options(_REGISTRY[key]) | {"normalize_input"}
    names = [item["name"] if isinstance(item, dict) else item[0] if isinstance(item, tuple) else item
             for item in name_or_list]
    return set().union({"normalize_input"}, *(discriminator_options(n) for n in names))


def build_discriminator(
    name_or_list: Union[str, nn.Module, Sequence[Union[str, dict, tuple, nn.Module]]],
    **kwargs,
) -> nn.Module:
    """Build a discriminator from a name, a preset or a list.

    Names: ``"mpd"``, ``"msstftd"`` (EnCodec), ``"mrd"`` / ``"mbmsstftd"`` (DAC's
    multi-band STFT) and aliases. Presets: ``"dac"`` (MPD + MRD with DAC input
    normalisation), ``"encodec"`` (MS-STFTD), ``"hifigan"`` (MPD).

    A list gives a :class:`CombinedDiscriminator`; its items are names, modules,
    ``(name, kwargs)`` pairs or ``{"name": ..., **kwargs}`` dicts (item kwargs
    override the shared ones). ``kwargs`` are shared and each constructor only
    receives the ones it accepts, so e.g. ``in_channels=2`` reaches all and
    ``periods=`` only the MPD. ``normalize_input=`` sets the combined module's
    input normalisation.
    """
    normalize = kwargs.pop("normalize_input", None)
    if isinstance(name_or_list, nn.Module):
        return name_or_list
    if isinstance(name_or_list, str):
        key = _key(name_or_list)
        if key in _PRESETS:
            names, norm_default = _PRESETS[key]
            subs = [build_discriminator(n, **kwargs) for n in names]
            return CombinedDiscriminator(subs, normalize_input=norm_default if normalize is None else normalize)
        if key not in _REGISTRY:
            known = sorted(set(_REGISTRY) | set(_PRESETS))
            raise ValueError(f"unknown discriminator {name_or_list!r}; known: {known}")
        cls = _REGISTRY[key]
        module = cls(**_accepted_kwargs(cls, kwargs))
        if normalize:
            module = CombinedDiscriminator([module], normalize_input=True)
        return module
    subs = []
    for item in name_or_list:
        if isinstance(item, dict):
            item = dict(item)
            subs.append(build_discriminator(item.pop("name"), **{**kwargs, **item}))
        elif isinstance(item, tuple):
            name, item_kwargs = item
            subs.append(build_discriminator(name, **{**kwargs, **item_kwargs}))
        else:
            subs.append(build_discriminator(item, **kwargs))
    return CombinedDiscriminator(subs, normalize_input=bool(normalize))
