"""Encode and decode files of any length in bounded memory, with results equal to whole-file
processing.

Non-causal codecs (DAC): the signal is cut into windows of latent frames. Each window is
extended on both sides by the receptive field of the encoder (in samples) or decoder (in
frames), plus a safety margin, and only its centre frames are kept. A kept frame sees exactly
the samples it sees in a whole-file pass (windows start on hop boundaries, so every strided
layer keeps its phase, and the signal's true ends are processed with the same padding as
offline), so codes are identical and audio agrees to float rounding. Memory holds one window's
activations, the input, the codes and the output.

Causal SEANet codecs (EnCodec 24 kHz, SoundStream): their LSTM gives them an unbounded
receptive field, so windows would not be exact; they are run through the streaming encoder and
decoder instead (``streaming.py``), which is exact and bounded.

A codec whose encoder streams but whose decoder does not (a causal SEANet encoder with an
``"istft"`` decoder) streams the encoder and decodes in windows.

Chunked codecs (EnCodec 48 kHz): ``encode`` already works chunk by chunk (1 s chunks with
1 % overlap, each with its own scale) and ``decode`` overlap-adds the chunks into the output as
it decodes them, so the long-file functions just call them.

The receptive field is computed from the layer configuration (``receptive_field``) by mapping
an output interval back through every convolution, and checked against a gradient probe in
the tests.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .modules.istft_decoder import InverseSTFT
from .modules.seanet import SConv1d, SConvTranspose1d, SLSTM
from .modules.stft_encoder import LogMagnitudeSTFT
from .modules.weight_norm import WeightNormConvTranspose1d
from .outputs import MusicCodecDecoderOutput, MusicCodecEncoderOutput

SAFETY_FRAMES = 2


def _layer_specs(module: nn.Module) -> list[tuple]:
    """The convolutions of ``module`` in forward order: ("conv", kernel, stride, dilation, left
    padding), ("convT", kernel, stride, left trim) or ("lstm",). Residual branches are in series
    with their main path here, which can only widen the computed field (a 1x1 shortcut adds none)."""
    specs, inside = [], set()
    for m in module.modules():
        if id(m) in inside:
            continue
        if isinstance(m, SConv1d):
            inside.update(id(c) for c in m.modules())
            left = m.padding_total if m.causal else m.padding_total - m.padding_total // 2
            specs.append(("conv", m.conv.kernel_size[0], m.stride, m.conv.dilation[0], left))
        elif isinstance(m, SConvTranspose1d):
            inside.update(id(c) for c in m.modules())
            specs.append(("convT", m.conv.kernel_size[0], m.conv.stride[0], m.trim[0]))
        elif isinstance(m, (nn.ConvTranspose1d, WeightNormConvTranspose1d)):
            specs.append(("convT", m.kernel_size[0], m.stride[0], m.padding[0]))
        elif isinstance(m, nn.Conv1d):
            specs.append(("conv", m.kernel_size[0], m.stride[0], m.dilation[0], m.padding[0]))
        elif isinstance(m, LogMagnitudeSTFT):  # framing = a conv of kernel n_fft at stride hop
            specs.append(("conv", m.n_fft, m.hop_length, 1, m.padding))
        elif isinstance(m, InverseSTFT):  # overlap-add of n_fft-long frames at hop, trimmed "same"
            specs.append(("convT", m.n_fft, m.hop_length, (m.n_fft - m.hop_length) // 2))
        elif isinstance(m, (SLSTM, nn.LSTM)):
            inside.update(id(c) for c in m.modules())
            specs.append(("lstm",))
    return specs


def _back(specs: list[tuple], lo: int, hi: int) -> tuple[float, float]:
    """Input interval that output interval [lo, hi] depends on."""
    for spec in reversed(specs):
        if spec[0] == "lstm":
            return -math.inf, math.inf
        if spec[0] == "conv":
            _, k, s, d, left = spec
            lo, hi = lo * s - left, hi * s - left + (k - 1) * d
        else:
            _, k, s, trim = spec
            lo, hi = -((-(lo + trim - k + 1)) // s), (hi + trim) // s
    return lo, hi


def receptive_field(model) -> dict:
    """Context each output needs on each side.

    ``encoder``: (left, right) input samples beyond the frame's own hop span that a latent
    frame depends on; ``decoder``: (left, right) latent frames beyond a sample's own frame that
    an output sample depends on. ``math.inf`` for recurrent models.
    """
    hop = model.config.hop_length
    far = 10_000  # a frame far from both ends: the field is the same for every such frame
    enc = _layer_specs(model.encoder)
    lo, hi = _back(enc, far, far)
    encoder = (far * hop - lo, hi - (far * hop + hop - 1))
    dec = _layer_specs(model.decoder)
    left = right = 0
    for phase in range(hop):
        lo, hi = _back(dec, far * hop + phase, far * hop + phase)
        left, right = max(left, far - lo), max(right, hi - far)
    return {"encoder": encoder, "decoder": (left, right)}


def margins(model, safety: int = SAFETY_FRAMES, parts=("encoder", "decoder")) -> dict:
    """Frames of context to add on each side of an encode / decode window, for each of ``parts``."""
    field = receptive_field(model)
    hop = model.config.hop_length
    out = {}
    for part in parts:
        left, right = field[part]
        if math.inf in (left, right):
            raise ValueError(f"this codec's {part} has a recurrent layer: its receptive field is unbounded")
        scale = hop if part == "encoder" else 1  # the encoder's field is in samples
        out[part] = (math.ceil(max(left, 0) / scale) + safety, math.ceil(max(right, 0) / scale) + safety)
    return out


def _mode(model, part: str) -> str:
    """How ``part`` ("encoder" or "decoder") of the codec runs on a long signal."""
    from .streaming import streaming_unsupported_reason

    cfg = model.config
    if cfg.chunk_length is not None:
        return "chunked"
    if streaming_unsupported_reason(cfg, part) is None:
        return "stream"
    if any(spec[0] == "lstm" for spec in _layer_specs(getattr(model, part))):
        raise ValueError(f"this codec's {part} is neither causal nor chunked and has an LSTM: it cannot be processed "
                         "in exact bounded-memory windows; use encode / decode")
    return "windows"


def _chunk_frames(model, chunk_seconds: float) -> int:
    if chunk_seconds <= 0:
        raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
    return max(1, round(chunk_seconds * model.config.frame_rate))


@torch.no_grad()
def encode_long(model, input_values, padding_mask=None, bandwidth=None, chunk_seconds: float = 5.0):
    """``model.encode`` of a signal of any length in bounded memory; same output."""
    mode = _mode(model, "encoder")
    if mode == "chunked":
        return model.encode(input_values, padding_mask=padding_mask, bandwidth=bandwidth, return_dict=True)
    num_quantizers = model.num_quantizers_for_bandwidth(bandwidth)
    x = model._check_input(input_values)
    if padding_mask is not None:
        x = x * padding_mask.view(padding_mask.shape[0], -1, padding_mask.shape[-1]).to(x.dtype)
    step = _chunk_frames(model, chunk_seconds) * model.config.hop_length
    if mode == "stream":
        outputs = []
        with model.streaming() as stream:
            for start in range(0, x.shape[-1], step):
                outputs.append(model.encode(x[..., start: start + step], bandwidth=bandwidth))
        outputs.append(stream.flushed)
        key = "latents" if model.quantizer is None else "audio_codes"
        stacked = torch.cat([getattr(o, key) for o in outputs], dim=-1)
        codes, latents = (None, stacked) if model.quantizer is None else (stacked, None)
        return MusicCodecEncoderOutput(codes, [None], 0, latents)

    hop = model.config.hop_length
    length = x.shape[-1]
    frames = math.ceil(length / hop)
    chunk = step // hop
    left, right = margins(model, parts=("encoder",))["encoder"]
    pieces = []
    for a in range(0, frames, chunk):
        b = min(a + chunk, frames)
        ws, we = max(0, a - left), min(frames, b + right)
        window = x[..., ws * hop: length if we == frames else we * hop]
        if we == frames:  # only the window at the end gets the end padding (no copy of the whole input)
            window = model._pad_to_hop(window)
        latents = model.encoder(window)[..., a - ws: b - ws]
        pieces.append(latents if model.quantizer is None else model.quantizer.encode(latents, num_quantizers))
    stacked = torch.cat(pieces, dim=-1)[None]
    codes, latents = (None, stacked) if model.quantizer is None else (stacked, None)
    return MusicCodecEncoderOutput(codes, [None], 0, latents)


@torch.no_grad()
def decode_long(model, audio_codes=None, audio_scales=None, padding_mask=None, last_frame_pad_length=None,
                latents=None, chunk_seconds: float = 5.0):
    """``model.decode`` of codes of any length in bounded memory; same output (to float rounding)."""
    mode = _mode(model, "decoder")
    if mode == "chunked":
        return model.decode(audio_codes, audio_scales, padding_mask=padding_mask, return_dict=True,
                            last_frame_pad_length=last_frame_pad_length, latents=latents)
    frames_all = model.decoder_frames(audio_codes, latents, "decode_long")
    if frames_all.shape[0] != 1:
        raise ValueError(f"this codec does not chunk its input: expected 1 chunk of codes, got {frames_all.shape[0]}")
    frames_all = frames_all[0]
    if audio_scales is not None and any(s is not None for s in audio_scales):
        raise ValueError("this codec has no per-chunk scales")
    if last_frame_pad_length:
        frames_all = frames_all[..., :-last_frame_pad_length]
    if model.quantizer is not None and frames_all.dtype.is_floating_point:
        raise ValueError(f"audio_codes must be integers, got {frames_all.dtype}")
    chunk = _chunk_frames(model, chunk_seconds)
    total = frames_all.shape[-1]
    hop = model.config.hop_length

    def to_latents(part):
        return part.to(model.dtype) if model.quantizer is None else model.quantizer.decode(part)

    if mode == "stream":
        outputs = []
        with model.streaming() as stream:
            for a in range(0, total, chunk):
                part = frames_all[..., a: a + chunk]
                out = model.decode(latents=part) if model.quantizer is None else model.decode(audio_codes=part)
                outputs.append(out.audio_values)
        if stream.flushed is not None and stream.flushed.audio_values is not None:
            outputs.append(stream.flushed.audio_values)
        audio = torch.cat(outputs, dim=-1)
    else:
        left, right = margins(model, parts=("decoder",))["decoder"]
        batch = frames_all.shape[0]
        audio = None
        for a in range(0, total, chunk):
            b = min(a + chunk, total)
            ws, we = max(0, a - left), min(total, b + right)
            piece = model._full_length(model.decoder(to_latents(frames_all[..., ws:we])), we - ws)
            if audio is None:  # the output is the only full-length tensor
                audio = piece.new_empty(batch, piece.shape[1], total * hop)
            audio[..., a * hop: b * hop] = piece[..., (a - ws) * hop: (b - ws) * hop]
        if audio is None:
            raise ValueError("no frames to decode")
    if padding_mask is not None and padding_mask.shape[-1] < audio.shape[-1]:
        audio = audio[..., : padding_mask.shape[-1]]
    return MusicCodecDecoderOutput(audio)


class LongAudioMixin:
    """``encode_long`` / ``decode_long`` for ``MusicCodecModel``: files of any length in bounded memory."""

    def encode_long(self, input_values: torch.Tensor, bandwidth: float | None = None, *,
                    padding_mask: torch.Tensor | None = None, chunk_seconds: float = 5.0) -> MusicCodecEncoderOutput:
        """``encode`` for signals of any length, in memory bounded by ``chunk_seconds`` of activations.

        Same output as ``encode`` (identical codes): DAC-like codecs encode windows of
        ``chunk_seconds`` extended by their receptive field and keep the centre frames; causal
        SEANet codecs stream; EnCodec 48 kHz already encodes 1 s chunks.
        """
        return encode_long(self, input_values, padding_mask, bandwidth, chunk_seconds)

    def decode_long(self, audio_codes: torch.Tensor | None = None, audio_scales: list | None = None, *,
                    padding_mask: torch.Tensor | None = None, last_frame_pad_length: int | None = None,
                    latents: torch.Tensor | None = None, chunk_seconds: float = 5.0) -> MusicCodecDecoderOutput:
        """``decode`` for codes of any length: only the output is held in full. Same output as
        ``decode`` to float rounding."""
        return decode_long(self, audio_codes, audio_scales, padding_mask, last_frame_pad_length, latents,
                           chunk_seconds)
