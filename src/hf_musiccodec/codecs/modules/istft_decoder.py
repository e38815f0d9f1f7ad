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


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> LayerNorm -> pointwise MLP (GELU) -> layer scale, with a residual.

    Args:
        dim: channels.
        intermediate_dim: hidden width of the pointwise MLP (Vocos: 3 x dim).
        layer_scale: initial value of the per-channel output scale (Vocos: 1 / num_layers), which
            keeps a deep stack close to the identity at initialisation.
        kernel_size: of the depthwise conv, in frames (the block's look-ahead is half of it).
    """

    def __init__(self, dim: int, intermediate_dim: int, layer_scale: float, kernel_size: int = 7):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.layer_scale = layer_scale
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        y = self.dwconv(x).transpose(1, 2)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


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
        self.n_fft, self.hop_length = n_fft, hop_length

    def window(self, like: torch.Tensor) -> torch.Tensor:
        # Built per call (it is tiny), not held as a buffer: from_pretrained materialises models
        # from the meta device and would leave a non-persistent buffer uninitialised.
        return torch.hann_window(self.n_fft, dtype=like.dtype, device=like.device)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:  # (B, n_fft // 2 + 1, T) complex -> (B, T * hop)
        frames = spec.shape[-1]
        pad = (self.n_fft - self.hop_length) // 2
        segments = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward")
        window = self.window(segments)
        segments = segments * window[None, :, None]
        size = (frames - 1) * self.hop_length + self.n_fft
        fold = dict(output_size=(1, size), kernel_size=(1, self.n_fft), stride=(1, self.hop_length))
        audio = nn.functional.fold(segments, **fold)[:, 0, 0, pad:size - pad]
        envelope = nn.functional.fold(window.square()[None, :, None].expand(1, -1, frames), **fold)
        envelope = envelope[0, 0, 0, pad:size - pad]
        return audio / envelope.clamp_min(1e-11)


class ISTFTDecoder(nn.Module):
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
        dim, hop = config.decoder_hidden_size, config.hop_length
        self.audio_channels = config.audio_channels
        self.n_bins = config.istft_n_fft // 2 + 1
        self.embed = nn.Conv1d(config.hidden_size, dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(dim, 3 * dim, layer_scale=1.0 / config.decoder_num_layers)
            for _ in range(config.decoder_num_layers)
        )
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, 2 * self.n_bins * config.audio_channels)  # log-magnitude and phase
        self.istft = InverseSTFT(config.istft_n_fft, hop)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.embed(latents).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)  # (B, 2 * bins * C, T)
        batch, _, frames = x.shape
        x = x.reshape(batch * self.audio_channels, 2 * self.n_bins, frames)
        log_magnitude, phase = x.chunk(2, dim=1)
        # exp of an unbounded output can overflow early in training; Vocos clips the magnitude.
        magnitude = torch.exp(log_magnitude).clamp(max=1e2)
        spec = torch.polar(magnitude, phase)
        return self.istft(spec).reshape(batch, self.audio_channels, -1)
