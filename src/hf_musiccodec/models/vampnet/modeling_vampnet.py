"""``VampNetModel``: a bidirectional transformer over codec tokens that predicts masked ones.

VampNet (Garcia et al., 2023) is MaskGIT over the codes of a residual-VQ codec: every frame's
codebooks are embedded and summed, a transformer encoder reads the whole sequence (no causal
mask), and one head per predicted codebook gives the logits of every position. Training masks a
random share of the tokens and scores only those (:mod:`hf_musiccodec.training.vampnet_solver`);
sampling fills them in a few parallel passes (:mod:`hf_musiccodec.pipelines.vampnet.sampling`).

Written here because no Hugging Face library has it; the pieces follow the paper (coarse model
and coarse-to-fine model as one class, ``num_conditioning_codebooks`` telling them apart), with
rotary positions instead of the original's relative-position bias so that any length runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_vampnet import VampNetConfig

__all__ = ["VampNetModel", "VampNetOutput", "VampNetPreTrainedModel"]


@dataclass
class VampNetOutput(ModelOutput):
    """
    loss: mean cross-entropy over the masked tokens of the predicted codebooks (when labels are given).
    logits: (batch, num_predicted_codebooks, frames, codebook_size).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


def rotary_tables(length: int, dim: int, theta: float, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of RoFormer's rotary positions, (length, dim), for positions 0..length-1."""
    freqs = 1.0 / theta ** (torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), freqs)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class SelfAttention(nn.Module):
    def __init__(self, config: VampNetConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = config.dropout

    def forward(self, x, cos, sin, key_mask):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    """Pre-norm: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: VampNetConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.hidden_size)
        self.attention = SelfAttention(config)
        self.mlp_norm = nn.LayerNorm(config.hidden_size)
        self.mlp = nn.Sequential(nn.Linear(config.hidden_size, config.ffn_dim), nn.GELU(),
                                 nn.Linear(config.ffn_dim, config.hidden_size))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, cos, sin, key_mask):
        x = x + self.dropout(self.attention(self.attention_norm(x), cos, sin, key_mask))
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class VampNetPreTrainedModel(PreTrainedModel):
    config_class = VampNetConfig
    base_model_prefix = "vampnet"
    main_input_name = "input_ids"

    @torch.no_grad()
    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, VampNetModel) and module.null_condition is not None:
            init.zeros_(module.null_condition)


class VampNetModel(VampNetPreTrainedModel):
    """Logits of every token of the predicted codebooks, given the codes with some replaced by the mask token.

    ``forward(input_ids, mask=None, condition_embeds=None, condition_mask=None, padding_mask=None, labels=None)``:

    * ``input_ids`` (batch, num_codebooks, frames): codes; positions where ``mask`` (same shape,
      bool, True = to predict) is set are replaced by the mask token (``input_ids`` may also hold
      mask tokens already). The conditioning codebooks are never masked.
    * ``condition_embeds`` (batch, condition_dim): the global condition (CLAP embedding);
      ``condition_mask`` (batch,) bool turns it off per example (the null condition of guidance).
    * ``padding_mask`` (batch, frames) bool, True on real frames: padded frames are not attended to
      and not scored.
    * ``labels`` (batch, num_codebooks, frames): the true codes; the loss is the cross-entropy over
      masked, real positions of the predicted codebooks.
    """

    def __init__(self, config: VampNetConfig):
        super().__init__(config)
        k, v, d = config.num_codebooks, config.codebook_size + 1, config.hidden_size
        # one table for all codebooks (each its own rows, mask token included); a frame is the sum
        self.embeddings = nn.Embedding(k * v, d)
        if config.condition_dim:
            self.condition_projection = nn.Linear(config.condition_dim, d)
            self.null_condition = nn.Parameter(torch.zeros(d))
        else:
            self.condition_projection, self.null_condition = None, None
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(d)
        self.heads = nn.Linear(d, config.num_predicted_codebooks * config.codebook_size)
        self.post_init()

    def _check(self, input_ids: torch.Tensor, mask: torch.Tensor | None) -> None:
        cfg = self.config
        if input_ids.ndim != 3 or input_ids.shape[1] != cfg.num_codebooks:
            raise ValueError(f"input_ids must be (batch, {cfg.num_codebooks}, frames), got {tuple(input_ids.shape)}")
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() > cfg.mask_token_id):
            raise ValueError(f"codes must be in [0, {cfg.codebook_size}] ({cfg.codebook_size} = mask), got "
                             f"[{int(input_ids.min())}, {int(input_ids.max())}]")
        if mask is not None and mask.shape != input_ids.shape:
            raise ValueError(f"mask {tuple(mask.shape)} must match input_ids {tuple(input_ids.shape)}")

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor | None = None,
                condition_embeds: torch.Tensor | None = None, condition_mask: torch.Tensor | None = None,
                padding_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> VampNetOutput:
        cfg = self.config
        self._check(input_ids, mask)
        n_cond = cfg.num_conditioning_codebooks
        if mask is not None:
            mask = mask.clone()
            mask[:, :n_cond] = False
            input_ids = input_ids.masked_fill(mask, cfg.mask_token_id)
        offsets = torch.arange(cfg.num_codebooks, device=input_ids.device)[:, None] * (cfg.codebook_size + 1)
        x = self.embeddings(input_ids + offsets).sum(dim=1)  # (B, T, D)
        b, t, _ = x.shape
        frames = padding_mask
        if self.condition_projection is not None:  # one extra token in front of the frames
            token = self.null_condition.to(x.dtype).expand(b, -1)
            if condition_embeds is not None:
                on = torch.ones(b, dtype=torch.bool, device=x.device) if condition_mask is None else condition_mask
                projected = self.condition_projection(condition_embeds.to(x.dtype))
                token = torch.where(on[:, None].to(x.device), projected, token)
            x = torch.cat([token[:, None], x], dim=1)
            if frames is not None:
                frames = torch.cat([torch.ones_like(frames[:, :1]), frames], dim=1)
        elif condition_embeds is not None:
            raise ValueError("this VampNet has no condition (condition_dim = 0)")
        # a boolean key mask broadcast over heads and queries: padded frames are never attended to
        key_mask = None if frames is None else frames[:, None, None, :].to(torch.bool)
        cos, sin = rotary_tables(x.shape[1], cfg.hidden_size // cfg.num_heads, cfg.rope_theta, x.device, x.dtype)
        for layer in self.layers:
            x = layer(x, cos, sin, key_mask)
        x = self.norm(x[:, -t:])
        logits = self.heads(x).view(b, t, cfg.num_predicted_codebooks, cfg.codebook_size).transpose(1, 2)
        loss = None
        if labels is not None:
            if mask is None:
                raise ValueError("labels need a mask: the loss scores the masked tokens")
            scored = mask[:, n_cond:]
            if padding_mask is not None:
                scored = scored & padding_mask[:, None, :].to(torch.bool)
            targets = labels[:, n_cond:].masked_fill(~scored, -100)
            if scored.any():
                loss = F.cross_entropy(logits.float().reshape(-1, cfg.codebook_size), targets.reshape(-1),
                                       ignore_index=-100)
            else:  # nothing masked (a rare draw): no signal, but a graph (cross_entropy would give NaN)
                loss = logits.float().sum() * 0.0
        return VampNetOutput(loss=loss, logits=logits)
