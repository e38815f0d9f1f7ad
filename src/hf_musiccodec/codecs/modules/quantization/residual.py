"""Residual vector quantization (SoundStream): each quantizer codes what the previous ones missed.

Quantizer dropout trains one model for every bitrate: for a random part of the batch only the
first ``n`` quantizers (``n`` drawn uniformly) are used, so any prefix of the codes decodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class RVQOutput:
    quantized: torch.Tensor          # (B, D, T), straight-through
    codes: torch.Tensor              # (B, num_quantizers, T)
    commitment_loss: torch.Tensor    # scalar, mean over batch of the per-item sum over quantizers
    codebook_loss: torch.Tensor      # scalar
    num_quantizers: torch.Tensor     # (B,) quantizers used per item


class ResidualVectorQuantizer(nn.Module):
    """Args:
        layers: the quantizers, each with ``encode``, ``decode``, ``quantize`` and ``forward``.
        quantizer_dropout: fraction of each training batch that uses a random number of quantizers.
    """

    def __init__(self, layers: list[nn.Module], quantizer_dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.quantizer_dropout = quantizer_dropout

    @property
    def num_quantizers(self) -> int:
        return len(self.layers)

    def _check(self, num_quantizers: int | None) -> int:
        n = self.num_quantizers if num_quantizers is None else num_quantizers
        if not 1 <= n <= self.num_quantizers:
            raise ValueError(f"num_quantizers must be in [1, {self.num_quantizers}], got {n}")
        return n

    def encode(self, x: torch.Tensor, num_quantizers: int | None = None) -> torch.Tensor:
        """Codes (B, n, T) of latents (B, D, T) with the first ``n`` quantizers."""
        residual, codes = x, []
        for layer in self.layers[: self._check(num_quantizers)]:
            quantized, layer_codes = layer.quantize(residual)
            residual = residual - quantized
            codes.append(layer_codes)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Latents (B, D, T) from codes (B, n, T), any n up to ``num_quantizers``."""
        n = self._check(codes.shape[1])
        for i, layer in enumerate(self.layers[:n]):
            if codes[:, i].numel() and (codes[:, i].min() < 0 or codes[:, i].max() >= layer.codebook_size):
                raise ValueError(f"codes of quantizer {i} must be in [0, {layer.codebook_size}), got "
                                 f"[{int(codes[:, i].min())}, {int(codes[:, i].max())}]")
        out = self.layers[0].decode(codes[:, 0])
        for i in range(1, n):
            out = out + self.layers[i].decode(codes[:, i])
        return out

    def forward(self, x: torch.Tensor, num_quantizers: int | None = None) -> RVQOutput:
        batch = x.shape[0]
        n_used = torch.full((batch,), self._check(num_quantizers), device=x.device)
        if self.training and self.quantizer_dropout > 0:
            n_dropout = int(round(batch * self.quantizer_dropout))
            n_used[:n_dropout] = torch.randint(1, self.num_quantizers + 1, (n_dropout,), device=x.device)
        quantized = torch.zeros_like(x)
        residual = x
        commitment = codebook = x.new_zeros(batch)
        codes = []
        for i, layer in enumerate(self.layers[: int(n_used.max())]):
            layer_quantized, layer_codes, layer_commitment, layer_codebook = layer(residual)
            keep = (i < n_used).to(x.dtype)
            quantized = quantized + layer_quantized * keep[:, None, None]
            residual = residual - layer_quantized
            commitment = commitment + layer_commitment * keep
            codebook = codebook + layer_codebook * keep
            codes.append(layer_codes)
        return RVQOutput(quantized, torch.stack(codes, dim=1), commitment.mean(), codebook.mean(), n_used)
