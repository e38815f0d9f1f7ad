"""A Fourier-domain encoder, the mirror of ``istft_decoder``: log-magnitude STFT frames, one per
latent frame, through ConvNeXt blocks at the frame rate.

Why: a strided time-domain encoder has to learn a filterbank before it can tell one partial from
the next; here the harmonics are separate input bins from the first step (as in the spectral
codecs of Langman et al. 2024), and the whole encoder runs at the frame rate.
"""

from __future__ import annotations

import torch
from torch import nn

from ...audio.spectral import stft_magnitude
from .convnext import ConvNeXtTrunk


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
        # |STFT| floored at 1e-5 (eps is on the power), (B * C, bins, T): one frame per hop.
        magnitude = stft_magnitude(x, self.n_fft, self.hop_length, center=False, eps=1e-10)
        return magnitude.log().reshape(batch, -1, magnitude.shape[-1])


class STFTEncoder(ConvNeXtTrunk):
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
        self.spectrum = LogMagnitudeSTFT(config.istft_n_fft, config.hop_length)  # first: layer order
        bins = config.istft_n_fft // 2 + 1
        self.build_trunk(bins * config.audio_channels, dim, config.encoder_num_layers)
        self.proj = nn.Linear(dim, config.hidden_size)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.proj(self.trunk(self.spectrum(audio))).transpose(1, 2)
