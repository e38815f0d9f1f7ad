"""Embedding-similarity measures: CLAP score (text adherence) and MusicLDM's novelty (copying).

Both take embeddings, not audio, so any text/audio model plugs in and they are tested without a
trained CLAP. Similarities are cosines, in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hf_musiccodec.metrics._checks import matrix

__all__ = ["clap_score", "NoveltyResult", "novelty"]


def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name}: {int((norms == 0).sum())} all-zero embeddings have no direction")
    return x / norms


def clap_score(text_embeddings, audio_embeddings, reduction: str = "mean"):
    """Cosine similarity of paired text and audio embeddings ``(n, dim)``, row i with row i.

    In [-1, 1]; higher means the audio follows its prompt better. ``reduction="none"`` gives the
    ``(n,)`` scores, e.g. to re-rank candidates as MusicLDM does.
    """
    t = _unit_rows(matrix(text_embeddings, "text_embeddings"), "text_embeddings")
    a = _unit_rows(matrix(audio_embeddings, "audio_embeddings"), "audio_embeddings")
    if t.shape != a.shape:
        raise ValueError(f"text and audio embeddings must pair up, got {t.shape} and {a.shape}")
    scores = np.sum(t * a, axis=1)
    if reduction == "none":
        return scores
    if reduction == "mean":
        return float(scores.mean())
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


@dataclass(frozen=True)
class NoveltyResult:
    """``share_above``: fraction (0-1) of generations whose nearest training clip has cosine
    similarity above ``threshold`` (lower = less copying). ``nearest_similarity``: that
    nearest-neighbour similarity per generation; ``summary`` its mean/std/min/median/p95/max."""

    share_above: float
    threshold: float
    nearest_similarity: np.ndarray
    nearest_index: np.ndarray
    summary: dict


def novelty(generated_embeddings, training_embeddings, threshold: float = 0.9) -> NoveltyResult:
    """MusicLDM's nearest-neighbour similarity ratio between generated and training audio embeddings.

    MusicLDM reports it with CLAP audio embeddings at thresholds 0.9 and 0.95.
    """
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
    g = _unit_rows(matrix(generated_embeddings, "generated_embeddings"), "generated_embeddings")
    t = _unit_rows(matrix(training_embeddings, "training_embeddings"), "training_embeddings")
    if g.shape[1] != t.shape[1]:
        raise ValueError(f"embedding sizes differ: generated {g.shape[1]}, training {t.shape[1]}")
    sims = g @ t.T
    idx = sims.argmax(1)
    nearest = sims[np.arange(len(g)), idx]
    summary = {
        "mean": float(nearest.mean()),
        "std": float(nearest.std()),
        "min": float(nearest.min()),
        "median": float(np.median(nearest)),
        "p95": float(np.percentile(nearest, 95)),
        "max": float(nearest.max()),
    }
    return NoveltyResult(float((nearest > threshold).mean()), float(threshold), nearest, idx, summary)
