"""Named configurations of the systems in the literature, all in one codec family."""

from __future__ import annotations

_ENCODEC_24KHZ = dict(
    architecture="seanet", sampling_rate=24_000, audio_channels=1, hidden_size=128, num_filters=32,
    upsampling_ratios=[8, 5, 4, 2], num_lstm_layers=2, use_causal_conv=True, norm_type="weight_norm",
    quantizer_type="euclidean", num_quantizers=32, codebook_size=1024,
    target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0],
)

_DAC = dict(
    architecture="dac", num_filters=64, hidden_size=1024, decoder_hidden_size=1536,
    quantizer_type="factorized", codebook_size=1024, codebook_dim=8, pad_to_hop=True,
    commitment_weight=0.25, codebook_weight=1.0,
)

PRESETS: dict[str, dict] = {
    # A convolutional autoencoder with no bottleneck: the continuous baseline.
    "autoencoder": dict(
        architecture="seanet", sampling_rate=24_000, hidden_size=64, num_filters=32,
        upsampling_ratios=[8, 5, 4, 2], num_lstm_layers=0, quantizer_type="none",
    ),
    # VQ-VAE (van den Oord et al., 2017): one EMA codebook.
    "vqvae": dict(
        architecture="seanet", sampling_rate=24_000, hidden_size=64, num_filters=32,
        upsampling_ratios=[8, 5, 4, 2], num_lstm_layers=0, quantizer_type="euclidean",
        num_quantizers=1, codebook_size=1024, commitment_weight=0.25,
    ),
    # SoundStream (Zeghidour et al., 2021): causal SEANet with residual units of dilations 1, 3, 9,
    # 24 codebooks of 1024 at 75 Hz, quantizer dropout over 3-18 kbps.
    "soundstream_24khz": dict(
        architecture="seanet", sampling_rate=24_000, hidden_size=128, num_filters=32,
        upsampling_ratios=[8, 5, 4, 2], num_residual_layers=3, dilation_growth_rate=3, compress=2,
        num_lstm_layers=0, use_causal_conv=True, quantizer_type="euclidean", num_quantizers=24,
        codebook_size=1024, quantizer_dropout=1.0, target_bandwidths=[3.0, 6.0, 12.0, 18.0],
    ),
    # EnCodec (Défossez et al., 2022), as facebook/encodec_24khz.
    "encodec_24khz": dict(_ENCODEC_24KHZ),
    # EnCodec 48 kHz stereo, as facebook/encodec_48khz: non-causal, time group norm,
    # 1 s chunks overlapping by 1 %, each with its own RMS scale.
    "encodec_48khz": dict(
        _ENCODEC_24KHZ, sampling_rate=48_000, audio_channels=2, use_causal_conv=False,
        norm_type="time_group_norm", num_quantizers=16, target_bandwidths=[3.0, 6.0, 12.0, 24.0],
        normalize=True, chunk_length_s=1.0, overlap=0.01,
    ),
    # EnCodec 32 kHz, MusicGen's codec, as facebook/encodec_32khz: non-causal, identity shortcuts,
    # 4 codebooks of 2048 at 50 Hz (2.2 kbps).
    "encodec_32khz": dict(
        _ENCODEC_24KHZ, sampling_rate=32_000, num_filters=64, upsampling_ratios=[8, 5, 4, 4],
        use_causal_conv=False, use_conv_shortcut=False, num_quantizers=4, codebook_size=2048,
        target_bandwidths=[2.2],
    ),
    # Descript Audio Codec (Kumar et al., 2023), as descript/dac_16khz, dac_24khz, dac_44khz.
    "dac_16khz": dict(_DAC, sampling_rate=16_000, upsampling_ratios=[8, 5, 4, 2], num_quantizers=12),
    "dac_24khz": dict(_DAC, sampling_rate=24_000, upsampling_ratios=[8, 5, 4, 2], num_quantizers=32),
    "dac_44khz": dict(_DAC, sampling_rate=44_100, upsampling_ratios=[8, 8, 4, 2], num_quantizers=9),
}


def preset_kwargs(name: str) -> dict:
    try:
        return dict(PRESETS[name])
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
