"""Spectral losses between waveforms: the solvers' reconstruction losses and the distances of
this package. They are defined on the metrics side so that the dependency runs one way only
(solvers -> metrics).

* :class:`MultiScaleMelLoss` - DAC's multi-scale log-mel L1 (+ optional linear mel term).
* :class:`MultiResolutionSTFTLoss` - Parallel WaveGAN's spectral convergence + log magnitude.

Waveforms are ``(..., T)``; losses take ``(estimate, target)`` in that order.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from hf_musiccodec.audio.spectral import mel_spectrogram, stft_magnitude

__all__ = ["MultiScaleMelLoss", "MultiResolutionSTFTLoss"]


class MultiScaleMelLoss(nn.Module):
    """DAC's multi-scale mel loss.

    For every (window length, n_mels) pair: ``log_weight * L1(log10(max(mel_est, eps)^pow),
    log10(max(mel_ref, eps)^pow)) + mag_weight * L1(mel_est, mel_ref)``, summed over scales.
    Mel spectrograms are computed on the STFT magnitude with hop = ``window // 4``.

    Args:
        sample_rate: audio sample rate (sets the mel scale).
        window_lengths: STFT window (= FFT size) of each scale. DAC's 44.1 kHz
            config: 32 ... 2048; its library default is (2048, 512).
        n_mels: mel bands per scale (DAC: 5 ... 320).
        clamp_eps: floor applied to mel magnitudes before the log.
        pow: exponent applied after clamping (DAC: 1.0 in its configs, 2.0 default).
        log_weight: weight of the log-mel L1 term.
        mag_weight: weight of the linear mel L1 term (DAC configs: 0.0).
        mel_fmin: lowest mel frequency of each scale (scalar or per-scale list).
        mel_fmax: highest mel frequency of each scale (None = Nyquist).
        hop_factor: hop as a fraction of the window.
        loss_fn: elementwise-averaged distance, default L1.
    """

    def __init__(
        self,
        sample_rate: int,
        window_lengths: Sequence[int] = (32, 64, 128, 256, 512, 1024, 2048),
        n_mels: Sequence[int] = (5, 10, 20, 40, 80, 160, 320),
        clamp_eps: float = 1e-5,
        pow: float = 1.0,
        log_weight: float = 1.0,
        mag_weight: float = 0.0,
        mel_fmin: Union[float, Sequence[float]] = 0.0,
        mel_fmax: Union[Optional[float], Sequence[Optional[float]]] = None,
        hop_factor: float = 0.25,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.l1_loss,
    ):
        super().__init__()
        if len(window_lengths) != len(n_mels):
            raise ValueError("window_lengths and n_mels must have the same length")
        n = len(window_lengths)
        self.sample_rate = sample_rate
        self.window_lengths = list(window_lengths)
        self.n_mels = list(n_mels)
        self.mel_fmin = list(mel_fmin) if isinstance(mel_fmin, (list, tuple)) else [mel_fmin] * n
        self.mel_fmax = list(mel_fmax) if isinstance(mel_fmax, (list, tuple)) else [mel_fmax] * n
        self.clamp_eps = clamp_eps
        self.pow = pow
        self.log_weight = log_weight
        self.mag_weight = mag_weight
        self.hop_factor = hop_factor
        self.loss_fn = loss_fn

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = estimate.new_zeros(())
        for win, n_mels, fmin, fmax in zip(self.window_lengths, self.n_mels, self.mel_fmin, self.mel_fmax):
            kw = dict(sr=self.sample_rate, n_fft=win, n_mels=n_mels, hop_length=max(1, int(win * self.hop_factor)),
                      fmin=fmin, fmax=fmax)
            m_est = mel_spectrogram(estimate, **kw)
            m_ref = mel_spectrogram(target, **kw)
            if self.log_weight:
                log_est = m_est.clamp_min(self.clamp_eps).pow(self.pow).log10()
                log_ref = m_ref.clamp_min(self.clamp_eps).pow(self.pow).log10()
                loss = loss + self.log_weight * self.loss_fn(log_est, log_ref)
            if self.mag_weight:
                loss = loss + self.mag_weight * self.loss_fn(m_est, m_ref)
        return loss


class MultiResolutionSTFTLoss(nn.Module):
    """Multi-resolution STFT loss (Parallel WaveGAN): spectral convergence + log magnitude.

    Per resolution: ``sc = ||S_ref| - |S_est||_F / ||S_ref||_F`` and
    ``mag = mean |log|S_ref| - log|S_est||``; both are averaged over resolutions.

    Args:
        fft_sizes: FFT size per resolution.
        hop_sizes: hop per resolution.
        win_lengths: window length per resolution (<= FFT size).
        sc_weight: weight of the spectral convergence term.
        mag_weight: weight of the log magnitude term.
        eps: floor of the power spectrum (magnitude floor is ``sqrt(eps)``).
    """

    def __init__(
        self,
        fft_sizes: Sequence[int] = (1024, 2048, 512),
        hop_sizes: Sequence[int] = (120, 240, 50),
        win_lengths: Sequence[int] = (600, 1200, 240),
        sc_weight: float = 1.0,
        mag_weight: float = 1.0,
        eps: float = 1e-7,
    ):
        super().__init__()
        if not len(fft_sizes) == len(hop_sizes) == len(win_lengths):
            raise ValueError("fft_sizes, hop_sizes and win_lengths must have the same length")
        self.resolutions = list(zip(fft_sizes, hop_sizes, win_lengths))
        self.sc_weight = sc_weight
        self.mag_weight = mag_weight
        self.eps = eps

    def forward(
        self, estimate: torch.Tensor, target: torch.Tensor, return_components: bool = False
    ) -> Union[torch.Tensor, tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        sc = estimate.new_zeros(())
        mag = estimate.new_zeros(())
        for n_fft, hop, win in self.resolutions:
            s_est = stft_magnitude(estimate, n_fft, hop, win, eps=self.eps)
            s_ref = stft_magnitude(target, n_fft, hop, win, eps=self.eps)
            # Frobenius norms per item (over freq x frames), averaged over items
            num = torch.linalg.vector_norm(s_ref - s_est, dim=(-2, -1))
            den = torch.linalg.vector_norm(s_ref, dim=(-2, -1))
            sc = sc + (num / den).mean()
            mag = mag + F.l1_loss(s_est.log(), s_ref.log())
        sc = sc / len(self.resolutions)
        mag = mag / len(self.resolutions)
        total = self.sc_weight * sc + self.mag_weight * mag
        if return_components:
            return total, {"spectral_convergence": sc, "log_magnitude": mag}
        return total
