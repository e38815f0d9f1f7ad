"""MusicGen's codebook delay pattern for training (transformers applies it only in ``generate``).

Codebook k is shifted right by k steps, behind one start token: decoder position p holds codebook
k's frame ``p - k - 1``, and the pad/start token (``codebook_size``) fills the corners. Built with
transformers' own ``build_delay_pattern_mask`` so training sees exactly what generation feeds.
"""

from __future__ import annotations

import torch

__all__ = ["delayed_sequence", "training_inputs"]


def delayed_sequence(decoder, codes: torch.Tensor) -> torch.Tensor:
    """(B, K, T) codes -> (B, K, T + K) delayed sequence starting with the start token."""
    batch, k, frames = codes.shape
    pad = decoder.config.pad_token_id
    start = torch.full((batch, k, 1), decoder.config.bos_token_id, dtype=codes.dtype, device=codes.device)
    ids = torch.cat([start, codes], dim=-1).reshape(batch * k, frames + 1)
    _, pattern = decoder.build_delay_pattern_mask(ids, pad_token_id=pad, max_length=frames + k)
    return pattern.reshape(batch, k, frames + k)


def training_inputs(decoder, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(decoder_input_ids (B*K, T+K-1), labels (B, T+K-1, K))`` for MusicGen's forward.

    Labels are the inputs shifted by one; pad positions are ignored by transformers' loss (it
    masks labels equal to the pad token)."""
    seq = delayed_sequence(decoder, codes)
    batch, k, length = seq.shape
    inputs = seq[..., :-1].reshape(batch * k, length - 1)
    labels = seq[..., 1:].transpose(1, 2).contiguous()
    return inputs, labels
