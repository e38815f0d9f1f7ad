"""Autoregressive sampling of MusicGen's delayed codebooks, one window of the context at a time.

transformers' ``generate`` does this too, but its guidance builds the unconditional half from the
text encoder alone (our extra condition tokens would be lost, and passing ``encoder_outputs``
breaks its batch size), and it has no per-step callback. This loop keeps its exact semantics
(the delay pattern of ``build_delay_pattern_mask``, guidance ``uncond + g * (cond - uncond)`` on
the logits as ``ClassifierFreeGuidanceLogitsProcessor``, then temperature, top-k, top-p) and adds a
caller-owned ``torch.Generator``, a progress callback, and windows with overlap for audio longer
than the trained context.

Speed: the first forward of a window (the start token, or the prompt being continued) goes through
transformers' top-level forward; every later token goes through :class:`_DecodeSteps`, which runs
the same modules' weights with the same ops (so the same numbers, bit for bit, and the same tokens)
without the per-step overhead of the top-level forward: it reuses the prefill's cross-attention
keys/values and builds the cross-attention mask once per window, keeps the self-attention
keys/values in buffers allocated once (no ``torch.cat`` growth, no cache objects), makes the q/k/v
projections one matrix product and the codebooks' heads another, calls ``F.linear``/``F.layer_norm``
directly, and writes the tokens into a preallocated sequence. ``fast=False`` runs every step
through transformers' forward (the reference the fast path is tested against);
``SamplingOptions.dtype=torch.bfloat16`` does the fast path's matrix products in bf16 (half the
weight bytes per token; other tokens).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F

from .modeling import frame_inputs_added

__all__ = ["ConditionGuidance", "SamplingOptions", "sample_window", "undelay", "filter_logits"]

# attention implementations whose one-token decode step needs no self-attention mask (transformers
# builds none, or an all-zero additive one) and whose cross-attention mask does not change per step
_FAST_ATTENTION = (None, "eager", "sdpa")


@dataclass
class SamplingOptions:
    guidance_scale: float | None = 3.0    # > 1: classifier-free guidance
    temperature: float = 1.0
    top_k: int = 250                      # 0: off
    top_p: float = 0.0                    # 0: off
    do_sample: bool = True                # False: greedy (argmax)
    # The decoder's matrix products after each window's first forward in this dtype (e.g.
    # torch.bfloat16: half the weight bytes per token); None: the model's own (exact: the tokens of
    # transformers' forward). Residual stream, norms, attention and logits stay in the model's dtype.
    dtype: torch.dtype | None = None


@dataclass
class ConditionGuidance:
    """One condition's own guidance term (compositional guidance, as InstructPix2Pix's two scales):
    the conditions *without* that one, and its scale ``s``; the logits gain ``s * (cond - without)``.
    ``states``/``mask``/``frame_inputs`` as :func:`sample_window`'s, of the same shapes."""

    states: torch.Tensor
    mask: torch.Tensor
    frame_inputs: torch.Tensor | None
    scale: float


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


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if weight.dtype == x.dtype:
        return F.linear(x, weight, bias)
    return F.linear(x.to(weight.dtype), weight, bias).to(x.dtype)


def _fused(modules, dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One weight (and bias) for several linear layers of the same input: one matrix product (one
    layer in its own dtype: its parameters themselves, no copy)."""
    if len(modules) == 1 and modules[0].weight.dtype == dtype:
        return modules[0].weight, modules[0].bias
    weight = torch.cat([m.weight for m in modules]).to(dtype)
    if all(m.bias is None for m in modules):
        return weight, None
    bias = torch.cat([m.bias if m.bias is not None else m.weight.new_zeros(m.out_features) for m in modules])
    return weight, bias.to(dtype)


_WEIGHTS = weakref.WeakKeyDictionary()  # decoder -> (dtype, parameter versions, prepared weights)


def _decode_weights(lm, dtype) -> list:
    """Per layer (qkv, self out, cross q, cross out, fc1, fc2) weights/biases and the fused heads, in
    ``dtype``; prepared once per model and dtype (again after the parameters change)."""
    version = tuple((p.data_ptr(), p._version) for p in lm.parameters())
    held = _WEIGHTS.get(lm)
    if held is not None and held[0] == dtype and held[1] == version:
        return held[2]
    layers = []
    for layer in lm.model.decoder.layers:
        attn, cross = layer.self_attn, layer.encoder_attn
        layers.append([_fused([attn.q_proj, attn.k_proj, attn.v_proj], dtype)]
                      + [_fused([m], dtype) for m in (attn.out_proj, cross.q_proj, cross.out_proj, layer.fc1, layer.fc2)])
    weights = [layers, _fused(list(lm.lm_heads), dtype)]
    _WEIGHTS[lm] = (dtype, version, weights)
    return weights


class _DecodeSteps:
    """One-token decode steps of MusicGen's decoder (``MusicgenForCausalLM``) after a prefill.

    Mirrors ``MusicgenDecoder.forward`` / ``MusicgenDecoderLayer`` / ``MusicgenAttention`` for a
    single new position in eval mode: the same weights, ops, attention function and masks (the
    cross-attention mask is transformers' own, built once), so the logits are those of the
    top-level forward. The q/k/v projections are one product with the three weights stacked, and so
    are the codebooks' heads (the same numbers: each output is the same dot product). Keys/values:
    the self-attention ones in buffers of the window's length, the cross-attention ones taken once
    from the prefill's cache.
    """

    def __init__(self, musicgen, cache, encoder_states: torch.Tensor, encoder_mask: torch.Tensor | None, length: int,
                 dtype: torch.dtype | None = None, frame_inputs: torch.Tensor | None = None):
        from transformers.masking_utils import create_bidirectional_mask
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
        from transformers.models.musicgen.modeling_musicgen import eager_attention_forward

        lm = musicgen.decoder
        self.decoder = decoder = lm.model.decoder
        config = decoder.config
        self.num_codebooks = decoder.num_codebooks
        self.rows = rows = encoder_states.shape[0]
        self.heads = heads = config.num_attention_heads
        self.head_dim = head_dim = config.hidden_size // heads
        self.attention = ALL_ATTENTION_FUNCTIONS.get_interface(config._attn_implementation, eager_attention_forward)
        self.layer_weights, self.heads_weight = _decode_weights(lm, dtype or lm.dtype)
        # the positions' sinusoids as the decoder reads them (it grows its table past the context itself)
        # (1 or rows, length, hidden), with the frame inputs added as frame_inputs_added adds them
        self.positions = decoder.embed_positions(torch.zeros(1, 1, length, device=encoder_states.device), 0)[None]
        if frame_inputs is not None:
            frame_inputs = F.pad(frame_inputs[:, :length], (0, 0, 0, length - min(frame_inputs.shape[1], length)))
            self.positions = self.positions.to(frame_inputs.dtype) + frame_inputs
        # encoder states as MusicgenForConditionalGeneration.forward hands them to the decoder
        text_size, hidden = musicgen.text_encoder.config.hidden_size, config.hidden_size
        if text_size != hidden and config.cross_attention_hidden_size is None:
            encoder_states = musicgen.enc_to_dec_proj(encoder_states)
        if encoder_mask is not None:
            encoder_states = encoder_states * encoder_mask[..., None]
        query = torch.empty(rows, 1, hidden, dtype=encoder_states.dtype, device=encoder_states.device)
        self.cross_mask = create_bidirectional_mask(config=config, inputs_embeds=query, attention_mask=encoder_mask,
                                                    encoder_hidden_states=encoder_states)  # fmt: skip
        self.keys, self.values, self.cross = [], [], []
        for index in range(len(decoder.layers)):
            past = cache.self_attention_cache.layers[index]
            keys = past.keys.new_empty(rows, heads, length, head_dim)
            values = past.values.new_empty(rows, heads, length, head_dim)
            keys[:, :, : past.keys.shape[2]] = past.keys
            values[:, :, : past.values.shape[2]] = past.values
            self.keys.append(keys)
            self.values.append(values)
            cross = cache.cross_attention_cache.layers[index]
            self.cross.append((cross.keys, cross.values))

    @staticmethod
    def supported(musicgen) -> bool:
        decoder = musicgen.decoder.model.decoder
        return (not musicgen.training and not musicgen.decoder.training and decoder.config.audio_channels == 1
                and decoder.config._attn_implementation in _FAST_ATTENTION)

    def _attend(self, module, query, keys, values, mask, out):
        attended, _ = self.attention(module, query, keys, values, mask, dropout=0.0, scaling=module.scaling,
                                     output_attentions=False)  # fmt: skip
        return _linear(attended.reshape(self.rows, 1, -1).contiguous(), *out)

    def __call__(self, tokens: torch.Tensor, position: int) -> torch.Tensor:
        """Logits (rows * K, V) of the next position after ``tokens`` (B * K,) at ``position``."""
        ids = tokens.reshape(-1, self.num_codebooks, 1)
        embeds = self.decoder.embed_tokens
        x = sum(embeds[k](ids[:, k]) for k in range(self.num_codebooks))
        if x.shape[0] != self.rows:  # guidance: every group of rows is fed the same tokens
            x = x.repeat(self.rows // x.shape[0], 1, 1)
        x = x + self.positions[:, position : position + 1]
        shape = (self.rows, 1, 3 * self.heads, self.head_dim)
        for index, layer in enumerate(self.decoder.layers):
            qkv, out, cross_q, cross_out, fc1, fc2 = self.layer_weights[index]
            norm = layer.self_attn_layer_norm
            h = F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)
            query, key, value = _linear(h, *qkv).view(shape).transpose(1, 2).chunk(3, dim=1)
            keys, values = self.keys[index], self.values[index]
            keys[:, :, position : position + 1] = key
            values[:, :, position : position + 1] = value
            end = position + 1
            x = x + self._attend(layer.self_attn, query, keys[:, :, :end], values[:, :, :end], None, out)
            norm = layer.encoder_attn_layer_norm
            h = F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)
            query = _linear(h, *cross_q).view(self.rows, 1, self.heads, self.head_dim).transpose(1, 2)
            x = x + self._attend(layer.encoder_attn, query, *self.cross[index], self.cross_mask, cross_out)
            norm = layer.final_layer_norm
            h = F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)
            x = x + _linear(layer.activation_fn(_linear(h, *fc1)), *fc2)
        norm = self.decoder.layer_norm
        x = F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)
        logits = _linear(x, *self.heads_weight)  # (rows, 1, K * V): codebook k's head in columns k*V...
        return logits.reshape(-1, logits.shape[-1] // self.num_codebooks).float()  # (rows * K, V)


@torch.no_grad()
def sample_window(musicgen, states: torch.Tensor, mask: torch.Tensor, frames: int, options: SamplingOptions,
                  prompt_codes: torch.Tensor | None = None, generator: torch.Generator | None = None,
                  on_step: Callable[[int, torch.Tensor], bool | None] | None = None, fast: bool = True,
                  frame_inputs: torch.Tensor | None = None,
                  condition_guidance: list[ConditionGuidance] = ()) -> torch.Tensor:
    """Codes (B, K, frames) of one window, continuing ``prompt_codes`` (B, K, P) when given.

    ``states``/``mask``: conditions (B, M, H) / (B, M); with guidance, the unconditional half is
    the same tokens all masked (transformers' convention). ``frame_inputs`` (B, frames, hidden):
    the conditioner's additions to the decoder input of each frame (none in the unconditional half).
    ``condition_guidance``: extra terms ``s * (cond - without)`` added to the guided logits (each
    costs one more row per example in every forward). ``on_step(step, sequence)`` is called
    after every new position (``sequence``: the delayed (B*K, L) buffer so far, a view of a buffer
    that later steps extend); returning True stops early, with the frames every codebook has
    completed. ``fast=False``: every step through transformers' forward (same tokens).
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
    # rows: the conditions, [the unconditional copy], [the conditions without each guided one]
    groups = [(states, mask, frame_inputs)]
    if guided:
        groups.append((torch.zeros_like(states), torch.zeros_like(mask), None))
    groups += [(g.states, g.mask, g.frame_inputs) for g in condition_guidance]
    if len(groups) > 1:
        states = torch.cat([g[0] for g in groups])
        mask = torch.cat([g[1] for g in groups])
        if any(g[2] is not None for g in groups):
            like = next(g[2] for g in groups if g[2] is not None)
            frame_inputs = torch.cat([g[2] if g[2] is not None else torch.zeros_like(like) for g in groups])
    encoder_outputs = (states,)
    length, begin = frames + k, ids.shape[-1]
    sequence = torch.empty(batch * k, length, dtype=ids.dtype, device=device)
    sequence[:, :begin] = ids
    fixed = pattern[:, :length]  # the delay pattern's pads / the prompt win where it is not -1
    free = fixed == -1
    fast = fast and _DecodeSteps.supported(musicgen)
    cache, steps, feed = None, None, ids
    for step, position in enumerate(range(begin, length)):
        if steps is not None:
            logits = steps(feed, position - 1)
        else:
            with frame_inputs_added(musicgen, frame_inputs):
                out = musicgen(encoder_outputs=encoder_outputs, attention_mask=mask, use_cache=True, cache=cache,
                               decoder_input_ids=torch.cat([feed] * len(groups)))  # fmt: skip
            cache = out.cache
            logits = out.logits[:, -1].float()  # (B*K [x2], V)
            if fast:
                steps = _DecodeSteps(musicgen, cache, states, mask, length, options.dtype, frame_inputs)
        if len(groups) > 1:
            cond, *others = logits.chunk(len(groups))
            logits = cond
            if guided:
                uncond = others.pop(0)
                logits = uncond + (cond - uncond) * options.guidance_scale
            for term, without in zip(condition_guidance, others):
                logits = logits + (cond - without) * term.scale
        if options.do_sample:
            probs = filter_logits(logits, options).softmax(-1)
            token = torch.multinomial(probs, 1, generator=generator)[:, 0]
        else:
            token = logits.argmax(-1)
        token = torch.where(free[:, position], token, fixed[:, position])
        sequence[:, position] = token
        feed = token[:, None]
        if on_step is not None and on_step(step, sequence[:, : position + 1]):
            return undelay(sequence[:, : position + 1], k, min(frames, position + 1 - k))  # stopped early
    return undelay(sequence, k, frames)
