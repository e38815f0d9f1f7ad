"""Music ControlNet's and DITTO's time-varying features as differentiable torch functions.

The numpy extractors in :mod:`hf_musiccodec.metrics.melody_dynamics` measure generations; these
compute the same features from a torch waveform so that a loss on them reaches the waveform (and
through the codec's decoder, the latents and the initial noise, as DITTO optimises). Frames are
``hop_length`` samples apart, centred (``torch.stft`` semantics), as the numpy versions.

- :func:`melody_chroma` ``(..., 12, frames)``: power spectrogram weighted by the power response of
  Music ControlNet's 2nd-order Butterworth high-pass at middle C (applied in the frequency domain:
  the same magnitude response with no phase), folded onto pitch classes with librosa's chroma
  filterbank, each frame divided by its sum (a distribution over pitch classes).
- :func:`loudness_db` ``(..., frames)``: frame mean square in dBFS (as ``dynamics_curve``),
  smoothed with the Savitzky-Golay filter ``dynamics_curve`` uses (order 1: a centred moving average).
- :func:`self_similarity` ``(..., frames, frames)``: cosine similarity between feature frames
  (DITTO's musical-structure target).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from .spectral import get_window, stft_magnitude

__all__ = ["MELODY_CUTOFF_HZ", "melody_chroma", "loudness_db", "self_similarity", "resample_curve"]

MELODY_CUTOFF_HZ = 261.2  # Music ControlNet's high-pass: bass notes do not win the chroma argmax


@functools.lru_cache(maxsize=8)
def _chroma_weights(sr: int, n_fft: int, cutoff_hz: float) -> torch.Tensor:
    """``(12, bins)``: librosa's chroma filterbank times the high-pass power response per bin."""
    import librosa

    bank = librosa.filters.chroma(sr=sr, n_fft=n_fft)  # (12, bins), C first
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    with np.errstate(divide="ignore"):
        response = 1.0 / (1.0 + (cutoff_hz / np.maximum(freqs, 1e-6)) ** 4)  # |H|^2 of a 2nd-order Butterworth
    return torch.from_numpy((bank * response[None, :]).astype(np.float32))


def melody_chroma(x: torch.Tensor, sr: int, n_fft: int = 2048, hop_length: int = 256,
                  cutoff_hz: float = MELODY_CUTOFF_HZ, eps: float = 1e-8) -> torch.Tensor:
    """Pitch-class distribution per frame ``(..., 12, frames)`` of waveforms ``(..., samples)``."""
    power = stft_magnitude(x, n_fft, hop_length, power=2.0, eps=eps)
    chroma = torch.matmul(_chroma_weights(sr, n_fft, cutoff_hz).to(power.device, power.dtype), power)
    return chroma / chroma.sum(dim=-2, keepdim=True).clamp_min(eps)


@functools.lru_cache(maxsize=8)
def _savgol_kernel(window: int, polyorder: int) -> torch.Tensor:
    from scipy.signal import savgol_coeffs

    return torch.from_numpy(savgol_coeffs(window, polyorder).astype(np.float32))


def loudness_db(x: torch.Tensor, sr: int, n_fft: int = 2048, hop_length: int = 256, smooth_seconds: float = 1.0,
                polyorder: int = 1, floor_db: float = -100.0) -> torch.Tensor:
    """Smoothed frame level in dBFS ``(..., frames)`` of waveforms ``(..., samples)`` (a full-scale
    sine reads about -3 dB), floored at ``floor_db``; ``smooth_seconds=0`` leaves it unsmoothed."""
    power = stft_magnitude(x, n_fft, hop_length, power=2.0, eps=1e-12)
    norm = get_window("hann", n_fft, dtype=torch.float64).square().sum().item() * n_fft / 2  # Parseval
    db = 10 * torch.log10((power.sum(dim=-2) / norm).clamp_min(10 ** (floor_db / 10)))
    frames = db.shape[-1]
    window = min(int(smooth_seconds * sr / hop_length) // 2 * 2 + 1, (frames - 1) // 2 * 2 + 1)
    if window <= polyorder:
        return db
    kernel = _savgol_kernel(window, polyorder).to(db.device, db.dtype)
    flat = db.reshape(-1, 1, frames)
    smoothed = F.conv1d(F.pad(flat, (window // 2, window // 2), mode="replicate"), kernel.flip(0)[None, None])
    return smoothed.reshape(db.shape)


def self_similarity(features: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine self-similarity ``(..., frames, frames)`` of features ``(..., dim, frames)``."""
    unit = features / features.norm(dim=-2, keepdim=True).clamp_min(eps)
    return unit.transpose(-1, -2) @ unit


def resample_curve(curve, frames: int) -> torch.Tensor:
    """A curve ``(..., n)`` of any length linearly resampled to ``frames`` points (targets given at
    another frame rate, or drawn by hand)."""
    curve = torch.as_tensor(curve, dtype=torch.float32)
    if curve.shape[-1] == frames:
        return curve
    lead = curve.shape[:-1]
    out = F.interpolate(curve.reshape(1, -1, curve.shape[-1]), size=frames, mode="linear", align_corners=True)
    return out.reshape(*lead, frames)
