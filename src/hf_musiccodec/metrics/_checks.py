"""Input checks shared by the generation metrics: each failure is a one-line ValueError."""

from __future__ import annotations

import numpy as np

from hf_musiccodec.audio.io import _to_numpy, match_channels, validate_waveform


def check_sr(sr, min_sr: float = 0.0, name: str = "sr") -> int:
    """A positive integer sampling rate of at least ``min_sr`` Hz."""
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"{name} must be a positive integer rate in Hz, got {sr!r}")
    if sr < min_sr:
        raise ValueError(f"{name}={sr} Hz is too low: this measure needs at least {min_sr:g} Hz")
    return int(sr)


def mono(audio, sr, name: str = "audio", min_sr: float = 0.0, min_seconds: float = 0.0) -> np.ndarray:
    """Finite, non-empty ``(samples,)`` or ``(channels, samples)`` audio -> float32 mono ``(samples,)``.

    Channels are averaged: the musical measures here (tempo, key, melody, ...) describe the mix.
    """
    check_sr(sr, min_sr)
    arr = validate_waveform(audio, name)  # AudioError is a ValueError
    arr = match_channels(arr, 1)[0].astype(np.float32, copy=False)
    if arr.size < min_seconds * sr:
        raise ValueError(f"{name}: {arr.size / sr:.3f} s is too short, need at least {min_seconds:g} s")
    return arr


def matrix(x, name: str, min_rows: int = 1) -> np.ndarray:
    """Finite float64 ``(n, dim)`` array with at least ``min_rows`` rows (``(dim,)`` is one row)."""
    arr = np.asarray(_to_numpy(x), dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected shape (n, dim), got {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name}: need at least {min_rows} rows, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def vector(x, name: str, allow_empty: bool = False) -> np.ndarray:
    """Finite float64 1-D array (e.g. beat times, a curve, per-clip values)."""
    arr = np.asarray(_to_numpy(x), dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name}: empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr
