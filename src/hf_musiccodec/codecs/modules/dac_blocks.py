"""Descript Audio Codec encoder and decoder: Snake activations and dilated residual units.

Parameter names follow transformers' ``DacModel`` (``block.N.res_unit1.conv1``, ``snake1.alpha``)
so that published checkpoints load without renaming.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .weight_norm import WeightNormConv1d, WeightNormConvTranspose1d


class Snake1d(nn.Module):
    """Snake activation ``x + sin^2(alpha x) / alpha`` with a learned alpha per channel.

    It has a periodic inductive bias that suits audio (Ziyin et al., 2020; BigVGAN).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha
        return x + (alpha + 1e-9).reciprocal() * torch.sin(alpha * x).pow(2)


class DacResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int):
        super().__init__()
        self.snake1 = Snake1d(dim)
        self.conv1 = WeightNormConv1d(dim, dim, kernel_size=7, dilation=dilation, padding=3 * dilation)
        self.snake2 = Snake1d(dim)
        self.conv2 = WeightNormConv1d(dim, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.snake2(self.conv1(self.snake1(x))))
        trim = (x.shape[-1] - y.shape[-1]) // 2
        if trim > 0:
            x = x[..., trim:-trim]
        return x + y


class DacEncoderBlock(nn.Module):
    """Three residual units (dilations 1, 3, 9), then a strided conv that doubles the channels."""

    def __init__(self, dim: int, stride: int):
        super().__init__()
        self.res_unit1 = DacResidualUnit(dim // 2, 1)
        self.res_unit2 = DacResidualUnit(dim // 2, 3)
        self.res_unit3 = DacResidualUnit(dim // 2, 9)
        self.snake1 = Snake1d(dim // 2)
        self.conv1 = WeightNormConv1d(dim // 2, dim, kernel_size=2 * stride, stride=stride,
                                      padding=math.ceil(stride / 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res_unit3(self.res_unit2(self.res_unit1(x)))
        return self.conv1(self.snake1(x))


class DacDecoderBlock(nn.Module):
    """A transposed conv that upsamples by ``stride``, then three residual units."""

    def __init__(self, input_dim: int, output_dim: int, stride: int):
        super().__init__()
        self.snake1 = Snake1d(input_dim)
        self.conv_t1 = WeightNormConvTranspose1d(input_dim, output_dim, kernel_size=2 * stride, stride=stride,
                                                 padding=math.ceil(stride / 2))
        self.res_unit1 = DacResidualUnit(output_dim, 1)
        self.res_unit2 = DacResidualUnit(output_dim, 3)
        self.res_unit3 = DacResidualUnit(output_dim, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_t1(self.snake1(x))
        return self.res_unit3(self.res_unit2(self.res_unit1(x)))


class DacEncoder(nn.Module):
    """Waveform (B, audio_channels, T) -> latent (B, hidden_size, T / hop_length)."""

    def __init__(self, config):
        super().__init__()
        width = config.num_filters
        self.conv1 = WeightNormConv1d(config.audio_channels, width, kernel_size=7, padding=3)
        blocks = []
        for stride in reversed(config.upsampling_ratios):
            width *= 2
            blocks.append(DacEncoderBlock(width, stride))
        self.block = nn.ModuleList(blocks)
        self.snake1 = Snake1d(width)
        self.conv2 = WeightNormConv1d(width, config.hidden_size, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for block in self.block:
            x = block(x)
        return self.conv2(self.snake1(x))


class DacDecoder(nn.Module):
    """Latent (B, hidden_size, frames) -> waveform in [-1, 1] (B, audio_channels, frames * hop_length)."""

    def __init__(self, config):
        super().__init__()
        width = config.decoder_hidden_size
        self.conv1 = WeightNormConv1d(config.hidden_size, width, kernel_size=7, padding=3)
        blocks = []
        for stride in config.upsampling_ratios:
            blocks.append(DacDecoderBlock(width, width // 2, stride))
            width //= 2
        self.block = nn.ModuleList(blocks)
        self.snake1 = Snake1d(width)
        self.conv2 = WeightNormConv1d(width, config.audio_channels, kernel_size=7, padding=3)
        self.tanh = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for block in self.block:
            x = block(x)
        return self.tanh(self.conv2(self.snake1(x)))
