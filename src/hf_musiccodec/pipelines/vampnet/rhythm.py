"""Beat and onset times for the rhythm-driven prompts (librosa: offline, no weights)."""

from __future__ import annotations

import numpy as np

from ...metrics.beats import detect_beats

__all__ = ["beat_times", "onset_times"]


def beat_times(audio: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Beat times in seconds of a mono waveform (librosa's dynamic-programming tracker)."""
    if audio.shape[-1] < sampling_rate:  # the tracker needs a second; a shorter clip has no beat grid
        return np.zeros(0)
    return detect_beats(audio, sampling_rate)


def onset_times(audio: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Note onset times in seconds of a mono waveform (librosa's spectral-flux onset detector)."""
    import librosa

    return librosa.onset.onset_detect(y=np.asarray(audio, dtype=np.float32), sr=sampling_rate, units="time",
                                      backtrack=False)
