"""A Fourier-domain decoder (Vocos, Siuzdak 2023; the decoder of WavTokenizer): ConvNeXt blocks
at the latent frame rate predict one STFT frame per latent frame, and an inverse STFT makes the
waveform.

Why: a time-domain decoder spends most of its compute in upsampling convolutions at the audio
rate and learns harmonics slowly; this one runs entirely at the frame rate (75 Hz for 24 kHz)
and its output layer directly sets magnitudes and phases, so it trains several times faster per
CPU second and reproduces the spectrum sooner.
"""

from __future__ import annotations

import torch
from torch import nn

from ...audio.spectral import get_window
from .convnext import ConvNeXtTrunk
from .precision import float32_region, upcast


class InverseSTFT(nn.Module):
    """Inverse STFT with "same" padding: T frames at hop ``hop`` give exactly ``T * hop`` samples.

    ``torch.istft`` centres frames on multiples of the hop and loses half a window at each end;
    here the overlap-added signal is trimmed by ``(n_fft - hop) / 2`` on both sides instead, so
    every output sample is covered by the same number of windows as in the middle (Vocos).
    """

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        if (n_fft - hop_length) % 2:
            raise ValueError(f"n_fft - hop_length must be even, got n_fft={n_fft}, hop_length={hop_length}")
        # The window is not a buffer: from_pretrained materialises models from the meta device and
        # would leave a non-persistent buffer uninitialised; get_window caches it instead.
        self.n_fft, self.hop_length = n_fft, hop_length

    def forward(self, spec: torch.Tensor) -> torch.Tensor:  # (B, n_fft // 2 + 1, T) complex -> (B, T * hop)
        frames = spec.shape[-1]
        pad = (self.n_fft - self.hop_length) // 2
        segments = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward")
        window = get_window("hann", self.n_fft, segments.device, segments.dtype)
        segments = segments * window[None, :, None]
        size = (frames - 1) * self.hop_length + self.n_fft
        fold = dict(output_size=(1, size), kernel_size=(1, self.n_fft), stride=(1, self.hop_length))
        audio = nn.functional.fold(segments, **fold)[:, 0, 0, pad:size - pad]
        envelope = nn.functional.fold(window.square()[None, :, None].expand(1, -1, frames), **fold)
        envelope = envelope[0, 0, 0, pad:size - pad]
        return audio / envelope.clamp_min(1e-11)


class ISTFTDecoder(ConvNeXtTrunk):
    """Latents (B, hidden_size, T) -> audio (B, audio_channels, T * hop).

    Args (from ``MusicCodecConfig``):
        hidden_size: latent channels.
        decoder_hidden_size: ConvNeXt width.
        decoder_num_layers: ConvNeXt blocks.
        istft_n_fft: FFT size of the output frames (hop = the codec's hop length; 4 x hop keeps
            75 % overlap as in Vocos).
    """

    def __init__(self, config):
        super().__init__()
        self.audio_channels = config.audio_channels
        self.n_bins = config.istft_n_fft // 2 + 1
        self.build_trunk(config.hidden_size, config.decoder_hidden_size, config.decoder_num_layers)
        # log-magnitude and phase of every bin of every channel
        self.head = nn.Linear(config.decoder_hidden_size, 2 * self.n_bins * config.audio_channels)
        self.istft = InverseSTFT(config.istft_n_fft, config.hop_length)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        x = self.head(self.trunk(latents)).transpose(1, 2)  # (B, 2 * bins * C, T)
        batch, _, frames = x.shape
        with float32_region(x):  # magnitudes, phases and the inverse STFT in float32 (precision.py)
            x = upcast(x).reshape(batch * self.audio_channels, 2 * self.n_bins, frames)
            log_magnitude, phase = x.chunk(2, dim=1)
            # exp of an unbounded output can overflow early in training; Vocos clips the magnitude.
            magnitude = torch.exp(log_magnitude).clamp(max=1e2)
            spec = torch.polar(magnitude, phase)
            return self.istft(spec).reshape(batch, self.audio_channels, -1)
