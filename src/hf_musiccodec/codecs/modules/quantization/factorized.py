"""Factorized, L2-normalised codes (Yu et al., 2021, improved VQGAN), as in the Descript Audio Codec.

The nearest code is searched in a low-dimensional projection (``codebook_dim``, 8 in DAC) where
vectors and codes are L2-normalised (cosine similarity), which keeps most codes in use without
EMA or restarts. Parameter names follow DAC's checkpoints (``in_proj``, ``out_proj``, ``codebook``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..precision import float32_region, upcast
from ..weight_norm import WeightNormConv1d


class FactorizedVectorQuantizer(nn.Module):
    """Args:
        dim: channels of the latent.
        codebook_size: number of codes.
        codebook_dim: dimension of the projected space where codes are looked up.
    """

    def __init__(self, dim: int, codebook_size: int, codebook_dim: int = 8):
        super().__init__()
        self.in_proj = WeightNormConv1d(dim, codebook_dim, kernel_size=1)
        self.out_proj = WeightNormConv1d(codebook_dim, dim, kernel_size=1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    @property
    def codebook_size(self) -> int:
        return self.codebook.num_embeddings

    def _nearest(self, latents: torch.Tensor) -> torch.Tensor:
        b, d, t = latents.shape
        with float32_region(latents):  # the search in float32, also under autocast (precision.py)
            enc = F.normalize(upcast(latents).transpose(1, 2).reshape(b * t, d))
            book = F.normalize(upcast(self.codebook.weight))
            # Same expression (and rounding) as the reference; ||book||^2 is 1 for every code.
            dist = -(enc.pow(2).sum(1, keepdim=True) - 2 * enc @ book.t()) + book.pow(2).sum(1, keepdim=True).t()
            return dist.max(1)[1].view(b, t)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._nearest(self.in_proj(x))

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Projected-space code vectors (B, codebook_dim, T); not normalised, as in DAC."""
        return self.codebook(codes).transpose(1, 2)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.lookup(codes))

    def quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes and the quantized vectors that the residual stack subtracts (inference).

        No losses and no straight-through graph. ``latents + (code - latents)`` is kept (two ops on
        a (B, codebook_dim, T) tensor) because the reference computes the residual from that
        value, which can differ from ``code`` by one rounding, and the next codebook's choice
        depends on the residual.
        """
        if torch.is_grad_enabled() and any(t.requires_grad for t in (x, self.in_proj.weight_v, self.codebook.weight)):
            quantized, codes, _, _ = self(x)
            return quantized, codes
        latents = self.in_proj(x)
        codes = self._nearest(latents)
        quantized = self.lookup(codes)
        return self.out_proj(latents + (quantized - latents)), codes

    def forward(self, x: torch.Tensor):
        latents = self.in_proj(x)
        codes = self._nearest(latents)
        quantized = self.lookup(codes)
        commitment = (latents - quantized.detach()).pow(2).mean(dim=(1, 2))
        codebook = (quantized - latents.detach()).pow(2).mean(dim=(1, 2))
        quantized = latents + (quantized - latents).detach()
        return self.out_proj(quantized), codes, commitment, codebook
