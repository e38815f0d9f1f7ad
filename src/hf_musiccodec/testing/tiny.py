"""Tiny configurations for tests: the structure of a preset at a few thousand parameters."""

from __future__ import annotations

from ..codecs import MusicCodecConfig


def tiny_codec_config(preset: str, **overrides) -> MusicCodecConfig:
    kwargs = dict(num_filters=4, hidden_size=8, codebook_size=16, kmeans_iters=2)
    if preset.startswith("dac"):
        kwargs.update(decoder_hidden_size=32, num_quantizers=3, hidden_size=16, num_filters=2)
    elif preset not in ("autoencoder", "vqvae"):
        kwargs.update(num_lstm_layers=1)
    if preset in ("encodec_24khz", "encodec_32khz", "encodec_48khz", "soundstream_24khz"):
        kwargs.update(num_quantizers=4, target_bandwidths=None)
    kwargs.update(overrides)
    return MusicCodecConfig.from_preset(preset, **kwargs)
