"""VampNet's sampler: fill the masked tokens in a few parallel passes (MaskGIT's iterative decoding).

Each pass predicts every masked token at once, samples them (temperature, then typical or top-p
filtering, with transformers' logits warpers), and keeps the most confident ones; the rest are
masked again. The share still masked after pass ``i`` of ``n`` follows the cosine schedule
``cos(pi/2 * i/n)`` of the tokens masked at the start, so the last pass fills everything. The
confidence is the sampled token's log-probability plus Gumbel noise scaled by ``mask_temperature``
and annealed to zero over the passes (VampNet's randomised re-masking).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from transformers.generation.logits_process import TopPLogitsWarper, TypicalLogitsWarper

from .masks import cosine_schedule

__all__ = ["VampSamplingOptions", "vamp"]


@dataclass
class VampSamplingOptions:
    """Args:
    num_steps: parallel passes (the paper uses 12 to 36).
    temperature: divides the logits before sampling.
    mask_temperature: scale of the Gumbel noise on the confidences at the first pass (annealed to 0).
    typical_mass: typical filtering's probability mass (None: off); keeps ``typical_min_tokens`` at least.
    top_p: nucleus filtering (None: off).
    guidance_scale: classifier-free guidance on the condition (1: off; needs a condition).
    """

    num_steps: int = 24
    temperature: float = 1.0
    mask_temperature: float = 10.5
    typical_mass: float | None = 0.15
    typical_min_tokens: int = 64
    top_p: float | None = None
    guidance_scale: float = 1.0

    def validate(self) -> None:
        if not (isinstance(self.num_steps, int) and 1 <= self.num_steps <= 256):
            raise ValueError(f"num_inference_steps must be an integer in [1, 256], got {self.num_steps!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not self.mask_temperature >= 0:
            raise ValueError(f"mask_temperature must be >= 0, got {self.mask_temperature}")
        if self.typical_mass is not None and not 0 < self.typical_mass < 1:
            raise ValueError(f"typical_mass must be in (0, 1) or None, got {self.typical_mass}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] or None, got {self.top_p}")
        if not self.guidance_scale >= 0:
            raise ValueError(f"guidance_scale must be >= 0, got {self.guidance_scale}")


def _gumbel(shape, generator, device) -> torch.Tensor:
    u = torch.rand(shape, generator=generator).clamp_(1e-10, 1 - 1e-10).to(device)
    return -torch.log(-torch.log(u))


def _logits(model, z, condition_embeds, guidance_scale: float) -> torch.Tensor:
    if condition_embeds is None or guidance_scale == 1.0:
        return model(z, condition_embeds=condition_embeds).logits.float()
    b = z.shape[0]
    on = torch.arange(2 * b, device=z.device) < b  # first half conditioned, second half not
    both = model(torch.cat([z, z]), condition_embeds=torch.cat([condition_embeds, condition_embeds]),
                 condition_mask=on).logits.float()
    conditioned, unconditioned = both[:b], both[b:]
    return unconditioned + guidance_scale * (conditioned - unconditioned)


def _sample(logits: torch.Tensor, options: VampSamplingOptions, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampled tokens and their log-probabilities (under the filtered distribution), logits' shape less V."""
    shape, vocab = logits.shape[:-1], logits.shape[-1]
    scores = logits.reshape(-1, vocab) / options.temperature
    if options.typical_mass is not None:
        scores = TypicalLogitsWarper(options.typical_mass, min_tokens_to_keep=options.typical_min_tokens)(None, scores)
    if options.top_p is not None:
        scores = TopPLogitsWarper(options.top_p)(None, scores)
    log_probs = torch.log_softmax(scores, dim=-1)
    tokens = torch.multinomial(log_probs.exp().cpu(), 1, generator=generator).to(logits.device)
    return tokens.view(shape), log_probs.gather(-1, tokens).view(shape)


@torch.no_grad()
def vamp(model, codes: torch.Tensor, mask: torch.Tensor, options: VampSamplingOptions | None = None,
         generator: torch.Generator | None = None, condition_embeds: torch.Tensor | None = None,
         on_step: Callable[[int, torch.Tensor], bool | None] | None = None) -> torch.Tensor:
    """Codes with the masked tokens of ``codes`` (batch, num_codebooks, frames) generated.

    ``mask`` (same shape, True = generate) never touches the model's conditioning codebooks.
    ``on_step(i, codes)`` runs after each of the ``num_steps`` passes with the current codes (mask
    tokens where still masked), also after passes that had nothing left to fill; returning True
    stops early, and the tokens still masked take that pass's samples.
    """
    options = options or VampSamplingOptions()
    options.validate()
    cfg = model.config
    if codes.shape != mask.shape or codes.ndim != 3 or codes.shape[1] != cfg.num_codebooks:
        raise ValueError(f"codes {tuple(codes.shape)} and mask {tuple(mask.shape)} must both be "
                         f"(batch, {cfg.num_codebooks}, frames)")
    n_cond, mask_id = cfg.num_conditioning_codebooks, cfg.mask_token_id
    mask = mask.to(codes.device).clone()
    mask[:, :n_cond] = False
    z = codes.masked_fill(mask, mask_id)
    masked_at_start = mask[:, n_cond:].flatten(1).sum(1)
    for i in range(options.num_steps):
        still = z[:, n_cond:] == mask_id
        if not still.any():  # nothing left to fill: the pass is done without the model
            if on_step is not None and on_step(i, z):
                break
            continue
        tokens, log_probs = _sample(_logits(model, z, condition_embeds, options.guidance_scale), options, generator)
        progress = (i + 1) / options.num_steps
        # how many stay masked after this pass: the schedule, but at least one fewer than now
        n_still = still.flatten(1).sum(1)
        target = torch.floor(masked_at_start * cosine_schedule(progress)).long()
        target = torch.minimum(target, (n_still - 1).clamp(min=0))
        noise = options.mask_temperature * (1 - progress) * _gumbel(log_probs.shape, generator, z.device)
        confidence = (log_probs + noise).masked_fill(~still, float("inf")).flatten(1)
        ranks = torch.empty_like(confidence, dtype=torch.long)
        order = confidence.argsort(dim=1)
        ranks.scatter_(1, order, torch.arange(order.shape[1], device=z.device).expand_as(order))
        fill = still & ~(ranks < target[:, None]).view_as(still)
        z[:, n_cond:] = torch.where(fill, tokens, z[:, n_cond:])
        if on_step is not None and on_step(i, z) and i + 1 < options.num_steps:
            left = z[:, n_cond:] == mask_id
            z[:, n_cond:] = torch.where(left, tokens, z[:, n_cond:])
            break
    return z
