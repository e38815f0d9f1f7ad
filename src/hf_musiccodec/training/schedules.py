"""Learning-rate schedules shared by the generator solvers."""

from __future__ import annotations

import math

import torch

__all__ = ["warmup_cosine"]


def warmup_cosine(optimizer, warmup_steps: int, max_steps: int, floor: float = 0.1):
    """Linear warm-up, then cosine decay to ``floor`` of the rate at ``max_steps`` (audiocraft's
    MusicGen schedule)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
