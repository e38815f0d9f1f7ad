"""A Fourier-domain encoder, the mirror of ``istft_decoder``: log-magnitude STFT frames, one per
latent frame, through ConvNeXt blocks at the frame rate.

Why: a strided time-domain encoder has to learn a filterbank before it can tell one partial from
the next; here the harmonics are separate input bins from the first step (as in the spectral
codecs of Langman et al. 2024), and the whole encoder runs at the frame rate.
"""

from __future__ import annotations

import torch
from torch import nn

from .istft_decoder import ConvNeXtBlock


class LogMagnitudeSTFT(nn.Module):
    """log |STFT| (B, channels * bins, T) of audio (B, channels, T * hop), frames centred as in
    ``InverseSTFT`` ("same" padding with zeros)."""

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.padding = (n_fft - hop_length) // 2

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        batch, channels, length = audio.shape
        if length % self.hop_length:
            raise ValueError(f"the STFT encoder takes a whole number of hops ({self.hop_length}), got {length} samples")
        x = nn.functional.pad(audio.reshape(batch * channels, length), (self.padding, self.padding))
        window = torch.hann_window(self.n_fft, dtype=x.dtype, device=x.device)
        frames = x.unfold(-1, self.n_fft, self.hop_length) * window  # (B*C, T, n_fft)
        magnitude = torch.fft.rfft(frames, dim=-1).abs()
        return torch.log(magnitude.clamp_min(1e-5)).transpose(1, 2).reshape(batch, -1, frames.shape[1])


class STFTEncoder(nn.Module):
    """Audio (B, audio_channels, T * hop) -> latents (B, hidden_size, T).

    Frames are centred like ``InverseSTFT``'s ("same" padding), so frame ``t`` covers samples
    ``t * hop - (n_fft - hop) / 2`` to ``t * hop + (n_fft + hop) / 2``; the input must be a whole
    number of hops (the model pads it: ``pad_to_hop``).

    Args (from ``MusicCodecConfig``):
        hidden_size: latent channels.
        encoder_hidden_size: ConvNeXt width (defaults to ``decoder_hidden_size``).
        encoder_num_layers: ConvNeXt blocks.
        istft_n_fft: FFT size (shared with the iSTFT decoder).
    """

    def __init__(self, config):
        super().__init__()
        dim = config.encoder_hidden_size or config.decoder_hidden_size
        self.spectrum = LogMagnitudeSTFT(config.istft_n_fft, config.hop_length)
        bins = config.istft_n_fft // 2 + 1
        self.embed = nn.Conv1d(bins * config.audio_channels, dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(dim, 3 * dim, layer_scale=1.0 / config.encoder_num_layers)
            for _ in range(config.encoder_num_layers)
        )
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)
        self.proj = nn.Linear(dim, config.hidden_size)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.embed(self.spectrum(audio)).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.proj(self.final_norm(x.transpose(1, 2))).transpose(1, 2)
