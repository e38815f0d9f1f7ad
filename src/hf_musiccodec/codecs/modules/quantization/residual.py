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
        n = self._check(num_quantizers)
        residual, codes = x, []
        for layer in self.layers[:n]:
            quantized, layer_codes = layer.quantize(residual)
            residual = residual - quantized
            codes.append(layer_codes)
        return torch.stack(codes, dim=1)

    def _check_codes(self, codes: torch.Tensor) -> int:
        n = self._check(codes.shape[1])
        if codes.numel() == 0:
            return n
        low, high = codes.amin(dim=(0, 2)), codes.amax(dim=(0, 2))
        sizes = torch.tensor([layer.codebook_size for layer in self.layers[:n]], device=codes.device)
        bad = (low < 0) | (high >= sizes)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ValueError(f"codes of quantizer {i} must be in [0, {self.layers[i].codebook_size}), got "
                             f"[{int(low[i])}, {int(high[i])}]")
        return n

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Latents (B, D, T) from codes (B, n, T), any n up to ``num_quantizers``.

        At inference the ``n`` lookups are one gather over the stacked codebooks and, for
        factorized codes, the ``n`` output projections one matmul over the concatenated code
        vectors (``decode_loop`` is the per-quantizer reference; they agree to float rounding).
        """
        n = self._check_codes(codes)
        params = [p for layer in self.layers[:n] for p in layer.parameters()]
        if codes.shape[-1] and not (torch.is_grad_enabled() and any(p.requires_grad for p in params)):
            kind = self._stack_kind()
            if kind is not None:
                with torch.no_grad():
                    return self._decode_stacked(codes, n, kind)
        return self.decode_loop(codes)

    def decode_loop(self, codes: torch.Tensor) -> torch.Tensor:
        """One quantizer at a time (differentiable; the reference for the vectorised decode)."""
        n = self._check(codes.shape[1])
        out = self.layers[0].decode(codes[:, 0])
        for i in range(1, n):
            out = out + self.layers[i].decode(codes[:, i])
        return out

    # ---------------------------------------------------------------- vectorised inference decode
    def _stack_kind(self) -> str | None:
        from .euclidean import EuclideanVectorQuantizer
        from .factorized import FactorizedVectorQuantizer

        for kind, cls in (("euclidean", EuclideanVectorQuantizer), ("factorized", FactorizedVectorQuantizer)):
            if all(type(layer) is cls for layer in self.layers):
                return kind
        return None

    def _tables(self, kind: str) -> dict:
        """Stacked codebooks (and, for factorized codes, concatenated output projections),
        cached until a codebook or projection changes."""
        tensors = []
        for layer in self.layers:
            if kind == "euclidean":
                tensors.append(layer.codebook.embed)
            else:
                tensors += [layer.codebook.weight, layer.out_proj.weight_g, layer.out_proj.weight_v, layer.out_proj.bias]
        key = tuple((t._version, t.data_ptr(), t.dtype, t.device) for t in tensors)
        if getattr(self, "_tables_key", None) != key:
            with torch.no_grad():
                if kind == "euclidean":
                    tables = {"codebooks": torch.cat([layer.codebook.embed for layer in self.layers])}
                else:
                    weights = [layer.out_proj.normalized_weight()[..., 0] for layer in self.layers]
                    biases = [layer.out_proj.bias for layer in self.layers]
                    cumulative = [biases[0]]
                    for b in biases[1:]:  # summed in the loop's order
                        cumulative.append(cumulative[-1] + b)
                    tables = {"codebooks": torch.cat([layer.codebook.weight for layer in self.layers]),
                              "out_proj": torch.cat(weights, dim=1),  # (D, n * codebook_dim)
                              "bias_sums": torch.stack(cumulative)}    # (n, D): bias of the first n
            self._tables_cache, self._tables_key = tables, key
        return self._tables_cache

    def _decode_stacked(self, codes: torch.Tensor, n: int, kind: str) -> torch.Tensor:
        tables = self._tables(kind)
        book = tables["codebooks"]
        size = self.layers[0].codebook_size
        offsets = torch.arange(n, device=codes.device).mul_(size).view(1, n, 1)
        vectors = nn.functional.embedding(codes + offsets, book)  # (B, n, T, dim): one gather
        if kind == "euclidean":
            return vectors.sum(dim=1).transpose(1, 2)
        b, _, t, dim = vectors.shape
        stacked = vectors.permute(0, 1, 3, 2).reshape(b, n * dim, t)  # concatenated code vectors
        weight = tables["out_proj"][:, : n * dim]
        return torch.matmul(weight, stacked).add_(tables["bias_sums"][n - 1].view(1, -1, 1))

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
