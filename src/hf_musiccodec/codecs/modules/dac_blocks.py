"""Descript Audio Codec encoder and decoder: Snake activations and dilated residual units.

Parameter names follow transformers' ``DacModel`` (``block.N.res_unit1.conv1``, ``snake1.alpha``)
so that published checkpoints load without renaming.

Inference fast path (CPU, no autocast, no gradients: ``fast_ops.use_fast_path``): the encoder
and decoder run on (B, C, 1, T) channels-last activations (see ``weight_norm.to_channels_last_1d``)
with cached folded weights, a Snake that works in place on one buffer, and in-place residual
additions. It computes the same expressions as the training path (the Snake bit for bit), so
outputs differ only by the convolutions' float rounding (about 1e-6 relative).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .fast_ops import use_fast_path
from .weight_norm import WeightNormConv1d, WeightNormConvTranspose1d, from_channels_last_1d, to_channels_last_1d


class Snake1d(nn.Module):
    """Snake activation ``x + sin^2(alpha x) / alpha`` with a learned alpha per channel.

    It has a periodic inductive bias that suits audio (Ziyin et al., 2020; BigVGAN).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))
        self._inv_alpha: torch.Tensor | None = None
        self._inv_key: tuple | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha
        return x + (alpha + 1e-9).reciprocal() * torch.sin(alpha * x).pow(2)

    def _inverse_alpha(self) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = self.alpha
        key = (alpha._version, alpha.data_ptr(), alpha.dtype, alpha.device)
        if self._inv_key != key:
            with torch.no_grad():
                a = alpha.detach().view(1, -1, 1, 1)
                self._inv_alpha = (a, (a + 1e-9).reciprocal())
            self._inv_key = key
        return self._inv_alpha

    def forward_cl(self, x: torch.Tensor) -> torch.Tensor:
        """Inference on (B, C, 1, T): one output buffer updated in place, four passes over memory,
        the reciprocal of alpha computed once. Equal to ``forward`` within one rounding (the last
        multiply-add is one ``addcmul``).
        """
        return self.into(x, torch.empty_like(x))

    def into(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``forward_cl`` written into ``out`` (a buffer reused across layers)."""
        alpha, inv_alpha = self._inverse_alpha()
        torch.mul(x, alpha, out=out)
        out.sin_().square_()
        return torch.addcmul(x, out, inv_alpha, out=out)


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

    def forward_cl(self, x: torch.Tensor, workspace: dict | None = None) -> torch.Tensor:
        """Inference on (B, C, 1, T) channels-last. Overwrites ``x`` with the output.

        ``workspace`` holds two buffers of x's shape that every unit of a block reuses, so a
        unit allocates nothing: snake into S, conv1 into H, snake into S, then conv2 accumulates
        into x (the skip connection is the 1x1 conv's fused ``+``).
        """
        if self.conv1.padding[0] != 3 * self.conv1.dilation[0]:  # not a shape-preserving unit
            y = self.snake2.forward_cl(self.conv1.forward_cl(self.snake1.forward_cl(x)))
            trim = (x.shape[-1] - y.shape[-1]) // 2
            x = x[..., trim:x.shape[-1] - trim].contiguous(memory_format=torch.channels_last)
            return self.conv2.forward_cl(y, residual=x)
        workspace = {} if workspace is None else workspace
        if workspace.get("shape") != x.shape:
            workspace.update(shape=x.shape, S=torch.empty_like(x), H=torch.empty_like(x))
        S, H = workspace["S"], workspace["H"]
        self.conv1.conv_into(self.snake1.into(x, S), H)
        return self.conv2.conv_into(self.snake2.into(H, S), x, accumulate=True)


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

    def forward_cl(self, x: torch.Tensor) -> torch.Tensor:
        """Inference on (B, C, 1, T) channels-last; overwrites ``x``."""
        workspace: dict = {}
        for unit in (self.res_unit1, self.res_unit2, self.res_unit3):
            x = unit.forward_cl(x, workspace)
        return self.conv1.forward_cl(self.snake1.into(x, workspace["S"]))


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

    def forward_cl(self, x: torch.Tensor) -> torch.Tensor:
        """Inference on (B, C, 1, T) channels-last; overwrites ``x``."""
        x = self.conv_t1.forward_cl(self.snake1.forward_cl(x))
        workspace: dict = {}
        for unit in (self.res_unit1, self.res_unit2, self.res_unit3):
            x = unit.forward_cl(x, workspace)
        return x


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
        if use_fast_path(x, self.parameters()):
            return self.forward_cl(x)
        x = self.conv1(x)
        for block in self.block:
            x = block(x)
        return self.conv2(self.snake1(x))

    def forward_cl(self, x: torch.Tensor) -> torch.Tensor:
        """Inference on (B, C, T) through channels-last kernels; returns a contiguous (B, D, frames)."""
        x = self.conv1.forward_cl(to_channels_last_1d(x))
        for block in self.block:
            x = block.forward_cl(x)
        return from_channels_last_1d(self.conv2.forward_cl(self.snake1.forward_cl(x)))


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
        if use_fast_path(x, self.parameters()):
            return self.forward_cl(x)
        x = self.conv1(x)
        for block in self.block:
            x = block(x)
        return self.tanh(self.conv2(self.snake1(x)))

    def forward_cl(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1.forward_cl(to_channels_last_1d(x))
        for block in self.block:
            x = block.forward_cl(x)
        return from_channels_last_1d(self.conv2.forward_cl(self.snake1.forward_cl(x)).tanh_())
