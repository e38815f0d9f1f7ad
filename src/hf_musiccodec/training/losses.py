"""Reconstruction, adversarial and balancing losses for neural audio codec training.

* :class:`MultiScaleMelLoss` - DAC's multi-scale log-mel L1 (+ optional linear mel term).
* :class:`MultiResolutionSTFTLoss` - Parallel WaveGAN's spectral convergence + log magnitude.
* :func:`feature_matching_loss` - L1 between discriminator feature maps (DAC), or
  EnCodec's relative version.
* hinge (EnCodec / MelGAN) and least-squares (HiFi-GAN / DAC) adversarial losses, as
  :func:`discriminator_loss` / :func:`generator_adversarial_loss` with ``kind=`` or the
  individual functions.
* :class:`LossBalancer` - EnCodec's gradient balancer.

Waveforms are ``(..., T)``; losses take ``(estimate, target)`` in that order. Adversarial
losses take the ``[(logits, feature_maps), ...]`` lists the discriminators return (a
plain tensor or list of logit tensors works too). The VQ commitment/codebook losses
come from the codec's forward output and are not reimplemented here.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from hf_musiccodec.audio.spectral import mel_spectrogram, stft_magnitude

__all__ = [
    "MultiScaleMelLoss",
    "MultiResolutionSTFTLoss",
    "feature_matching_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "discriminator_loss",
    "generator_adversarial_loss",
    "LossBalancer",
]


# ----------------------------------------------------------------------------- spectral losses


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


# ----------------------------------------------------------------------------- adversarial losses


def _logits(outputs) -> list[torch.Tensor]:
    """Logits from a discriminator output list, a list of tensors or one tensor."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [o[0] if isinstance(o, (tuple, list)) else o for o in outputs]


def _reduce(terms: list[torch.Tensor], reduction: str) -> torch.Tensor:
    total = torch.stack(terms).sum()
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / len(terms)
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def hinge_discriminator_loss(real_outputs, fake_outputs, reduction: str = "sum") -> torch.Tensor:
    """``mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))`` per sub-discriminator.

    ``reduction`` combines sub-discriminators: ``"sum"`` (DAC) or ``"mean"`` (EnCodec).
    Pass ``fake_outputs`` computed on ``fake.detach()``.
    """
    terms = [
        F.relu(1 - r).mean() + F.relu(1 + f).mean()
        for r, f in zip(_logits(real_outputs), _logits(fake_outputs), strict=True)
    ]
    return _reduce(terms, reduction)


def hinge_generator_loss(fake_outputs, reduction: str = "sum") -> torch.Tensor:
    """EnCodec's generator hinge loss ``mean(relu(1 - D(G(z))))`` per sub-discriminator."""
    return _reduce([F.relu(1 - f).mean() for f in _logits(fake_outputs)], reduction)


def lsgan_discriminator_loss(real_outputs, fake_outputs, reduction: str = "sum") -> torch.Tensor:
    """Least-squares GAN: ``mean((1 - D(x))²) + mean(D(G(z))²)`` per sub-discriminator."""
    terms = [
        (1 - r).square().mean() + f.square().mean()
        for r, f in zip(_logits(real_outputs), _logits(fake_outputs), strict=True)
    ]
    return _reduce(terms, reduction)


def lsgan_generator_loss(fake_outputs, reduction: str = "sum") -> torch.Tensor:
    """Least-squares GAN generator loss ``mean((1 - D(G(z)))²)`` per sub-discriminator."""
    return _reduce([(1 - f).square().mean() for f in _logits(fake_outputs)], reduction)


_ADV = {
    "hinge": (hinge_discriminator_loss, hinge_generator_loss),
    "lsgan": (lsgan_discriminator_loss, lsgan_generator_loss),
    "least_squares": (lsgan_discriminator_loss, lsgan_generator_loss),
    "mse": (lsgan_discriminator_loss, lsgan_generator_loss),
}


def _adv(kind: str):
    key = kind.lower().replace("-", "_")
    if key not in _ADV:
        raise ValueError(f"unknown adversarial loss {kind!r}; use one of {sorted(_ADV)}")
    return _ADV[key]


def discriminator_loss(real_outputs, fake_outputs, kind: str = "hinge", reduction: str = "sum") -> torch.Tensor:
    """Discriminator loss of ``kind`` ``"hinge"`` or ``"lsgan"`` (alias ``"least_squares"``, ``"mse"``)."""
    return _adv(kind)[0](real_outputs, fake_outputs, reduction=reduction)


def generator_adversarial_loss(fake_outputs, kind: str = "hinge", reduction: str = "sum") -> torch.Tensor:
    """Generator adversarial loss of ``kind`` ``"hinge"`` or ``"lsgan"``."""
    return _adv(kind)[1](fake_outputs, reduction=reduction)


def feature_matching_loss(
    real_outputs, fake_outputs, relative: bool = False, reduction: str = "sum", eps: float = 1e-8
) -> torch.Tensor:
    """L1 distance between discriminator feature maps of real and generated audio.

    Real feature maps are detached (the generator matches them).

    Args:
        real_outputs / fake_outputs: discriminator outputs ``[(logits, feature_maps), ...]``.
        relative: EnCodec's form, each layer's L1 divided by the mean ``|real feature|``.
        reduction: ``"sum"`` over all layers of all sub-discriminators (DAC, HiFi-GAN) or
            ``"mean"`` (EnCodec: average over sub-discriminators and layers).
    """
    terms = []
    for (_, real_maps), (_, fake_maps) in zip(real_outputs, fake_outputs, strict=True):
        for r, f in zip(real_maps, fake_maps, strict=True):
            r = r.detach()
            term = F.l1_loss(f, r)
            if relative:
                term = term / (r.abs().mean() + eps)
            terms.append(term)
    return _reduce(terms, reduction)


# ----------------------------------------------------------------------------- balancer


class LossBalancer:
    """EnCodec's loss balancer.

    Instead of backpropagating ``sum_i w_i * loss_i``, the gradient of each loss with
    respect to the model *output* (the decoded waveform) is rescaled so that loss i
    contributes a gradient of norm ``total_norm * w_i / sum_j w_j``::

        g = sum_i  total_norm * (w_i / sum_j w_j) * grad_i / (EMA(||grad_i||) + epsilon)

    and ``output.backward(g)`` sends ``g`` into the model. The weights are then the
    fractions of the output gradient each loss gets, independent of the losses'
    natural scales. Gradient norms are tracked with a bias-corrected EMA (averaged
    across processes when torch.distributed is initialised).

    Losses that do not go through ``output`` (VQ commitment/codebook losses) must be
    backpropagated by the caller, e.g. ``(commit_weight * commit_loss).backward()``
    after ``balancer.backward(..., retain_graph=True)`` or before it.

    Args:
        weights: loss name -> weight; every loss passed to :meth:`backward` needs one.
        balance_grads: if False, plain weighted sum (``g = sum_i w_i grad_i``).
        total_norm: norm of the combined gradient (per item when ``per_batch_item``).
        ema_decay: decay of the EMA of gradient norms (EnCodec: 0.999).
        per_batch_item: measure norms per batch item and average them (EnCodec),
            instead of over the whole batch.
        epsilon: avoids division by zero.
        monitor: record ``ratio_<name>`` (share of each loss in the raw gradient norms)
            in :attr:`metrics`.
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        balance_grads: bool = True,
        total_norm: float = 1.0,
        ema_decay: float = 0.999,
        per_batch_item: bool = True,
        epsilon: float = 1e-12,
        monitor: bool = False,
    ):
        self.weights = dict(weights)
        self.balance_grads = balance_grads
        self.total_norm = total_norm
        self.ema_decay = ema_decay
        self.per_batch_item = per_batch_item
        self.epsilon = epsilon
        self.monitor = monitor
        self._ema_sum: dict[str, float] = {}
        self._ema_weight: dict[str, float] = {}
        self.metrics: dict[str, float] = {}
        # last factor applied to each loss's gradient (its effective weight)
        self.scales: dict[str, float] = {}

    def _update_ema(self, norms: dict[str, float]) -> dict[str, float]:
        out = {}
        for name, value in norms.items():
            self._ema_sum[name] = self._ema_sum.get(name, 0.0) * self.ema_decay + value
            self._ema_weight[name] = self._ema_weight.get(name, 0.0) * self.ema_decay + 1.0
            out[name] = self._ema_sum[name] / self._ema_weight[name]
        return out

    def state_dict(self) -> dict:
        return {"ema_sum": dict(self._ema_sum), "ema_weight": dict(self._ema_weight)}

    def load_state_dict(self, state: dict) -> None:
        self._ema_sum = dict(state["ema_sum"])
        self._ema_weight = dict(state["ema_weight"])

    def compute_gradient(
        self, losses: Mapping[str, torch.Tensor], output: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Balanced gradient on ``output`` and the matching (detached) effective loss.

        Keeps the graph (``retain_graph=True``) so :meth:`backward` can use it.
        """
        missing = [k for k in losses if k not in self.weights]
        if missing:
            raise ValueError(f"no weight for losses {missing}; weights: {sorted(self.weights)}")
        grads: dict[str, torch.Tensor] = {}
        norms: dict[str, torch.Tensor] = {}
        for name, loss in losses.items():
            if self.weights[name] == 0:
                continue
            (grad,) = torch.autograd.grad(loss, [output], retain_graph=True, allow_unused=True)
            if grad is None:
                grad = torch.zeros_like(output)
            grads[name] = grad
            if self.per_batch_item and grad.dim() > 1:
                norms[name] = torch.linalg.vector_norm(grad.flatten(1), dim=1).mean()
            else:
                norms[name] = torch.linalg.vector_norm(grad)
        if not grads:
            return torch.zeros_like(output), output.new_zeros(())

        names = list(norms)
        stacked = torch.stack([norms[n].detach().float() for n in names])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stacked)
            stacked /= torch.distributed.get_world_size()
        avg_norms = self._update_ema(dict(zip(names, stacked.tolist())))

        if self.monitor:
            total = sum(avg_norms.values()) + self.epsilon
            self.metrics = {f"ratio_{k}": v / total for k, v in avg_norms.items()}
        total_weight = sum(self.weights[n] for n in names)
        out_grad = torch.zeros_like(output)
        effective = output.new_zeros(())
        for name in names:
            if self.balance_grads:
                scale = self.total_norm * (self.weights[name] / total_weight) / (self.epsilon + avg_norms[name])
            else:
                scale = self.weights[name]
            self.scales[name] = scale
            out_grad.add_(grads[name], alpha=scale)
            effective = effective + scale * losses[name].detach()
        return out_grad, effective

    def backward(
        self, losses: Mapping[str, torch.Tensor], output: torch.Tensor, retain_graph: bool = False
    ) -> torch.Tensor:
        """Backpropagate the balanced gradient of ``losses`` through ``output``.

        Args:
            losses: name -> scalar loss computed from ``output``.
            output: the model output the losses depend on (e.g. the decoded waveform);
                must require grad.
            retain_graph: keep the graph behind ``output`` for further backward calls.

        Returns:
            The effective loss ``sum_i scale_i * loss_i`` (detached, for logging).
        """
        grad, effective = self.compute_gradient(losses, output)
        output.backward(grad, retain_graph=retain_graph)
        return effective
