"""MusicClapModel: a small CLAP-style contrastive text–audio model trained in this repository.

Why not transformers' ``ClapModel``? Its towers are fixed: a RoBERTa text model and an HTSAT
(Swin transformer) audio model, ~150 M parameters trained on 48 kHz fused mel inputs, and both
are saved in the checkpoint. We want a *frozen* MiniLM text encoder that is loaded from its
installed package and never copied into the artifact, and an audio tower of a few million
parameters that trains on two CPU cores. Configuring ``ClapModel`` cannot give either, and
subclassing it would keep its towers as dead weight. So this is a separate ``PreTrainedModel``
that mirrors ``ClapModel``'s public interface exactly (transformers 5.x semantics):

* ``get_text_features(input_ids, attention_mask)`` and ``get_audio_features(input_features,
  audio_attention_mask)`` return a ``BaseModelOutputWithPooling`` whose ``pooler_output`` is the
  projected, L2-normalised embedding ``(batch, projection_dim)``;
* ``forward(...)`` returns transformers' own ``ClapOutput`` (``logits_per_audio``,
  ``logits_per_text``, ``text_embeds``, ``audio_embeds``) and, with ``return_loss=True``, the
  symmetric InfoNCE loss (transformers' ``contrastive_loss`` on both directions).

Towers:

* text: all-MiniLM-L6-v2 (``BertModel``, frozen, eval mode, not a registered sub-module so that
  ``state_dict``/``save_pretrained``/optimizers never see it; loaded from
  :func:`~hf_musiccodec.conditioning.minilm_path` on first use and moved to the model's device)
  -> linear 384 -> ``text_head_size`` -> trainable pre-norm transformer layer(s) over its token
  states -> masked mean -> 2-layer projection (as ``ClapProjectionLayer``).
* audio: log-mel ``(n_mels, frames)`` -> three stride-2 1-D convolutions over time (frames / 8)
  -> learned positions -> pre-norm transformer -> masked mean -> 2-layer projection.
  Audio longer than ``clip_seconds`` is cut into windows (hop = one window, the last one flush
  with the end); the unit-norm window embeddings are averaged (the result is then re-normalised).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.clap.modeling_clap import ClapOutput, contrastive_loss

from .configuration_music_clap import MusicClapConfig

__all__ = ["MusicClapModel", "MusicClapPreTrainedModel"]

_MAX_LOGIT_SCALE = 100.0


def _encoder(hidden: int, heads: int, intermediate: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        hidden, heads, intermediate, dropout=dropout, activation="gelu", batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class MusicClapProjection(nn.Module):
    """As ``ClapProjectionLayer`` (linear -> activation -> linear), with GELU: ReLU units died at high
    learning rates."""

    def __init__(self, hidden: int, projection_dim: int):
        super().__init__()
        self.linear1 = nn.Linear(hidden, projection_dim)
        self.linear2 = nn.Linear(projection_dim, projection_dim)

    def forward(self, x):
        return self.linear2(F.gelu(self.linear1(x)))


def _masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask[..., None].to(states.dtype)
    return (states * m).sum(1) / m.sum(1).clamp_min(1.0)


class MusicClapTextHead(nn.Module):
    """Trainable part of the text tower: transformer layer(s) over frozen MiniLM token states."""

    def __init__(self, config: MusicClapConfig):
        super().__init__()
        self.input_proj = nn.Linear(config.text_hidden_size, config.text_head_size)
        self.encoder = _encoder(config.text_head_size, config.text_num_heads, config.text_intermediate_size,
                                config.text_num_layers, config.dropout)
        self.norm = nn.LayerNorm(config.text_head_size)

    def forward(self, states: torch.Tensor, mask: torch.Tensor):
        x = self.input_proj(states)
        x = self.encoder(x, src_key_padding_mask=mask == 0) if len(self.encoder.layers) else x
        x = self.norm(x)
        return x, _masked_mean(x, mask)


class MusicClapAudioTower(nn.Module):
    """Log-mel ``(batch, n_mels, frames)`` -> frame states ``(batch, frames / 8, hidden)`` and a pooled vector.

    Stem: three stride-2 1-D convolutions over time with the mel bins as channels (absolute pitch
    stays visible, which key and mode need; 1-D is ~3x cheaper on CPU than a 2-D stem).
    """

    def __init__(self, config: MusicClapConfig):
        super().__init__()
        c1, c2 = config.audio_channels
        h = config.audio_hidden_size
        self.stem = nn.ModuleList([
            nn.Conv1d(config.n_mels, c1, 5, stride=2, padding=2),
            nn.Conv1d(c1, c2, 3, stride=2, padding=1),
            nn.Conv1d(c2, h, 3, stride=2, padding=1),
        ])  # fmt: skip
        self.position_embedding = nn.Embedding(self.frames_out(config.clip_frames), h)
        self.encoder = _encoder(h, config.audio_num_heads, config.audio_intermediate_size,
                                config.audio_num_layers, config.dropout)
        self.norm = nn.LayerNorm(h)
        self.mean, self.std = config.feature_mean, config.feature_std

    @staticmethod
    def frames_out(frames: int) -> int:
        return (frames + 7) // 8  # three stride-2 convolutions, each ceil(n / 2)

    def forward(self, features: torch.Tensor, mask: torch.Tensor):
        x = (features - self.mean) / self.std
        x = x * mask[:, None, :].to(x.dtype)  # padding is 0 after normalisation
        # Padding is zeroed after every convolution too, so a clip padded in a batch gives exactly
        # what it gives alone (a stride-2 frame is valid if the first frame it covers is).
        for i, conv in enumerate(self.stem):
            x = conv(x)
            if i < len(self.stem) - 1:
                x = F.gelu(x)
            x = x * mask[:, :: 2 ** (i + 1)][:, None, : x.shape[-1]].to(x.dtype)
        x = x.transpose(1, 2)  # (B, frames / 8, hidden)
        t = x.shape[1]
        if t > self.position_embedding.num_embeddings:
            raise ValueError(f"{t} frames exceed one window ({self.position_embedding.num_embeddings}); "
                             f"use get_audio_features, which windows long audio")
        x = x + self.position_embedding.weight[:t]
        # A stem frame is valid if the first input frame it covers is (stride 8 in time).
        frame_mask = mask[:, ::8][:, :t]
        x = self.encoder(x, src_key_padding_mask=frame_mask == 0)
        x = self.norm(x)
        return x, _masked_mean(x, frame_mask)


class MusicClapPreTrainedModel(PreTrainedModel):
    config_class = MusicClapConfig
    base_model_prefix = "music_clap"
    main_input_name = "input_features"
    supports_gradient_checkpointing = False

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.MultiheadAttention):
            init.xavier_uniform_(module.in_proj_weight)
            init.zeros_(module.in_proj_bias)
        elif isinstance(module, MusicClapModel):
            init.constant_(module.logit_scale, self.config.logit_scale_init)


class MusicClapModel(MusicClapPreTrainedModel):
    """CLAP-style model; see the module docstring. The frozen MiniLM is not part of ``state_dict``."""

    def __init__(self, config: MusicClapConfig):
        super().__init__(config)
        self._text_encoder_folder = self._check_text_encoder(config)
        self._frozen_text_encoder: list = []  # a list, so nn.Module does not register the BERT
        self.text_head = MusicClapTextHead(config)
        self.text_projection = MusicClapProjection(config.text_head_size, config.projection_dim)
        self.audio_model = MusicClapAudioTower(config)
        self.audio_projection = MusicClapProjection(config.audio_hidden_size, config.projection_dim)
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init))
        self.post_init()

    # ------------------------------------------------------------------ frozen text encoder
    @staticmethod
    def _check_text_encoder(config: MusicClapConfig) -> Path:
        from .text_encoder import text_encoder_folder

        try:
            return text_encoder_folder(config.text_encoder_path)
        except ImportError as e:
            raise ImportError(f"MusicClap {e}") from None

    @property
    def text_encoder(self):
        """The frozen MiniLM ``BertModel`` (loaded on first use, kept on this model's device, eval mode)."""
        if not self._frozen_text_encoder:
            from .text_encoder import load_frozen_bert

            self._frozen_text_encoder.append(load_frozen_bert(self._text_encoder_folder, self.config.text_hidden_size))
        bert = self._frozen_text_encoder[0]
        param = self.logit_scale
        if bert.device != param.device:
            bert.to(param.device)
        return bert

    @torch.no_grad()
    def encode_text_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Frozen MiniLM token states ``(batch, tokens, 384)``; what ``text_hidden_states`` takes (for caching)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        bert = self.text_encoder
        bert.eval()
        out = bert(input_ids=input_ids.to(bert.device), attention_mask=attention_mask.to(bert.device))
        return out.last_hidden_state

    # ------------------------------------------------------------------ features
    def get_text_features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """Text embeddings: ``pooler_output`` (batch, projection_dim), L2-normalised (as ``ClapModel``).

        ``text_hidden_states``: precomputed :meth:`encode_text_tokens` output (skips the BERT).
        """
        if text_hidden_states is None:
            if input_ids is None:
                raise ValueError("get_text_features needs input_ids (or text_hidden_states)")
            text_hidden_states = self.encode_text_tokens(input_ids, attention_mask)
        if attention_mask is None:
            attention_mask = torch.ones(text_hidden_states.shape[:2], dtype=torch.long,
                                        device=text_hidden_states.device)
        dtype = self.logit_scale.dtype
        states, pooled = self.text_head(text_hidden_states.to(dtype), attention_mask.to(text_hidden_states.device))
        embeds = F.normalize(self.text_projection(pooled), dim=-1)
        return BaseModelOutputWithPooling(last_hidden_state=states, pooler_output=embeds)

    def get_audio_features(
        self,
        input_features: torch.Tensor,
        audio_attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """Audio embeddings: ``pooler_output`` (batch, projection_dim), L2-normalised (as ``ClapModel``).

        ``input_features`` (batch, n_mels, frames) from the processor; ``audio_attention_mask``
        (batch, frames), 1 = real frame. Clips longer than one window are embedded per window and
        the window embeddings averaged. ``last_hidden_state`` holds the frame states of single-window
        batches and is ``None`` otherwise.
        """
        if input_features.ndim != 3 or input_features.shape[1] != self.config.n_mels:
            raise ValueError(f"input_features must be (batch, {self.config.n_mels}, frames), got "
                             f"{tuple(input_features.shape)}")
        b, _, frames = input_features.shape
        if audio_attention_mask is None:
            audio_attention_mask = torch.ones(b, frames, dtype=torch.long, device=input_features.device)
        features = input_features.to(self.logit_scale.dtype)
        mask = audio_attention_mask.to(features.device)
        window = self.config.clip_frames
        if frames <= window:
            states, pooled = self.audio_model(features, mask)
            return BaseModelOutputWithPooling(last_hidden_state=states,
                                              pooler_output=F.normalize(self.audio_projection(pooled), dim=-1))
        # Long audio: cut each clip into windows of its own valid length, embed all windows at once.
        chunks, masks, owner = [], [], []
        for i, length in enumerate(mask.sum(1).tolist()):
            length = max(int(length), 1)
            starts = list(range(0, max(length - window, 0) + 1, window))
            if starts[-1] + window < length:
                starts.append(length - window)
            for s in starts:
                chunks.append(features[i, :, s: s + window])
                masks.append(mask[i, s: s + window])
                owner.append(i)
        width = max(c.shape[-1] for c in chunks)
        chunks = torch.stack([F.pad(c, (0, width - c.shape[-1])) for c in chunks])
        masks = torch.stack([F.pad(m, (0, width - m.shape[-1])) for m in masks])
        _, pooled = self.audio_model(chunks, masks)
        per_window = F.normalize(self.audio_projection(pooled), dim=-1)
        owner = torch.tensor(owner, device=per_window.device)
        summed = torch.zeros(b, per_window.shape[-1], dtype=per_window.dtype, device=per_window.device)
        summed.index_add_(0, owner, per_window)
        return BaseModelOutputWithPooling(last_hidden_state=None, pooler_output=F.normalize(summed, dim=-1))

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        audio_attention_mask: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        return_loss: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ClapOutput:
        """Both towers, similarity logits and (``return_loss=True``) the symmetric contrastive loss."""
        if input_features is None:
            raise ValueError("forward needs input_features (audio) and input_ids or text_hidden_states (text)")
        audio_outputs = self.get_audio_features(input_features, audio_attention_mask)
        text_outputs = self.get_text_features(input_ids, attention_mask, text_hidden_states=text_hidden_states)
        audio_embeds, text_embeds = audio_outputs.pooler_output, text_outputs.pooler_output
        scale = self.logit_scale.clamp(max=torch.log(torch.tensor(_MAX_LOGIT_SCALE))).exp()
        logits_per_text = text_embeds @ audio_embeds.t() * scale
        logits_per_audio = logits_per_text.t()
        loss = None
        if return_loss:
            if logits_per_text.shape[0] != logits_per_text.shape[1]:
                raise ValueError(f"return_loss needs as many texts as audio clips, got {tuple(logits_per_text.shape)}")
            loss = (contrastive_loss(logits_per_text) + contrastive_loss(logits_per_audio)) / 2.0
        output = ClapOutput(loss=loss, logits_per_audio=logits_per_audio, logits_per_text=logits_per_text,
                            text_embeds=text_embeds, audio_embeds=audio_embeds,
                            text_model_output=text_outputs, audio_model_output=audio_outputs)
        return output if return_dict is not False else output.to_tuple()
