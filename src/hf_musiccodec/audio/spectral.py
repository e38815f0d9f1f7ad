"""Differentiable STFT / mel spectrogram helpers in plain torch.

Everything here works on waveforms shaped ``(..., T)`` (any number of leading
dims) and keeps the leading dims in the output, so ``(B, C, T)`` becomes
``(B, C, F, frames)``. All functions are differentiable w.r.t. the waveform and
are used both by the training losses/discriminators and by the metrics.

The mel filterbank comes from ``librosa.filters.mel`` (Slaney-style, area
normalised, the same one DAC/audiotools and HiFi-GAN use) and is cached per
``(sr, n_fft, n_mels, fmin, fmax, device, dtype)``; windows are cached too.
"""

from __future__ import annotations

import functools
import warnings
from typing import Optional

import torch

__all__ = [
    "get_window",
    "mel_filterbank",
    "stft",
    "stft_magnitude",
    "mel_spectrogram",
    "log_mel_spectrogram",
]


@functools.lru_cache(maxsize=64)
def _cached_window(kind: str, length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if kind in ("hann", "hanning"):
        return torch.hann_window(length, periodic=True, device=device, dtype=dtype)
    if kind == "hamming":
        return torch.hamming_window(length, periodic=True, device=device, dtype=dtype)
    if kind in ("rect", "boxcar", "ones"):
        return torch.ones(length, device=device, dtype=dtype)
    raise ValueError(f"unknown window {kind!r}; use 'hann', 'hamming' or 'rect'")


def get_window(
    kind: str, length: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Periodic analysis window (cached; do not modify the returned tensor in place)."""
    # Built outside inference mode: a cached inference tensor would break every later training step.
    with torch.inference_mode(False):
        return _cached_window(kind, int(length), torch.device(device or "cpu"), dtype)


@functools.lru_cache(maxsize=128)
def _cached_mel(
    sr: int, n_fft: int, n_mels: int, fmin: float, fmax: Optional[float], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    import librosa

    with warnings.catch_warnings():
        # tiny windows with many mel bands produce empty filters; that is expected
        # for the smallest scales of DAC's multi-scale mel loss
        warnings.simplefilter("ignore", UserWarning)
        fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return torch.as_tensor(fb, dtype=dtype, device=device)


def mel_filterbank(
    sr: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: Optional[float] = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """librosa mel filterbank as a ``(n_mels, n_fft // 2 + 1)`` tensor (cached, read only)."""
    with torch.inference_mode(False):  # see get_window
        return _cached_mel(
            int(sr), int(n_fft), int(n_mels), float(fmin), None if fmax is None else float(fmax),
            torch.device(device or "cpu"), dtype,
        )


def stft(
    x: torch.Tensor,
    n_fft: int,
    hop_length: Optional[int] = None,
    win_length: Optional[int] = None,
    window: str = "hann",
    center: bool = True,
    pad_mode: str = "reflect",
    normalized: bool = False,
) -> torch.Tensor:
    """Complex STFT of ``x`` shaped ``(..., T)`` -> ``(..., n_fft // 2 + 1, frames)``.

    Args:
        n_fft: FFT size (number of frequency bins is ``n_fft // 2 + 1``).
        hop_length: hop between frames; defaults to ``n_fft // 4``.
        win_length: window length (<= n_fft, zero padded to n_fft); defaults to ``n_fft``.
        window: ``"hann"`` (periodic), ``"hamming"`` or ``"rect"``.
        center: pad the signal by ``n_fft // 2`` on both sides (torch.stft semantics).
        pad_mode: padding mode used when ``center`` (``"reflect"`` needs T > n_fft // 2;
            shorter signals fall back to ``"constant"``).
        normalized: multiply by ``n_fft ** -0.5`` (torch.stft ``normalized=True``,
            what EnCodec's discriminator uses).
    """
    hop_length = hop_length or n_fft // 4
    win_length = win_length or n_fft
    lead, t = x.shape[:-1], x.shape[-1]
    flat = x.reshape(-1, t)
    if center and pad_mode == "reflect" and t <= n_fft // 2:
        pad_mode = "constant"
    if not center and t < n_fft:  # make at least one frame
        flat = torch.nn.functional.pad(flat, (0, n_fft - t))
    win = get_window(window, win_length, flat.device, flat.dtype if flat.is_floating_point() else torch.float32)
    spec = torch.stft(
        flat,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=win,
        center=center,
        pad_mode=pad_mode,
        normalized=normalized,
        return_complex=True,
    )
    return spec.reshape(*lead, *spec.shape[-2:])


def stft_magnitude(
    x: torch.Tensor,
    n_fft: int,
    hop_length: Optional[int] = None,
    win_length: Optional[int] = None,
    window: str = "hann",
    center: bool = True,
    power: float = 1.0,
    eps: float = 1e-10,
) -> torch.Tensor:
    """``|STFT(x)| ** power`` shaped ``(..., n_fft // 2 + 1, frames)``.

    The magnitude is ``sqrt(max(re² + im², eps))``: the clamp keeps the gradient of
    sqrt finite at silent bins and keeps log-magnitude losses finite.
    """
    spec = stft(x, n_fft, hop_length, win_length, window=window, center=center)
    power_spec = (spec.real.square() + spec.imag.square()).clamp_min(eps)
    if power == 2.0:
        return power_spec
    return power_spec.pow(power / 2.0)


def mel_spectrogram(
    x: torch.Tensor,
    sr: int,
    n_fft: int,
    n_mels: int = 80,
    hop_length: Optional[int] = None,
    win_length: Optional[int] = None,
    fmin: float = 0.0,
    fmax: Optional[float] = None,
    window: str = "hann",
    center: bool = True,
    power: float = 1.0,
) -> torch.Tensor:
    """Mel spectrogram ``(..., n_mels, frames)`` of ``x`` ``(..., T)``.

    ``power=1`` applies the filterbank to the magnitude (DAC / HiFi-GAN), ``power=2``
    to the power spectrum (librosa's default).
    """
    mag = stft_magnitude(x, n_fft, hop_length, win_length, window=window, center=center, power=power)
    fb = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, device=mag.device, dtype=mag.dtype)
    return torch.matmul(fb, mag)


def log_mel_spectrogram(
    x: torch.Tensor,
    sr: int,
    n_fft: int,
    n_mels: int = 80,
    hop_length: Optional[int] = None,
    win_length: Optional[int] = None,
    fmin: float = 0.0,
    fmax: Optional[float] = None,
    window: str = "hann",
    center: bool = True,
    power: float = 1.0,
    clamp_eps: float = 1e-5,
    log: str = "log10",
) -> torch.Tensor:
    """``log(max(mel, clamp_eps))`` with ``log`` in ``{"log10", "ln"}``."""
    mel = mel_spectrogram(x, sr, n_fft, n_mels, hop_length, win_length, fmin, fmax, window, center, power)
    mel = mel.clamp_min(clamp_eps)
    if log == "log10":
        return torch.log10(mel)
    if log in ("ln", "log", "natural"):
        return torch.log(mel)
    raise ValueError(f"log must be 'log10' or 'ln', got {log!r}")
