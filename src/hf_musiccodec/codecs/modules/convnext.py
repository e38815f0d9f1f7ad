"""ConvNeXt blocks at the latent frame rate (Liu et al. 2022, as used by Vocos): the trunk shared
by the Fourier-domain encoder (``stft_encoder``) and decoder (``istft_decoder``)."""

from __future__ import annotations

import torch
from torch import nn


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> pointwise MLP (GELU) -> layer scale, with a residual.

    Args:
        dim: channels.
        intermediate_dim: hidden width of the pointwise MLP (Vocos: 3 x dim).
        layer_scale: initial value of the per-channel output scale (Vocos: 1 / num_layers), which
            keeps a deep stack close to the identity at initialisation.
        kernel_size: of the depthwise conv, in frames (the block's look-ahead is half of it).
    """

    def __init__(self, dim: int, intermediate_dim: int, layer_scale: float, kernel_size: int = 7):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.layer_scale = layer_scale
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        y = self.dwconv(x).transpose(1, 2)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class ConvNeXtTrunk(nn.Module):
    """Conv embedding -> LayerNorm -> ConvNeXt blocks -> LayerNorm, for a subclass to put its own
    front (an STFT) and head (a projection, an inverse STFT) around.

    ``build_trunk`` is called by the subclass at the point where the trunk belongs in its module
    order (the receptive-field code reads layers in registration order).
    """

    def build_trunk(self, in_channels: int, dim: int, num_layers: int) -> None:
        """Args:
            in_channels: channels of the trunk's input.
            dim: ConvNeXt width.
            num_layers: blocks; each block's layer scale starts at ``1 / num_layers`` (Vocos).
        """
        self.embed = nn.Conv1d(in_channels, dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, 3 * dim, layer_scale=1.0 / num_layers)
                                    for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, T) -> normalised features (B, T, dim), channels last for a Linear head."""
        x = self.norm(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x.transpose(1, 2))
