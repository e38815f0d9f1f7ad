"""SEANet encoder and decoder, as used by SoundStream and EnCodec.

Parameter names follow transformers' ``EncodecModel`` (``layers.N.conv``, ``block``, ``shortcut``,
``lstm``) so that published checkpoints load without renaming.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .weight_norm import WeightNormConv1d, WeightNormConvTranspose1d


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        extra = self.extra_padding(x.shape[-1])
        if self.causal:
            x = _pad1d(x, self.padding_total, extra, self.pad_mode)
        else:
            right = self.padding_total // 2
            x = _pad1d(x, self.padding_total - right, right + extra, self.pad_mode)
        x = self.conv(x)
        return self.norm(x) if hasattr(self, "norm") else x


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


class SLSTM(nn.Module):
    """LSTM over the time axis of a (batch, channels, time) tensor, with a skip connection."""

    def __init__(self, dim: int, num_layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor, state=None):
        y = x.permute(2, 0, 1)
        out, state = self.lstm(y, state)
        return (out + y).permute(1, 2, 0), state


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


def _conv_kwargs(config) -> dict:
    return {"causal": config.use_causal_conv, "norm_type": config.norm_type, "pad_mode": config.pad_mode}


def _run(layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = layer(x)[0] if isinstance(layer, SLSTM) else layer(x)
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
