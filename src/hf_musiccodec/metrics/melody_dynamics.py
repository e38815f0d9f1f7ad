"""Music ControlNet's melody and dynamics controls as numpy feature extractors, and their metrics.

The extractors are what the ControlNet / DITTO code uses to build control signals from audio; the
metrics compare the controls extracted from a generation with those of the reference. All frames
are ``hop_length`` samples apart (256 by default, as in Music ControlNet).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import signal

from hf_musiccodec.audio.spectral import get_window, stft_magnitude
from hf_musiccodec.metrics._checks import mono, vector

__all__ = [
    "MELODY_CUTOFF_HZ",
    "melody_chroma",
    "melody_pitch_classes",
    "melody_accuracy",
    "dynamics_curve",
    "dynamics_correlation",
]

# Music ControlNet high-passes at middle C so that bass notes do not win the chroma argmax.
MELODY_CUTOFF_HZ = 261.2


def _power_spectrogram(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    return stft_magnitude(torch.from_numpy(y), n_fft, hop_length, power=2.0, eps=0.0).double().numpy()


def melody_chroma(
    audio, sr: int, n_fft: int = 2048, hop_length: int = 256, cutoff_hz: float = MELODY_CUTOFF_HZ
) -> np.ndarray:
    """Chroma ``(12, frames)`` (C first, each frame max-normalised to 1) after a 2nd-order
    Butterworth high-pass at ``cutoff_hz``."""
    import librosa

    y = mono(audio, sr, min_sr=4 * cutoff_hz)
    sos = signal.butter(2, cutoff_hz, btype="highpass", fs=sr, output="sos")
    y = signal.sosfilt(sos, y).astype(np.float32)
    return librosa.feature.chroma_stft(S=_power_spectrogram(y, n_fft, hop_length), sr=sr, n_fft=n_fft)


def melody_pitch_classes(audio, sr: int, **chroma_kwargs) -> np.ndarray:
    """Top-1 pitch class per frame ``(frames,)``, 0 = C ... 11 = B (silent frames give 0)."""
    return melody_chroma(audio, sr, **chroma_kwargs).argmax(axis=0)


def melody_accuracy(reference, estimate, sr: int, **chroma_kwargs) -> float:
    """Share of frames (0-1) whose top-1 pitch class matches the reference's, over the frames
    both clips have. 1/12 is chance for unrelated audio."""
    ref = melody_pitch_classes(reference, sr, **chroma_kwargs)
    est = melody_pitch_classes(estimate, sr, **chroma_kwargs)
    n = min(ref.size, est.size)
    return float(np.mean(ref[:n] == est[:n]))


def dynamics_curve(
    audio,
    sr: int,
    n_fft: int = 2048,
    hop_length: int = 256,
    smooth_seconds: float = 1.0,
    polyorder: int = 1,
    floor_db: float = -100.0,
) -> np.ndarray:
    """Frame energy in dB ``(frames,)``, Savitzky-Golay smoothed over ``smooth_seconds``.

    Scaled so the value is the frame's mean-square level in dBFS (a full-scale sine reads about
    -3 dB), floored at ``floor_db`` so silence stays finite.
    """
    y = mono(audio, sr)
    power = _power_spectrogram(y, n_fft, hop_length)
    # Parseval on the one-sided spectrum of a windowed frame -> window-weighted mean square.
    norm = get_window("hann", n_fft, dtype=torch.float64).square().sum().item() * n_fft / 2
    db = 10 * np.log10(np.maximum(power.sum(axis=0) / norm, 10 ** (floor_db / 10)))
    window = min(int(smooth_seconds * sr / hop_length) // 2 * 2 + 1, (db.size - 1) // 2 * 2 + 1)
    if window <= polyorder:  # too short to smooth
        return db
    return signal.savgol_filter(db, window, polyorder)


def dynamics_correlation(reference, estimate, sr: int, **curve_kwargs) -> float:
    """Pearson correlation (-1 to 1, higher is better) between the two clips' dynamics curves,
    over the frames both have. Raises ValueError when a curve is constant (e.g. silence)."""
    ref = vector(dynamics_curve(reference, sr, **curve_kwargs), "reference curve")
    est = vector(dynamics_curve(estimate, sr, **curve_kwargs), "estimate curve")
    n = min(ref.size, est.size)
    ref, est = ref[:n], est[:n]
    if n < 2 or np.ptp(ref) < 1e-6 or np.ptp(est) < 1e-6:  # dB; savgol leaves round-off on flat input
        raise ValueError("dynamics curve is constant (silent or too short audio): correlation undefined")
    return float(np.corrcoef(ref, est)[0, 1])
