"""Fourier-domain parts: the STFT encoder and the iSTFT (Vocos) decoder: exact inverse STFT,
whole-model behaviour, receptive fields, long files, streaming."""

import logging

import pytest
import torch

from hf_musiccodec import MusicCodecModel
from hf_musiccodec.codecs.long_audio import margins, receptive_field
from hf_musiccodec.codecs.modules.istft_decoder import InverseSTFT
from hf_musiccodec.testing.tiny import tiny_codec_config

from .probes import decoder_frame_span, encoder_sample_span

ISTFT = dict(decoder_type="istft", decoder_hidden_size=16, decoder_num_layers=2)
FOURIER = dict(ISTFT, encoder_type="stft", encoder_num_layers=2, use_causal_conv=False, num_lstm_layers=0)


def _model(preset="soundstream_24khz", **overrides):
    torch.manual_seed(0)
    model = MusicCodecModel(tiny_codec_config(preset, **{**ISTFT, **overrides})).eval()
    if model.config.quantizer_type == "euclidean":
        for layer in model.quantizer.layers:
            layer.codebook.embed.normal_()
    return model


@pytest.mark.parametrize("n_fft, hop", [(1280, 320), (64, 16), (30, 10)])
def test_inverse_stft_inverts_a_same_padded_stft(n_fft, hop):
    frames = 12
    x = torch.randn(2, frames * hop, dtype=torch.float64)
    pad = (n_fft - hop) // 2
    padded = torch.nn.functional.pad(x, (pad, pad))
    window = torch.hann_window(n_fft, dtype=torch.float64)
    segments = padded.unfold(-1, n_fft, hop) * window  # (B, frames, n_fft)
    assert segments.shape[1] == frames
    spec = torch.fft.rfft(segments, dim=-1).transpose(1, 2)
    istft = InverseSTFT(n_fft, hop).double()
    assert torch.allclose(istft(spec), x, atol=1e-9)


def test_inverse_stft_rejects_odd_overlap():
    with pytest.raises(ValueError, match="even"):
        InverseSTFT(100, 33)


def test_istft_model_shapes_and_save_load(tmp_path, noise):
    model = _model()
    assert type(model.decoder).__name__ == "ISTFTDecoder"
    x = noise(2, 1, 5 * model.config.hop_length + 7)
    out = model(x)
    assert out.audio_values.shape == x.shape
    enc = model.encode(x)
    audio = model.decode(enc.audio_codes).audio_values
    assert audio.shape[-1] >= x.shape[-1] and torch.isfinite(audio).all()
    model.save_pretrained(tmp_path)
    loaded = MusicCodecModel.from_pretrained(tmp_path).eval()
    assert loaded.config.decoder_type == "istft"
    assert torch.equal(loaded.decode(enc.audio_codes).audio_values, audio)


def test_istft_decoder_gets_vocos_init():
    model = _model(decoder_num_layers=4)
    block = model.decoder.blocks[0]
    assert torch.allclose(block.gamma, torch.full_like(block.gamma, 0.25))
    assert model.decoder.head.bias.abs().max() == 0


def test_config_rejects_bad_decoder_options():
    with pytest.raises(ValueError, match="decoder_type"):
        tiny_codec_config("soundstream_24khz", decoder_type="wavenet")
    with pytest.raises(ValueError, match="istft_n_fft"):
        tiny_codec_config("soundstream_24khz", decoder_type="istft", istft_n_fft=321)
    with pytest.raises(ValueError, match="encoder_type"):
        tiny_codec_config("soundstream_24khz", encoder_type="mel")
    assert tiny_codec_config("soundstream_24khz", encoder_type="stft").pad_to_hop  # frames need whole hops


@pytest.mark.parametrize("preset", ["soundstream_24khz", "dac_16khz"])
def test_decoder_receptive_field_matches_a_gradient_probe(preset):
    model = _model(preset).train()
    left, right = decoder_frame_span(model)
    assert (left, right) == receptive_field(model)["decoder"]  # a ConvNeXt stack has no residual shortcut narrower than its path
    assert margins(model, parts=("decoder",))["decoder"][0] >= left + 1


@pytest.mark.parametrize("preset", ["soundstream_24khz", "dac_16khz"])
def test_long_equals_whole_file(preset, noise):
    model = _model(preset, num_lstm_layers=1) if preset == "soundstream_24khz" else _model(preset)
    cfg = model.config
    x = noise(1, 1, int(0.6 * cfg.sampling_rate) + 17)
    with torch.no_grad():
        ref = model.encode(x)
        ref_audio = model.decode(ref.audio_codes, last_frame_pad_length=ref.last_frame_pad_length).audio_values
    enc = model.encode_long(x, chunk_seconds=0.1)  # causal encoder: streamed; DAC: windows
    assert torch.equal(enc.audio_codes, ref.audio_codes)
    audio = model.decode_long(enc.audio_codes, last_frame_pad_length=enc.last_frame_pad_length,
                              chunk_seconds=0.1).audio_values  # windows with the decoder's margin
    assert audio.shape == ref_audio.shape
    assert (audio - ref_audio).abs().max() < 1e-4


def test_encoder_streams_but_decoder_refuses(noise):
    model = _model(num_lstm_layers=1)
    x = noise(1, 1, 2000)
    offline = model.encode(x).audio_codes
    with model.streaming() as stream:
        parts = [model.encode(x[..., i: i + 333]).audio_codes for i in range(0, x.shape[-1], 333)]
        with pytest.raises(ValueError, match="iSTFT decoder is not causal"):
            model.decode(parts[-1])
    codes = torch.cat(parts + [stream.flushed.audio_codes], dim=-1)
    assert torch.equal(codes, offline)


def test_training_can_swap_the_decoder_of_a_trained_codec(tmp_path, caplog):
    from hf_musiccodec.training.codec_config import CodecTrainingConfig
    from hf_musiccodec.training.codec_solver import build_codec

    base = MusicCodecModel(tiny_codec_config("soundstream_24khz"))
    base.save_pretrained(tmp_path / "base")
    cfg = CodecTrainingConfig(preset=None, init_from=str(tmp_path / "base"), train_folder="unused",
                              model_overrides={**ISTFT, "quantizer_dropout": 0.5})
    with caplog.at_level(logging.WARNING):
        model = build_codec(cfg)
    assert "start fresh (in decoder)" in caplog.text
    assert model.config.decoder_type == "istft" and model.quantizer.quantizer_dropout == 0.5
    before = base.state_dict()
    for name, value in model.state_dict().items():
        if not name.startswith("decoder."):
            assert torch.equal(value, before[name]), name


def test_stft_encoder_model_takes_any_length(noise):
    model = _model(**FOURIER)
    assert type(model.encoder).__name__ == "STFTEncoder"
    x = noise(2, 1, 7 * model.config.hop_length + 5)
    assert model(x).audio_values.shape == x.shape
    enc = model.encode(x)
    assert enc.audio_codes.shape[-1] == 8  # the partial last hop is padded into a frame


def test_stft_encoder_receptive_field_matches_a_gradient_probe():
    model = _model(**FOURIER).train()
    field = receptive_field(model)
    left, right = encoder_sample_span(model)
    # The Hann window's first sample is 0, so the leftmost sample of the field has no weight.
    assert (left + 1, right) == field["encoder"]
    assert decoder_frame_span(model) == field["decoder"]


def test_fourier_codec_long_equals_whole_file(noise):
    model = _model(**FOURIER)
    x = noise(1, 1, int(0.6 * model.config.sampling_rate) + 17)
    with torch.no_grad():
        ref = model.encode(x)
        ref_audio = model.decode(ref.audio_codes, last_frame_pad_length=ref.last_frame_pad_length).audio_values
    enc = model.encode_long(x, chunk_seconds=0.1)
    assert torch.equal(enc.audio_codes, ref.audio_codes)
    audio = model.decode_long(enc.audio_codes, last_frame_pad_length=enc.last_frame_pad_length,
                              chunk_seconds=0.1).audio_values
    assert audio.shape == ref_audio.shape and (audio - ref_audio).abs().max() < 1e-4


def test_fourier_codec_does_not_stream():
    model = _model(**FOURIER)
    with pytest.raises(ValueError, match="STFT encoder is not causal"):
        with model.streaming():
            pass
