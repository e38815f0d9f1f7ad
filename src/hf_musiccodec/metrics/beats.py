"""Beat times from librosa's dynamic-programming tracker and beat F1 (``mir_eval``)."""

from __future__ import annotations

import numpy as np

from hf_musiccodec.metrics._checks import mono, vector

__all__ = ["detect_beats", "beat_f1"]


def detect_beats(audio, sr: int, start_bpm: float = 120.0, bpm: float | None = None, trim: bool = True) -> np.ndarray:
    """Beat times in seconds ``(beats,)``, ascending; empty when no beat is found. ``bpm``: the
    known tempo (e.g. a render's), so that only the beats' phase is estimated; ``trim=False``
    keeps the weak beats at the ends (librosa's ``trim``)."""
    import librosa

    y = mono(audio, sr, min_seconds=1.0)
    _, beats = librosa.beat.beat_track(y=y, sr=sr, start_bpm=start_bpm, bpm=bpm, units="time", trim=trim)
    return np.asarray(beats, dtype=np.float64)


def _beat_times(x, name: str, allow_empty: bool) -> np.ndarray:
    t = vector(x, name, allow_empty=allow_empty)
    if (t < 0).any() or (np.diff(t) <= 0).any():
        raise ValueError(f"{name}: beat times must be non-negative seconds in increasing order")
    return t


def beat_f1(reference_beats, estimated_beats, window: float = 0.07) -> float:
    """F-measure (0-1) of estimated beat times against reference ones, a hit being within
    ``window`` seconds (70 ms as in MIREX and Music ControlNet). No estimated beats scores 0."""
    import mir_eval

    if window <= 0:
        raise ValueError(f"window must be positive seconds, got {window}")
    ref = _beat_times(reference_beats, "reference_beats", allow_empty=False)
    est = _beat_times(estimated_beats, "estimated_beats", allow_empty=True)
    if est.size == 0:  # mir_eval would warn and return 0
        return 0.0
    return float(mir_eval.beat.f_measure(ref, est, f_measure_threshold=window))
