"""Autoregressive sampling of MusicGen's delayed codebooks, one window of the context at a time.

transformers' ``generate`` does this too, but its guidance builds the unconditional half from the
text encoder alone (our extra condition tokens would be lost, and passing ``encoder_outputs``
breaks its batch size), and it has no per-step callback. This loop keeps its exact semantics
(the delay pattern of ``build_delay_pattern_mask``, guidance ``uncond + g * (cond - uncond)`` on
the logits as ``ClassifierFreeGuidanceLogitsProcessor``, then temperature, top-k, top-p) and adds a
caller-owned ``torch.Generator``, a progress callback, and windows with overlap for audio longer
than the trained context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["SamplingOptions", "sample_window", "undelay", "filter_logits"]


@dataclass
class SamplingOptions:
    guidance_scale: float | None = 3.0    # > 1: classifier-free guidance
    temperature: float = 1.0
    top_k: int = 250                      # 0: off
    top_p: float = 0.0                    # 0: off
    do_sample: bool = True                # False: greedy (argmax)


def filter_logits(logits: torch.Tensor, options: SamplingOptions) -> torch.Tensor:
    """Temperature, top-k and top-p on (N, V) logits (transformers' warpers, in that order)."""
    if options.temperature != 1.0:
        logits = logits / options.temperature
    if options.top_k:
        k = min(options.top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if 0.0 < options.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        remove = cumulative - sorted_logits.softmax(-1) > options.top_p  # keep the token that crosses top_p
        logits = logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))
    return logits


def undelay(sequence: torch.Tensor, num_codebooks: int, frames: int) -> torch.Tensor:
    """(B*K, L) delayed sequence (start token first) -> (B, K, frames) codes."""
    seq = sequence.reshape(-1, num_codebooks, sequence.shape[-1])
    return torch.stack([seq[:, k, k + 1 : k + 1 + frames] for k in range(num_codebooks)], dim=1)


@torch.no_grad()
def sample_window(musicgen, states: torch.Tensor, mask: torch.Tensor, frames: int, options: SamplingOptions,
                  prompt_codes: torch.Tensor | None = None, generator: torch.Generator | None = None,
                  on_step: Callable[[int, torch.Tensor], bool | None] | None = None) -> torch.Tensor:
    """Codes (B, K, frames) of one window, continuing ``prompt_codes`` (B, K, P) when given.

    ``states``/``mask``: conditions (B, M, H) / (B, M); with guidance, the unconditional half is
    the same tokens all masked (transformers' convention). ``on_step(step, sequence)`` is called
    after every new position (``sequence``: the delayed (B*K, L) buffer so far).
    """
    decoder = musicgen.decoder
    k, pad = decoder.num_codebooks, decoder.config.pad_token_id
    batch, device = states.shape[0], states.device
    prompt = prompt_codes if prompt_codes is not None else torch.zeros(batch, k, 0, dtype=torch.long, device=device)
    if prompt.shape[-1] >= frames:
        return prompt[..., :frames]
    start = torch.full((batch, k, 1), decoder.config.bos_token_id, dtype=torch.long, device=device)
    ids = torch.cat([start, prompt.long()], dim=-1).reshape(batch * k, -1)
    ids, pattern = decoder.build_delay_pattern_mask(ids, pad_token_id=pad, max_length=frames + k)
    guided = options.guidance_scale is not None and options.guidance_scale > 1
    if guided:
        states = torch.cat([states, torch.zeros_like(states)])
        mask = torch.cat([mask, torch.zeros_like(mask)])
    encoder_outputs = (states,)
    cache, feed = None, ids
    sequence = ids
    for step, position in enumerate(range(ids.shape[-1], frames + k)):
        inputs = torch.cat([feed, feed]) if guided else feed
        out = musicgen(encoder_outputs=encoder_outputs, attention_mask=mask, decoder_input_ids=inputs, cache=cache,
                       use_cache=True)  # fmt: skip
        cache = out.cache
        logits = out.logits[:, -1].float()  # (B*K [x2], V)
        if guided:
            cond, uncond = logits.chunk(2)
            logits = uncond + (cond - uncond) * options.guidance_scale
        if options.do_sample:
            probs = filter_logits(logits, options).softmax(-1)
            token = torch.multinomial(probs, 1, generator=generator)
        else:
            token = logits.argmax(-1, keepdim=True)
        fixed = pattern[:, position : position + 1]  # the delay pattern's pads / the prompt win
        token = torch.where(fixed == -1, token, fixed)
        sequence = torch.cat([sequence, token], dim=-1)
        feed = token
        if on_step is not None and on_step(step, sequence):
            break  # stopped early: the frames complete in every codebook so far
    return undelay(sequence, k, min(frames, sequence.shape[-1] - k))
