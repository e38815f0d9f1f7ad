"""The conditions of the text-to-music LM as one sequence of tokens for MusicGen's cross-attention.

transformers' MusicGen attends to one "encoder" sequence: the text encoder's token states. This
module appends two optional conditions to it, each as tokens of the text encoder's width (so
MusicGen's own ``enc_to_dec_proj`` maps all of them to the decoder):

* **CLAP** (MusicLM's MuLan idea): one token, a projection of a joint text-audio embedding. In
  training it is the *audio* embedding of the clip, so uncaptioned music can train the model; at
  inference the *text* embedding of the prompt takes its place.
* **melody** (MusicGen-melody's chroma): the argmax pitch class per codec frame (13 values, 12 =
  unpitched), one token per ``melody_stride`` frames, each with a sinusoidal code of the decoder
  position it belongs to, so cross-attention can find the token of the frame being generated.

Each condition has an on/off flag per example; off means absent (masked out), which is also how
classifier-free guidance's unconditional half is made (every flag off, as transformers does).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.models.musicgen.modeling_musicgen import MusicgenSinusoidalPositionalEmbedding

__all__ = ["MusicConditionerConfig", "MusicConditioner"]


class MusicConditionerConfig(PretrainedConfig):
    """Args:
    hidden_size: width of the condition tokens: the text encoder's hidden size (MiniLM: 384).
    clap_dim: size of the CLAP embedding (0: no CLAP condition).
    melody_vocab: pitch-class tokens incl. "unpitched" (0: no melody condition).
    melody_stride: codec frames per melody token (75 Hz / 3 = 25 melody tokens per second).
    """

    model_type = "music_conditioner"

    def __init__(self, hidden_size: int = 384, clap_dim: int = 256, melody_vocab: int = 13, melody_stride: int = 3,
                 **kwargs):
        self.hidden_size = int(hidden_size)
        self.clap_dim = int(clap_dim)
        self.melody_vocab = int(melody_vocab)
        self.melody_stride = int(melody_stride)
        super().__init__(**kwargs)


class MusicConditioner(PreTrainedModel):
    config_class = MusicConditionerConfig
    base_model_prefix = "conditioner"

    def __init__(self, config: MusicConditionerConfig):
        super().__init__(config)
        h = config.hidden_size
        if config.clap_dim:
            self.clap_projection = nn.Sequential(nn.Linear(config.clap_dim, h), nn.GELU(), nn.Linear(h, h))
            self.clap_type = nn.Parameter(torch.zeros(h))
        if config.melody_vocab:
            self.melody_embedding = nn.Embedding(config.melody_vocab, h)
            self.melody_type = nn.Parameter(torch.zeros(h))
        # A text-only conditioner has no parameters: this buffer follows .to() so device/dtype still
        # answer, and is saved so its folder still has a weights file for from_pretrained.
        self.register_buffer("anchor", torch.zeros(()))
        self.post_init()

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    @property
    def dtype(self) -> torch.dtype:
        return self.anchor.dtype

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def melody_tokens_per(self, frames: int) -> int:
        return math.ceil(frames / self.config.melody_stride)

    def forward(self, text_states: torch.Tensor, text_mask: torch.Tensor, clap: torch.Tensor | None = None,
                clap_on: torch.Tensor | None = None, melody: torch.Tensor | None = None,
                melody_on: torch.Tensor | None = None, melody_start_frame: int = 0):
        """``(states (B, M, hidden), mask (B, M))`` for MusicGen's ``encoder_outputs`` / ``attention_mask``.

        text_states, text_mask: text encoder output (B, L, hidden) and its mask (all 0 = no text).
        clap: (B, clap_dim) embedding; clap_on: (B,) bool (default all on).
        melody: (B, frames) pitch classes per codec frame; melody_on: (B,) bool. Frame f of the
            window generated is codebook 0's decoder position ``f + 1`` (after the start token);
            ``melody_start_frame`` shifts the codes when the window continues earlier frames.
        """
        states, masks = [text_states], [text_mask.to(text_states.dtype)]
        batch, dtype, device = text_states.shape[0], text_states.dtype, text_states.device
        if clap is not None:
            if not self.config.clap_dim:
                raise ValueError("this model was built without a CLAP condition (clap_dim=0)")
            token = self.clap_projection(clap.to(dtype)) + self.clap_type
            states.append(token[:, None])
            on = torch.ones(batch, dtype=torch.bool, device=device) if clap_on is None else clap_on.bool()
            masks.append(on.to(dtype)[:, None])
        if melody is not None:
            if not self.config.melody_vocab:
                raise ValueError("this model was built without a melody condition (melody_vocab=0)")
            stride = self.config.melody_stride
            picked = melody[:, stride // 2 :: stride]  # the middle frame of each stride
            frames = torch.arange(picked.shape[1], device=device) * stride + stride // 2
            # the sinusoids of the decoder's own position table (transformers' MusicGen), at the decoder
            # position of each token's frame
            positions = frames + 1 + melody_start_frame
            size = int(positions.max()) + 1 if positions.numel() else 1
            table = MusicgenSinusoidalPositionalEmbedding.get_embedding(size, self.config.hidden_size)
            position = table.to(device, dtype)[positions]
            states.append(self.melody_embedding(picked.long()) + self.melody_type + position)
            on = torch.ones(batch, dtype=torch.bool, device=device) if melody_on is None else melody_on.bool()
            masks.append(on.to(dtype)[:, None].expand(-1, picked.shape[1]))
        states = torch.cat(states, dim=1)
        mask = torch.cat(masks, dim=1)
        return states * mask[..., None], mask.long()
