"""Spectral distances and SI-SDR (numpy or torch in, floats out)."""

from __future__ import annotations

from typing import Union

import numpy as np
import torch

from hf_musiccodec.metrics.spectral_losses import MultiResolutionSTFTLoss, MultiScaleMelLoss

ArrayLike = Union[np.ndarray, torch.Tensor]

__all__ = ["mel_distance", "stft_distance", "si_sdr", "as_batch"]


def as_batch(x: ArrayLike, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """numpy / torch ``(T,)``, ``(C, T)`` or ``(B, C, T)`` -> detached torch ``(B, C, T)``."""
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x.detach()
    t = t.to(device="cpu", dtype=dtype)
    if t.dim() == 1:
        return t[None, None]
    if t.dim() == 2:
        return t[None]
    if t.dim() == 3:
        return t
    raise ValueError(f"expected audio shaped (T,), (C, T) or (B, C, T), got {tuple(t.shape)}")


def _pair(ref: ArrayLike, est: ArrayLike, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    r, e = as_batch(ref, dtype), as_batch(est, dtype)
    if r.shape[:2] != e.shape[:2]:
        raise ValueError(f"ref and est batch/channel shapes differ: {tuple(r.shape)} vs {tuple(e.shape)}")
    n = min(r.shape[-1], e.shape[-1])  # codecs may pad the output: compare the common part
    return r[..., :n], e[..., :n]


def _finish(values: list[float], reduction: str):
    if reduction == "mean":
        return float(np.mean(values))
    if reduction == "none":
        return np.asarray(values, dtype=np.float64)
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


@torch.no_grad()
def mel_distance(ref: ArrayLike, est: ArrayLike, sr: int, reduction: str = "mean", **mel_kwargs):
    """DAC's multi-scale mel distance (log10-mel L1 summed over 7 scales, 32-2048 windows).

    ``mel_kwargs`` go to :class:`~hf_musiccodec.metrics.spectral_losses.MultiScaleMelLoss`
    (``window_lengths``, ``n_mels``, ``clamp_eps``, ...). Computed per batch item.
    """
    r, e = _pair(ref, est)
    loss = MultiScaleMelLoss(sr, **mel_kwargs)
    return _finish([float(loss(e[i], r[i])) for i in range(r.shape[0])], reduction)


@torch.no_grad()
def stft_distance(ref: ArrayLike, est: ArrayLike, reduction: str = "mean", **stft_kwargs):
    """Multi-resolution STFT distance (spectral convergence + log magnitude, averaged over
    FFT sizes 512/1024/2048). ``stft_kwargs`` go to
    :class:`~hf_musiccodec.metrics.spectral_losses.MultiResolutionSTFTLoss`. Computed per batch item.
    """
    r, e = _pair(ref, est)
    loss = MultiResolutionSTFTLoss(**stft_kwargs)
    return _finish([float(loss(e[i], r[i])) for i in range(r.shape[0])], reduction)


@torch.no_grad()
def si_sdr(ref: ArrayLike, est: ArrayLike, zero_mean: bool = True, eps: float = 1e-8, reduction: str = "mean"):
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019).

    ``est`` is projected on ``ref``: ``SI-SDR = 10 log10(|a ref|² / |est - a ref|²)`` with
    ``a = <est, ref> / |ref|²``, per channel (after removing the mean if ``zero_mean``),
    then averaged over channels. Identical signals give a very large value (bounded
    by ``eps``).
    """
    r, e = _pair(ref, est, torch.float64)
    if zero_mean:
        r = r - r.mean(dim=-1, keepdim=True)
        e = e - e.mean(dim=-1, keepdim=True)
    alpha = (e * r).sum(-1, keepdim=True) / (r.square().sum(-1, keepdim=True) + eps)
    target = alpha * r
    noise = e - target
    ratio = (target.square().sum(-1) + eps) / (noise.square().sum(-1) + eps)
    per_item = (10 * torch.log10(ratio)).mean(dim=1)  # mean over channels -> (B,)
    return _finish(per_item.tolist(), reduction)
