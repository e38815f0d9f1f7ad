"""MusicLDM's beat-synchronous mixup: pairs of training crops with the same tempo, aligned on a beat.

MusicLDM mixes two pieces of similar tempo whose beats have been aligned, either as waveforms
(BAM: beat-synchronous audio mixup, the mixture is then encoded) or as latents (BLM:
beat-synchronous latent mixup, the better trade-off in the paper), with a weight
``lambda ~ Beta(alpha, alpha)``. The mixed crop is a new, plausible piece between two real ones,
which makes the model interpolate rather than copy. Two simplifications, said here once:

- beats only: the condition cache has beats, not downbeats, so crops are aligned on a beat, not
  on a bar line (MusicLDM aligns downbeats with Beat Transformer);
- the condition of a mixture is the same mix of the two CLAP embeddings (re-normalised), not the
  CLAP embedding of the mixed audio, which would cost a decode and a CLAP pass per example.

:func:`tempo_partners` groups items by tempo, :func:`aligned_partner_start` finds a crop of the
partner whose beat falls where the anchor's first beat does, :func:`mix_embeddings` mixes conditions.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["MIXUP_KINDS", "item_tempo", "tempo_partners", "aligned_partner_start", "mix_embeddings"]

MIXUP_KINDS = ("blm", "bam")


def item_tempo(beats: np.ndarray, frame_rate: float) -> float | None:
    """Tempo in BPM from the median interval of an item's beats (in frames); None with under 3 beats."""
    if beats.size < 3:
        return None
    interval = float(np.median(np.diff(beats)))
    return 60.0 * frame_rate / interval if interval > 0 else None


def tempo_partners(tempos: list[float | None], tolerance: float) -> list[np.ndarray]:
    """For each item, the other items whose tempo is within ``tolerance`` (relative) of its own."""
    t = np.array([np.nan if v is None else v for v in tempos], dtype=np.float64)
    partners = []
    for i, v in enumerate(t):
        if np.isnan(v):
            partners.append(np.zeros(0, dtype=np.int64))
            continue
        close = np.abs(t - v) <= tolerance * v  # NaN compares False
        close[i] = False
        partners.append(np.flatnonzero(close))
    return partners


def aligned_partner_start(anchor_beats: np.ndarray, anchor_start: int, partner_beats: np.ndarray,
                          partner_frames: int, crop_frames: int, rng: np.random.Generator) -> int | None:
    """A crop start in the partner such that one of its beats lands on the anchor crop's first beat.

    Beats are in frames of their own items. Returns None when the anchor crop has no beat or no
    beat of the partner allows a whole crop.
    """
    ahead = anchor_beats[(anchor_beats >= anchor_start) & (anchor_beats < anchor_start + crop_frames)]
    if ahead.size == 0 or partner_beats.size == 0:
        return None
    offset = float(ahead[0]) - anchor_start            # frames from the crop's start to its first beat
    starts = np.rint(partner_beats - offset).astype(np.int64)
    valid = starts[(starts >= 0) & (starts <= partner_frames - crop_frames)]
    if valid.size == 0:
        return None
    return int(valid[rng.integers(valid.size)])


def mix_embeddings(a: torch.Tensor, b: torch.Tensor, lam: float) -> torch.Tensor:
    """``lam * a + (1 - lam) * b``, re-normalised to the length of ``a`` (CLAP embeddings are unit vectors)."""
    mixed = lam * a + (1.0 - lam) * b
    return mixed * (a.norm() / mixed.norm().clamp_min(1e-8))
