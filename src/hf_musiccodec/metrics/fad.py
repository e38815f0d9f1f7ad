"""Fréchet Audio Distance (Kilgour et al. 2019), written here: the FAD packages download their
embedding models at run time, so they cannot run offline (see DESIGN.md).

FAD is the Fréchet (2-Wasserstein) distance between Gaussians fitted to two sets of embeddings:
``|mu_a - mu_b|² + tr(S_a + S_b - 2 (S_a S_b)^½)``. It is >= 0, 0 for identical statistics, lower
is better, and has the squared units of the embedding: only compare numbers from one embedding.
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
from scipy import linalg

from hf_musiccodec.metrics._checks import matrix
from hf_musiccodec.metrics.embeddings import AudioEmbedding, embed_audio

__all__ = ["embedding_statistics", "gaussian_frechet_distance", "frechet_distance", "frechet_audio_distance"]


def embedding_statistics(embeddings) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(dim,)`` and covariance ``(dim, dim)`` of ``(n, dim)`` embeddings (n >= 2)."""
    x = matrix(embeddings, "embeddings", min_rows=2)
    return x.mean(0), np.atleast_2d(np.cov(x, rowvar=False))


def gaussian_frechet_distance(mu_a, sigma_a, mu_b, sigma_b, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu_a, sigma_a) and N(mu_b, sigma_b)."""
    mu_a, mu_b = matrix(mu_a, "mu_a")[0], matrix(mu_b, "mu_b")[0]
    sigma_a, sigma_b = matrix(sigma_a, "sigma_a"), matrix(sigma_b, "sigma_b")
    d = mu_a.size
    if mu_b.size != d or sigma_a.shape != (d, d) or sigma_b.shape != (d, d):
        raise ValueError(
            f"shapes do not match: mu {mu_a.shape}/{mu_b.shape}, sigma {sigma_a.shape}/{sigma_b.shape}"
        )
    covmean = linalg.sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(covmean).all():
        # Singular products (fewer samples than dimensions) can make sqrtm fail: regularise both.
        offset = eps * np.eye(d)
        covmean = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    if np.iscomplexobj(covmean):
        # Round-off gives tiny imaginary parts; a large one means the covariances are broken.
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm has a large imaginary part ({np.abs(covmean.imag).max():.3g})")
        covmean = covmean.real
    diff = mu_a - mu_b
    value = diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(covmean)
    return max(float(value), 0.0)  # round-off can leave -1e-12 for identical sets


def frechet_distance(embeddings_a, embeddings_b, eps: float = 1e-6) -> float:
    """Fréchet distance between two embedding sets ``(n_a, dim)`` and ``(n_b, dim)``."""
    return gaussian_frechet_distance(*embedding_statistics(embeddings_a), *embedding_statistics(embeddings_b), eps)


def frechet_audio_distance(
    reference: Iterable, generated: Iterable, sr: int, embedding: Optional[AudioEmbedding] = None
) -> float:
    """FAD between a reference set and a generated set of clips (lists of numpy/torch audio at ``sr``).

    ``embedding`` defaults to :class:`~hf_musiccodec.metrics.embeddings.MelStatsEmbedding`
    ("mel-stats"); pass :class:`~hf_musiccodec.metrics.embeddings.ClapAudioEmbedding` for CLAP-FAD.
    """
    return frechet_distance(embed_audio(reference, sr, embedding), embed_audio(generated, sr, embedding))
