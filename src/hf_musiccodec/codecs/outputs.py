"""Output classes of ``MusicCodecModel`` (``ModelOutput`` dataclasses, as in transformers)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class MusicCodecEncoderOutput(ModelOutput):
    """
    audio_codes: (chunks, batch, num_quantizers, frames) codes; ``None`` for a plain autoencoder.
    audio_scales: per chunk, a (batch, 1) scale or ``None`` (only configs with ``normalize``).
    last_frame_pad_length: frames of padding added to the last chunk's codes.
    latents: (chunks, batch, hidden_size, frames) continuous latents of a plain autoencoder.
    """

    audio_codes: torch.LongTensor | None = None
    audio_scales: list | None = None
    last_frame_pad_length: int | None = None
    latents: torch.Tensor | None = None


@dataclass
class MusicCodecDecoderOutput(ModelOutput):
    """audio_values: (batch, audio_channels, samples)."""

    audio_values: torch.Tensor | None = None


@dataclass
class MusicCodecStreamOutput(ModelOutput):
    """What ``MusicCodecModel.flush()`` returns at the end of a stream.

    audio_codes: (1, batch, num_quantizers, frames) codes of the last frames (the partial frame
        padded as offline), or ``None`` if nothing was encoded in the stream.
    audio_values: (batch, audio_channels, samples) the rest of the decoded audio, or ``None`` if
        nothing was decoded in the stream.
    latents: (1, batch, hidden_size, frames) for a plain autoencoder instead of codes.
    """

    audio_codes: torch.LongTensor | None = None
    audio_values: torch.Tensor | None = None
    latents: torch.Tensor | None = None


@dataclass
class MusicCodecOutput(ModelOutput):
    """
    audio_values: (batch, audio_channels, samples) reconstruction, trimmed to the input length.
    audio_codes: (batch, num_quantizers, frames) codes used.
    vq_loss: ``commitment_weight * commitment_loss + codebook_weight * codebook_loss``.
    latents / quantized_latents: (batch, hidden_size, frames) before and after quantization.
    num_quantizers: (batch,) codebooks used per item (varies under quantizer dropout).
    """

    audio_values: torch.Tensor | None = None
    audio_codes: torch.LongTensor | None = None
    vq_loss: torch.Tensor | None = None
    commitment_loss: torch.Tensor | None = None
    codebook_loss: torch.Tensor | None = None
    latents: torch.Tensor | None = None
    quantized_latents: torch.Tensor | None = None
    num_quantizers: torch.Tensor | None = None
