"""SEANet encoder and decoder, as used by SoundStream and EnCodec.

Parameter names follow transformers' ``EncodecModel`` (``layers.N.conv``, ``block``, ``shortcut``,
``lstm``) so that published checkpoints load without renaming.

Inference fast path (weight-norm configs, no gradients): (B, C, 1, T) channels-last activations
(see ``weight_norm``), each ELU written straight into the padded input buffer of the conv that
follows it (reflect padding is filled from that buffer, since ELU commutes with reflection),
the residual additions fused into the 1x1 convs, ELUs in place where their input is dead, and
short LSTM inputs (streaming chunks) run a step at a time. CPU only, no autocast, no gradients
(``fast_ops.use_fast_path``). Same expressions as the training path; outputs differ by float
rounding only.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .fast_ops import elu_into, use_fast_path
from .weight_norm import WeightNormConv1d, WeightNormConvTranspose1d, from_channels_last_1d, to_channels_last_1d

_CL = torch.channels_last


def _pad1d(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    """``F.pad`` that also reflect-pads inputs shorter than the padding (zeros fill the gap)."""
    if mode != "reflect":
        return F.pad(x, (left, right), mode)
    length = x.shape[-1]
    extra = max(0, max(left, right) - length + 1)
    if extra:
        x = F.pad(x, (0, extra))
    padded = F.pad(x, (left, right), "reflect")
    return padded[..., : padded.shape[-1] - extra]


class SConv1d(nn.Module):
    """Conv1d padded so that ``ceil(length / stride)`` frames come out, causally or centred.

    Args:
        causal: pad only on the left, so an output frame never sees future samples.
        norm_type: ``"weight_norm"`` or ``"time_group_norm"`` (a GroupNorm(1) after the conv).
        pad_mode: padding mode, ``"reflect"`` in EnCodec.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, *, causal=True,
                 norm_type="weight_norm", pad_mode="reflect"):
        super().__init__()
        conv_cls = WeightNormConv1d if norm_type == "weight_norm" else nn.Conv1d
        self.conv = conv_cls(in_channels, out_channels, kernel_size, stride, dilation=dilation)
        if norm_type == "time_group_norm":
            self.norm = nn.GroupNorm(1, out_channels)
        elif norm_type != "weight_norm":
            raise ValueError(f"norm_type must be 'weight_norm' or 'time_group_norm', got {norm_type!r}")
        self.causal = causal
        self.pad_mode = pad_mode
        self.stride = stride
        self.effective_kernel = (kernel_size - 1) * dilation + 1
        self.padding_total = self.effective_kernel - stride

    def extra_padding(self, length: int) -> int:
        """Right padding that completes the last frame, so no input sample is dropped."""
        n_frames = (length - self.effective_kernel + self.padding_total) / self.stride + 1
        ideal_length = (math.ceil(n_frames) - 1) * self.stride + self.effective_kernel - self.padding_total
        return ideal_length - length

    def padding(self, length: int) -> tuple[int, int]:
        """(left, right) padding of an input of ``length`` samples."""
        extra = self.extra_padding(length)
        if self.causal:
            return self.padding_total, extra
        right = self.padding_total // 2
        return self.padding_total - right, right + extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pad1d(x, *self.padding(x.shape[-1]), self.pad_mode)
        x = self.conv(x)
        return self.norm(x) if hasattr(self, "norm") else x

    def forward_cl(self, x: torch.Tensor, pre_elu: bool = False, residual: torch.Tensor | None = None) -> torch.Tensor:
        """Inference on (B, C, 1, T) channels-last: ``conv(pad(elu?(x))) (+ residual)``.

        ``x`` is left untouched: the ELU is written into the padded buffer the conv reads.
        """
        length = x.shape[-1]
        left, right = self.padding(length)
        if hasattr(self, "norm") or (self.pad_mode not in ("reflect", "constant", "replicate"))\
                or (self.pad_mode == "reflect" and max(left, right) >= length):
            y = to_channels_last_1d(self(nn.functional.elu(from_channels_last_1d(x)) if pre_elu
                                         else from_channels_last_1d(x)))
            return y if residual is None else y.add_(residual)
        if left or right or pre_elu:
            b, c = x.shape[:2]
            padded = torch.empty((b, c, 1, left + length + right), dtype=x.dtype, device=x.device, memory_format=_CL)
            middle = padded[..., left: left + length]
            if pre_elu:
                elu_into(x, middle)
            else:
                middle.copy_(x)
            if self.pad_mode == "reflect":
                if left:
                    padded[..., :left] = middle[..., 1: left + 1].flip(-1)
                if right:
                    padded[..., left + length:] = middle[..., length - 1 - right: length - 1].flip(-1)
            elif self.pad_mode == "replicate":
                padded[..., :left] = middle[..., :1]
                padded[..., left + length:] = middle[..., -1:]
            else:
                padded[..., :left] = 0
                padded[..., left + length:] = 0
            x = padded
        # Here the conv is weight-normed: the other norm type has a ``norm`` and returned above.
        if residual is not None and self.conv.kernel_size[0] == 1:
            return self.conv.conv_into(x, residual, accumulate=True)
        return self.conv.forward_cl(x, residual)


class SConvTranspose1d(nn.Module):
    """ConvTranspose1d that trims its output to exactly ``stride`` samples per input frame."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, *, causal=True,
                 norm_type="weight_norm", trim_right_ratio=1.0):
        super().__init__()
        conv_cls = WeightNormConvTranspose1d if norm_type == "weight_norm" else nn.ConvTranspose1d
        self.conv = conv_cls(in_channels, out_channels, kernel_size, stride)
        if norm_type == "time_group_norm":
            self.norm = nn.GroupNorm(1, out_channels)
        if not causal and trim_right_ratio != 1.0:
            raise ValueError("trim_right_ratio != 1.0 only makes sense for causal convolutions")
        padding_total = kernel_size - stride
        right = math.ceil(padding_total * trim_right_ratio) if causal else padding_total // 2
        self.trim = (padding_total - right, right)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if hasattr(self, "norm"):
            x = self.norm(x)
        left, right = self.trim
        return x[..., left: x.shape[-1] - right]

    def forward_cl(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "norm"):  # else the conv is weight-normed
            return to_channels_last_1d(self(from_channels_last_1d(x)))
        y = self.conv.forward_cl(x)
        left, right = self.trim
        return y[..., left: y.shape[-1] - right].contiguous(memory_format=_CL)


class SLSTM(nn.Module):
    """LSTM over the time axis of a (batch, channels, time) tensor, with a skip connection."""

    def __init__(self, dim: int, num_layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor, state=None):
        y = x.permute(2, 0, 1)
        if use_fast_path(x, self.lstm.parameters()):
            out, state = self.lstm(y, state)
            return out.add_(y).permute(1, 2, 0), state
        out, state = self.lstm(y, state)
        return (out + y).permute(1, 2, 0), state

    def forward_cl(self, x: torch.Tensor, state=None):
        """Inference on (B, C, 1, T) channels-last (memory (B, T, C)); returns (output, state)."""
        b, c, _, t = x.shape
        y = x.permute(3, 0, 1, 2).reshape(t, b, c)  # a view when b == 1
        if t <= _FEW_STEPS:
            out, state = self._few_steps(y, state)
        else:
            out, state = self.lstm(y, state)
        out = out.add_(y).permute(1, 2, 0).unsqueeze(2)
        return out.contiguous(memory_format=_CL), state

    def _few_steps(self, y: torch.Tensor, state=None):
        """The LSTM a step at a time (streaming chunks of a few frames: oneDNN's LSTM re-packs all
        its weights on every call, which costs more than the steps). The input projection of all
        steps is one matmul; each step reads the recurrent weights once."""
        lstm = self.lstm
        t, b, _ = y.shape
        if state is None:
            zeros = y.new_zeros(lstm.num_layers, b, lstm.hidden_size)
            state = (zeros, zeros)
        hs, cs = [], []
        for layer in range(lstm.num_layers):
            w_ih, w_hh, b_ih, b_hh = (getattr(lstm, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih",
                                                                                   "bias_hh"))
            gates_in = torch.addmm(b_ih, y.reshape(t * b, -1), w_ih.t()).add_(b_hh).view(t, b, -1)
            h, c = state[0][layer], state[1][layer]
            outs = []
            for step in range(t):
                gates = torch.addmm(gates_in[step], h, w_hh.t())
                i, f, g, o = gates.chunk(4, 1)
                c = torch.sigmoid(f).mul_(c).add_(torch.sigmoid(i).mul_(torch.tanh(g)))
                h = torch.sigmoid(o).mul_(torch.tanh(c))
                outs.append(h)
            y = torch.stack(outs)
            hs.append(h)
            cs.append(c)
        return y, (torch.stack(hs), torch.stack(cs))


_FEW_STEPS = 8


class SEANetResnetBlock(nn.Module):
    """ELU -> conv(k, dilation) -> ELU -> conv(1), with a 1x1-conv (or identity) shortcut."""

    def __init__(self, dim: int, dilation: int, config):
        super().__init__()
        hidden = dim // config.compress
        kernel_sizes, dilations = (config.residual_kernel_size, 1), (dilation, 1)
        block = []
        for i, (k, d) in enumerate(zip(kernel_sizes, dilations)):
            block += [nn.ELU(), SConv1d(dim if i == 0 else hidden, dim if i == 1 else hidden, k, dilation=d,
                                        **_conv_kwargs(config))]
        self.block = nn.ModuleList(block)
        self.shortcut = SConv1d(dim, dim, 1, **_conv_kwargs(config)) if config.use_conv_shortcut else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for layer in self.block:
            y = layer(y)
        return self.shortcut(x) + y

    def forward_cl(self, x: torch.Tensor) -> torch.Tensor:
        """Inference on (B, C, 1, T) channels-last; ``x`` is left untouched."""
        layers = list(self.block)
        if len(layers) != 4 or not all(isinstance(layers[i], nn.ELU) for i in (0, 2)):
            return to_channels_last_1d(self(from_channels_last_1d(x)))
        residual = self.shortcut.forward_cl(x) if isinstance(self.shortcut, SConv1d) else x.clone(memory_format=_CL)
        h = nn.functional.elu(layers[1].forward_cl(x, pre_elu=True), inplace=True)
        return layers[3].forward_cl(h, residual=residual)  # shortcut(x) + y, fused into the last conv


def _conv_kwargs(config) -> dict:
    return {"causal": config.use_causal_conv, "norm_type": config.norm_type, "pad_mode": config.pad_mode}


def _run(layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    first = next(m for m in layers if isinstance(m, SConv1d))
    if use_fast_path(x, layers.parameters()) and not hasattr(first, "norm"):
        return from_channels_last_1d(_run_cl(layers, to_channels_last_1d(x)))
    for layer in layers:
        x = layer(x)[0] if isinstance(layer, SLSTM) else layer(x)
    return x


def _run_cl(layers, x: torch.Tensor) -> torch.Tensor:
    """Inference through channels-last kernels. An ELU is deferred into the next conv's padding;
    ``x`` (the caller's input) is never written."""
    pending_elu = False
    for layer in layers:
        if isinstance(layer, nn.ELU):
            pending_elu = True
            continue
        if isinstance(layer, SConv1d):
            x = layer.forward_cl(x, pre_elu=pending_elu)
        else:
            if pending_elu:  # x is an intermediate result here: ours to overwrite
                x = nn.functional.elu(x, inplace=True)
            if isinstance(layer, SLSTM):
                x = layer.forward_cl(x)[0]
            elif isinstance(layer, (SEANetResnetBlock, SConvTranspose1d)):
                x = layer.forward_cl(x)
            elif isinstance(layer, nn.Tanh):
                x = x.tanh_()
            else:
                x = to_channels_last_1d(layer(from_channels_last_1d(x)))
        pending_elu = False
    if pending_elu:
        x = nn.functional.elu(x, inplace=True)
    return x


class SEANetEncoder(nn.Module):
    """Waveform (B, audio_channels, T) -> latent (B, hidden_size, ceil(T / hop_length))."""

    def __init__(self, config):
        super().__init__()
        nf = config.num_filters
        layers: list[nn.Module] = [SConv1d(config.audio_channels, nf, config.kernel_size, **_conv_kwargs(config))]
        scale = 1
        for ratio in reversed(config.upsampling_ratios):
            dim = scale * nf
            layers += [SEANetResnetBlock(dim, config.dilation_growth_rate**j, config)
                       for j in range(config.num_residual_layers)]
            layers += [nn.ELU(), SConv1d(dim, dim * 2, ratio * 2, stride=ratio, **_conv_kwargs(config))]
            scale *= 2
        if config.num_lstm_layers:
            layers.append(SLSTM(scale * nf, config.num_lstm_layers))
        layers += [nn.ELU(), SConv1d(scale * nf, config.hidden_size, config.last_kernel_size, **_conv_kwargs(config))]
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run(self.layers, x)


class SEANetDecoder(nn.Module):
    """Latent (B, hidden_size, frames) -> waveform (B, audio_channels, frames * hop_length)."""

    def __init__(self, config):
        super().__init__()
        nf = config.num_filters
        scale = 2 ** len(config.upsampling_ratios)
        layers: list[nn.Module] = [SConv1d(config.hidden_size, scale * nf, config.kernel_size, **_conv_kwargs(config))]
        if config.num_lstm_layers:
            layers.append(SLSTM(scale * nf, config.num_lstm_layers))
        for ratio in config.upsampling_ratios:
            dim = scale * nf
            layers += [nn.ELU(), SConvTranspose1d(dim, dim // 2, ratio * 2, stride=ratio,
                                                  causal=config.use_causal_conv, norm_type=config.norm_type,
                                                  trim_right_ratio=config.trim_right_ratio)]
            layers += [SEANetResnetBlock(dim // 2, config.dilation_growth_rate**j, config)
                       for j in range(config.num_residual_layers)]
            scale //= 2
        layers += [nn.ELU(), SConv1d(nf, config.audio_channels, config.last_kernel_size, **_conv_kwargs(config))]
        if config.final_activation == "tanh":
            layers.append(nn.Tanh())
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run(self.layers, x)
