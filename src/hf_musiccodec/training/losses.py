"""Reconstruction, adversarial and balancing losses for neural audio codec training.

* :class:`MultiScaleMelLoss`, :class:`MultiResolutionSTFTLoss` - spectral losses, defined in
  :mod:`hf_musiccodec.metrics.spectral_losses` (the metrics use them as distances).
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

from typing import Mapping

import torch
import torch.nn.functional as F

# The spectral losses live with the metrics (which must not import training); re-exported here.
from hf_musiccodec.metrics.spectral_losses import MultiResolutionSTFTLoss, MultiScaleMelLoss

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
