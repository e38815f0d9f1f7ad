"""VampNet's prompts as small pure functions on token masks that combine.

A mask is a bool tensor shaped like the codes, ``(batch, codebooks, frames)``: True = the model
generates that token, False = the token is kept from the input (the prompt). Every function
returns a new mask and leaves its inputs alone. Prompts combine as the paper's do: a token is
kept if any prompt keeps it, :func:`mask_and` (True only where every mask says generate); a
forced regeneration (:func:`codebook_mask`, :func:`dropout_mask`) is applied last.

    mask = full_mask(codes)
    mask = mask_and(mask, prefix_suffix_mask(codes, prefix_frames=75, suffix_frames=75))
    mask = mask_and(mask, periodic_mask(codes, period=16, width=1))
    mask = codebook_mask(mask, first_codebook=2)             # upper codebooks regenerated everywhere
    bits_per_second(mask, codebook_size=1024, frame_rate=75)  # the compression continuum's x axis
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "full_mask",
    "empty_mask",
    "random_mask",
    "prefix_suffix_mask",
    "periodic_mask",
    "time_keep_mask",
    "beat_mask",
    "onset_mask",
    "keep_lower_codebooks",
    "codebook_mask",
    "dropout_mask",
    "mask_and",
    "mask_or",
    "bits_per_second",
    "cosine_schedule",
]


def _check_codes(codes: torch.Tensor) -> None:
    if codes.ndim != 3:
        raise ValueError(f"codes must be (batch, codebooks, frames), got shape {tuple(codes.shape)}")


def full_mask(codes: torch.Tensor) -> torch.Tensor:
    """Generate everything (no prompt)."""
    _check_codes(codes)
    return torch.ones(codes.shape, dtype=torch.bool, device=codes.device)


def empty_mask(codes: torch.Tensor) -> torch.Tensor:
    """Keep everything (the codec's reconstruction)."""
    _check_codes(codes)
    return torch.zeros(codes.shape, dtype=torch.bool, device=codes.device)


def cosine_schedule(ratio: torch.Tensor | float) -> torch.Tensor:
    """MaskGIT's masking schedule: the share of tokens masked at progress ``ratio`` in [0, 1]."""
    return torch.cos(torch.as_tensor(ratio, dtype=torch.float32) * math.pi / 2)


def random_mask(codes: torch.Tensor, ratio: torch.Tensor | float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each token masked independently with probability ``cos(ratio * pi / 2)`` (VampNet's training
    masks; ``ratio`` is a number or one per example)."""
    _check_codes(codes)
    ratio = torch.as_tensor(ratio, dtype=torch.float32).reshape(-1, 1, 1)
    probability = cosine_schedule(ratio).expand(codes.shape).to(codes.device)
    return torch.rand(codes.shape, generator=generator, device=codes.device) < probability


def time_keep_mask(codes: torch.Tensor, keep_frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Keep every codebook of the frames where ``keep_frames`` (frames,) or (batch, frames) is True."""
    _check_codes(codes)
    keep = torch.as_tensor(np.asarray(keep_frames), dtype=torch.bool, device=codes.device)
    if keep.shape[-1] != codes.shape[-1]:
        raise ValueError(f"keep_frames has {keep.shape[-1]} frames, the codes {codes.shape[-1]}")
    keep = keep.reshape(-1, 1, codes.shape[-1])
    return (~keep).expand(codes.shape).clone()


def prefix_suffix_mask(codes: torch.Tensor, prefix_frames: int = 0, suffix_frames: int = 0) -> torch.Tensor:
    """Keep the first ``prefix_frames`` and the last ``suffix_frames`` frames (continuation,
    inpainting of the middle)."""
    if prefix_frames < 0 or suffix_frames < 0:
        raise ValueError(f"prefix and suffix must be >= 0 frames, got {prefix_frames} and {suffix_frames}")
    t = codes.shape[-1]
    keep = np.zeros(t, dtype=bool)
    keep[: min(prefix_frames, t)] = True
    if suffix_frames:
        keep[max(t - suffix_frames, 0):] = True
    return time_keep_mask(codes, keep)


def periodic_mask(codes: torch.Tensor, period: int, width: int = 1, random_roll: bool = False,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep ``width`` frames every ``period`` frames (VampNet's periodic prompt); ``random_roll``
    shifts the grid by a random offset per example. ``period`` 0 keeps nothing."""
    _check_codes(codes)
    if period == 0:
        return full_mask(codes)
    if period < 0 or width < 1:
        raise ValueError(f"period must be >= 0 and width >= 1, got period {period}, width {width}")
    b, t = codes.shape[0], codes.shape[-1]
    rolls = (torch.randint(0, period, (b,), generator=generator) if random_roll else torch.zeros(b, dtype=torch.long))
    phase = (torch.arange(t)[None, :] - rolls[:, None]) % period
    return time_keep_mask(codes, (phase < width).numpy())


def _frames_near(times_s, num_frames: int, frame_rate: float, before_s: float, after_s: float) -> np.ndarray:
    keep = np.zeros(num_frames, dtype=bool)
    for time in np.asarray(times_s, dtype=np.float64).reshape(-1):
        start = max(int(math.floor((time - before_s) * frame_rate)), 0)
        stop = min(max(int(math.ceil((time + after_s) * frame_rate)), start + 1), num_frames)
        keep[start:stop] = True
    return keep


def beat_mask(codes: torch.Tensor, beat_times_s, frame_rate: float, width_s: float,
              before_s: float = 0.0) -> torch.Tensor:
    """Keep the frames from ``before_s`` before each beat to ``width_s`` after it (the
    beat-driven prompt; beats from :func:`hf_musiccodec.metrics.detect_beats`). Every example of
    the batch gets the same beats."""
    if width_s <= 0 or before_s < 0:
        raise ValueError(f"width_s must be > 0 and before_s >= 0, got {width_s} and {before_s}")
    return time_keep_mask(codes, _frames_near(beat_times_s, codes.shape[-1], frame_rate, before_s, width_s))


def onset_mask(codes: torch.Tensor, onset_times_s, frame_rate: float, width_s: float) -> torch.Tensor:
    """Keep ``width_s`` from each note onset (the onset prompt; onsets from librosa's detector)."""
    return beat_mask(codes, onset_times_s, frame_rate, width_s)


def keep_lower_codebooks(mask: torch.Tensor, num_codebooks: int) -> torch.Tensor:
    """Keep the lowest ``num_codebooks`` codebooks everywhere (coarse-to-fine, or a timbre
    transfer that keeps the coarse structure)."""
    if num_codebooks < 0:
        raise ValueError(f"num_codebooks must be >= 0, got {num_codebooks}")
    mask = mask.clone()
    mask[:, :num_codebooks] = False
    return mask


def codebook_mask(mask: torch.Tensor, first_codebook: int) -> torch.Tensor:
    """Regenerate codebook ``first_codebook`` and above everywhere (VampNet's ``upper_codebook_mask``):
    the prompt then holds only the lower codebooks of its kept frames."""
    if first_codebook < 0:
        raise ValueError(f"first_codebook must be >= 0, got {first_codebook}")
    mask = mask.clone()
    mask[:, first_codebook:] = True
    return mask


def dropout_mask(mask: torch.Tensor, probability: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop each kept token of the prompt with ``probability`` (it is generated instead)."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {probability}")
    dropped = torch.rand(mask.shape, generator=generator).to(mask.device) < probability
    return mask | dropped


def mask_and(*masks: torch.Tensor) -> torch.Tensor:
    """Generate only where every mask generates: the union of the prompts' kept tokens."""
    out = masks[0]
    for m in masks[1:]:
        out = out & m
    return out


def mask_or(*masks: torch.Tensor) -> torch.Tensor:
    """Generate where any mask generates: the intersection of the kept tokens."""
    out = masks[0]
    for m in masks[1:]:
        out = out | m
    return out


def bits_per_second(mask: torch.Tensor, codebook_size: int, frame_rate: float) -> float:
    """Bit rate of the kept tokens (the prompt a decoder would need), per example on average."""
    frames = mask.shape[-1]
    kept = (~mask).sum().item() / mask.shape[0]
    return kept * math.log2(codebook_size) * frame_rate / frames
