"""Euclidean codebook with k-means init, EMA or gradient updates and dead-code restart.

This is the quantizer of SoundStream and EnCodec. Buffer names follow EnCodec's checkpoints
(``codebook.embed``, ``embed_avg``, ``cluster_size``, ``inited``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..precision import float32_region, upcast
from .distributed import all_reduce_sum, broadcast
from .kmeans import kmeans, sample_vectors


class EuclideanCodebook(nn.Module):
    """Nearest-neighbour lookup in a (codebook_size, dim) table.

    Args:
        dim: dimension of the vectors to quantize.
        codebook_size: number of codes (a power of two, so codes pack into whole bits).
        use_ema: update the codes as exponential moving averages of the vectors assigned to them
            (van den Oord et al., 2017, appendix) instead of by gradient descent on a codebook loss.
        decay: EMA decay of the code statistics.
        epsilon: Laplace smoothing of cluster sizes, so an unused code never divides by zero.
        kmeans_init: initialise the codes by k-means on the first training batch.
        kmeans_iters: k-means iterations for that initialisation.
        threshold_ema_dead_code: codes whose EMA usage falls below this are replaced by random
            vectors of the current batch, which keeps the whole codebook in use.
    """

    def __init__(self, dim: int, codebook_size: int, *, use_ema: bool = True, decay: float = 0.99,
                 epsilon: float = 1e-5, kmeans_init: bool = True, kmeans_iters: int = 10,
                 threshold_ema_dead_code: float = 2.0):
        super().__init__()
        self.codebook_size = codebook_size
        self.use_ema = use_ema
        self.decay = decay
        self.epsilon = epsilon
        self.kmeans_iters = kmeans_iters
        self.threshold_ema_dead_code = threshold_ema_dead_code
        init = torch.zeros(codebook_size, dim) if kmeans_init else nn.init.kaiming_uniform_(torch.empty(codebook_size, dim))
        self.register_buffer("inited", torch.tensor([float(not kmeans_init)]))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        if use_ema:
            self.register_buffer("embed", init)
        else:
            self.embed = nn.Parameter(init)
        self.register_buffer("embed_avg", init.clone())

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (N,) of the nearest entries to vectors ``x`` (N, dim), searched in float32 (also
        under autocast: see ``precision.py``)."""
        with float32_region(x):
            x = upcast(x)
            if torch.is_grad_enabled() and (x.requires_grad or self.embed.requires_grad):
                embed = upcast(self.embed).t()
                # -||x - e||^2 up to the per-row constant ||x||^2, which does not change the argmax;
                # kept in full to reproduce the reference implementations' rounding exactly.
                dist = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embed + embed.pow(2).sum(0, keepdim=True))
                return dist.max(dim=-1).indices
            # Inference: the same sums in the same order, bit for bit, on one (N, K) buffer updated
            # in place, with the codebook's transpose and squared norms cached. max(-d) == min(d),
            # first index on ties alike, since negation is exact.
            embed_t, embed_sq = self._inference_tables()
            dist = torch.mm(x, embed_t).mul_(-2)
            dist.add_(x.pow(2).sum(1, keepdim=True)).add_(embed_sq)
            return dist.argmin(dim=-1)

    def _inference_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.embed
        key = (e._version, e.data_ptr(), e.dtype, e.device)
        if getattr(self, "_tables_key", None) != key:
            with torch.no_grad():
                embed_t = upcast(e.detach()).t().contiguous()
                self._tables = (embed_t, embed_t.pow(2).sum(0, keepdim=True))
            self._tables_key = key
        return self._tables

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.embed)

    @torch.no_grad()
    def init_from(self, x: torch.Tensor) -> None:
        means, sizes = kmeans(x, self.codebook_size, self.kmeans_iters)
        self._set_codes(means, sizes)
        self.inited.fill_(1.0)

    @torch.no_grad()
    def _set_codes(self, means: torch.Tensor, sizes: torch.Tensor) -> None:
        # Every process must start from the same codebook.
        means, sizes = broadcast(means.contiguous()), broadcast(sizes.contiguous())
        self.embed.data.copy_(means)
        self.embed_avg.copy_(means)
        self.cluster_size.copy_(sizes)

    @torch.no_grad()
    def update(self, x: torch.Tensor, codes: torch.Tensor) -> None:
        """EMA statistics (summed over processes), EMA code update, and dead-code restart."""
        onehot = F.one_hot(codes, self.codebook_size).type(x.dtype)
        counts = all_reduce_sum(onehot.sum(0))
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if self.use_ema:
            sums = all_reduce_sum(onehot.t() @ x)
            self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.epsilon) / (n + self.codebook_size * self.epsilon) * n
            self.embed.copy_(self.embed_avg / smoothed.unsqueeze(1))
        self.expire_dead_codes(x)

    @torch.no_grad()
    def expire_dead_codes(self, x: torch.Tensor) -> None:
        if self.threshold_ema_dead_code <= 0:
            return
        dead = self.cluster_size < self.threshold_ema_dead_code
        if not dead.any():
            return
        replacement = broadcast(sample_vectors(x, self.codebook_size).contiguous())[dead]
        self.embed.data[dead] = replacement.to(self.embed.dtype)
        self.embed_avg[dead] = replacement.to(self.embed_avg.dtype)
        self.cluster_size[dead] = self.threshold_ema_dead_code


class EuclideanVectorQuantizer(nn.Module):
    """One quantizer of a residual stack: (B, dim, T) vectors to (B, T) codes and back.

    Args:
        dim: channels of the latent.
        codebook_size: number of codes.
        commitment_weight / codebook_weight: not applied here; losses are returned unweighted
            and weighted once, by the model, from its config.
        **codebook_kwargs: see ``EuclideanCodebook``.
    """

    def __init__(self, dim: int, codebook_size: int, **codebook_kwargs):
        super().__init__()
        self.codebook = EuclideanCodebook(dim, codebook_size, **codebook_kwargs)

    @property
    def codebook_size(self) -> int:
        return self.codebook.codebook_size

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        b, d, t = x.shape
        return self.codebook.nearest(x.transpose(1, 2).reshape(b * t, d)).view(b, t)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebook.lookup(codes).transpose(1, 2)

    def quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes and the quantized vectors that the residual stack subtracts (inference)."""
        codes = self.encode(x)
        return self.decode(codes), codes

    def forward(self, x: torch.Tensor):
        """Training step: returns (straight-through quantized, codes, commitment, codebook loss).

        Losses are per batch item, shape (B,), so that quantizer dropout can mask them.
        """
        b, d, t = x.shape
        # Codebook statistics in float32 (k-means, EMA sums, restarts), also under autocast.
        flat = upcast(x.detach().transpose(1, 2).reshape(b * t, d))
        with float32_region(x):
            if self.training and not self.codebook.inited.item():
                self.codebook.init_from(flat)
            codes = self.codebook.nearest(flat).view(b, t)
            quantized = self.decode(codes)  # the codes as chosen, before this step's update
            if self.training:
                self.codebook.update(flat, codes.flatten())
        commitment = (x - quantized.detach()).pow(2).mean(dim=(1, 2))
        codebook = (quantized - x.detach()).pow(2).mean(dim=(1, 2)) if not self.codebook.use_ema else commitment.new_zeros(b)
        return x + (quantized - x).detach(), codes, commitment, codebook
