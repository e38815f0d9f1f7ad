"""Long files in windows equal whole-file processing; receptive fields; inference fast paths."""

import pytest
import torch

from hf_musiccodec import MusicCodecModel
from hf_musiccodec.codecs.long_audio import margins, receptive_field
from hf_musiccodec.testing.tiny import tiny_codec_config

from .probes import decoder_frame_span, encoder_sample_span


def _model(preset, **overrides):
    torch.manual_seed(0)
    model = MusicCodecModel(tiny_codec_config(preset, **overrides)).eval()
    if model.config.quantizer_type == "euclidean":
        for layer in model.quantizer.layers:
            layer.codebook.embed.normal_()
    return model


@pytest.mark.parametrize("preset", ["dac_16khz", "dac_44khz", "encodec_48khz", "encodec_24khz"])
@pytest.mark.parametrize("chunk_seconds", [0.1, 0.3])
def test_long_equals_whole_file(preset, chunk_seconds, noise):
    model = _model(preset)
    cfg = model.config
    seconds = 2.1 if preset == "encodec_48khz" else 0.6  # EnCodec 48 kHz: several 1 s chunks
    x = noise(2, cfg.audio_channels, int(seconds * cfg.sampling_rate) + 17)
    with torch.no_grad():
        ref = model.encode(x)
        ref_audio = model.decode(ref.audio_codes, ref.audio_scales,
                                 last_frame_pad_length=ref.last_frame_pad_length).audio_values
    enc = model.encode_long(x, chunk_seconds=chunk_seconds)
    assert torch.equal(enc.audio_codes, ref.audio_codes)
    assert enc.last_frame_pad_length == ref.last_frame_pad_length
    audio = model.decode_long(enc.audio_codes, enc.audio_scales, last_frame_pad_length=enc.last_frame_pad_length,
                              chunk_seconds=chunk_seconds).audio_values
    assert audio.shape == ref_audio.shape
    assert (audio - ref_audio).abs().max() < 1e-4


@pytest.mark.parametrize("preset", ["dac_16khz", "dac_44khz"])
def test_receptive_field_matches_a_gradient_probe(preset):
    model = _model(preset).train()  # gradients: the reference (training) path
    hop = model.config.hop_length
    field = receptive_field(model)
    frames = 40
    frame = frames // 2
    assert encoder_sample_span(model, frames, frame) == field["encoder"]
    left, right = decoder_frame_span(model, frames, frame)
    assert left <= field["decoder"][0] and right <= field["decoder"][1]
    assert margins(model)["decoder"][0] >= left + 1


def test_recurrent_codecs_have_no_bounded_field():
    with pytest.raises(ValueError, match="unbounded"):
        margins(_model("encodec_24khz"))


@pytest.mark.parametrize("preset", ["dac_16khz", "encodec_24khz"])
def test_vectorised_rvq_decode_equals_loop(preset):
    model = _model(preset, num_quantizers=5, target_bandwidths=None)
    codes = torch.randint(0, model.config.codebook_size, (2, 5, 30))
    with torch.no_grad():
        for n in (1, 2, 5):
            fast = model.quantizer.decode(codes[:, :n])
            loop = model.quantizer.decode_loop(codes[:, :n])
            assert fast.shape == loop.shape
            assert (fast - loop).abs().max() <= 1e-5 * loop.abs().max()
    # The cached stacked tables follow parameter updates.
    with torch.no_grad():
        for p in model.quantizer.parameters():
            p.mul_(1.5)
        for name, buffer in model.quantizer.named_buffers():
            if name.endswith("embed"):
                buffer.mul_(1.5)
        assert torch.allclose(model.quantizer.decode(codes), model.quantizer.decode_loop(codes), atol=1e-5)


def test_inference_quantize_skips_losses_but_matches_training_path():
    model = _model("dac_16khz")
    latents = torch.randn(2, model.config.hidden_size, 12)
    layer = model.quantizer.layers[0]
    with torch.no_grad():
        quantized, codes = layer.quantize(latents)
    trained, trained_codes, _, _ = layer(latents)  # grad path: losses and straight-through
    assert torch.equal(codes, trained_codes) and torch.equal(quantized, trained.detach())


@pytest.mark.parametrize("preset", ["dac_16khz", "encodec_24khz", "soundstream_24khz"])
def test_fast_inference_path_equals_training_path(preset, noise):
    model = _model(preset)
    x = noise(2, 1, 3 * model.config.hop_length + 11)
    if model.config.pad_to_hop:
        x = x[..., : 3 * model.config.hop_length]
    with torch.no_grad():
        fast = model.encoder(x)
        decoded_fast = model.decoder(fast)
    slow = model.encoder(x)  # grad enabled, parameters require grad: the autograd path
    decoded_slow = model.decoder(slow)
    assert slow.requires_grad and not fast.requires_grad
    assert (fast - slow).abs().max() < 1e-5 and (decoded_fast - decoded_slow).abs().max() < 1e-5


def test_folded_weights_are_cached_at_inference():
    model = _model("dac_16khz")
    conv = model.decoder.conv1
    with torch.no_grad():
        first = conv.folded_weight("mkldnn")
        assert conv.folded_weight("mkldnn") is first  # no recomputation
        conv.weight_v.mul_(2)  # an in-place update invalidates it
        assert conv.folded_weight("mkldnn") is not first
    weight = conv.folded_weight("ncw")
    assert weight.requires_grad  # while training, weight norm is recomputed with its graph


def test_encode_decode_do_not_build_graphs_at_inference(noise):
    model = _model("dac_16khz")
    x = noise(1, 1, 640)
    codes = model.encode(x).audio_codes
    audio = model.decode(codes).audio_values
    assert not audio.requires_grad  # eval mode, input without grad: no graph
    latents = torch.randn(1, model.config.hidden_size, 2, requires_grad=True)
    ae = _model("autoencoder")
    assert ae.decode(latents=latents[:, : ae.config.hidden_size]).audio_values.requires_grad


def test_long_with_bandwidth_and_padding_mask(noise):
    model = _model("dac_16khz")
    x = noise(1, 1, 7000)
    mask = torch.ones_like(x, dtype=torch.bool)
    bandwidth = model.config.target_bandwidths[0]
    with torch.no_grad():
        ref = model.encode(x, padding_mask=mask, bandwidth=bandwidth).audio_codes
        ref_audio = model.decode(ref, padding_mask=mask).audio_values
    enc = model.encode_long(x, bandwidth, padding_mask=mask, chunk_seconds=0.1)
    assert enc.audio_codes.shape[2] == 1 and torch.equal(enc.audio_codes, ref)
    audio = model.decode_long(enc.audio_codes, padding_mask=mask, chunk_seconds=0.1).audio_values
    assert audio.shape == x.shape and (audio - ref_audio).abs().max() < 1e-4


# --------------------------------------------------------------------------- block iterators

# One tiny codec per long-audio mode: windows (a Fourier-domain codec like the bundled one, and
# DAC), stream (causal SEANet) and chunked (EnCodec 48 kHz).
BLOCK_MODES = {
    "windows-fourier": ("encodec_24khz", dict(encoder_type="stft", decoder_type="istft", num_lstm_layers=0,
                                              use_causal_conv=False, decoder_hidden_size=16, encoder_num_layers=2,
                                              decoder_num_layers=2)),
    "windows-dac": ("dac_16khz", {}),
    "stream": ("encodec_24khz", {}),
    "chunked": ("encodec_48khz", {}),
}


def _ragged_blocks(x, seed=0):
    """``x`` cut into consecutive blocks of random lengths (some empty), as (channels, n) arrays."""
    rng = torch.Generator().manual_seed(seed)
    start = 0
    while start < x.shape[-1]:
        n = int(torch.randint(0, 900, (1,), generator=rng))
        yield x[0, :, start: start + n].numpy()
        start += n


@pytest.mark.parametrize("mode", list(BLOCK_MODES))
def test_blocks_equal_whole_file(mode, noise):
    from hf_musiccodec.codecs.long_audio import _mode, decode_blocks, encode_blocks

    preset, overrides = BLOCK_MODES[mode]
    model = _model(preset, **overrides)
    assert _mode(model, "encoder") == _mode(model, "decoder") == mode.split("-")[0]
    cfg = model.config
    x = noise(1, cfg.audio_channels, int((2.1 if mode == "chunked" else 0.5) * cfg.sampling_rate) + 29)
    with torch.no_grad():
        ref = model.encode(x)
        ref_audio = model.decode(ref.audio_codes, ref.audio_scales,
                                 last_frame_pad_length=ref.last_frame_pad_length).audio_values
    enc = encode_blocks(model, _ragged_blocks(x), chunk_seconds=0.05)
    assert torch.equal(enc.audio_codes, ref.audio_codes)
    assert enc.last_frame_pad_length == ref.last_frame_pad_length
    if mode == "chunked":
        assert all(torch.equal(a, b) for a, b in zip(enc.audio_scales, ref.audio_scales))
    blocks = list(decode_blocks(model, enc.audio_codes, enc.audio_scales, enc.last_frame_pad_length,
                                chunk_seconds=0.05))
    assert len(blocks) >= 3  # really in pieces
    audio = torch.cat(blocks, dim=-1)
    assert audio.shape == ref_audio.shape
    if mode == "chunked":  # the same overlap-add arithmetic, bit for bit
        assert torch.equal(audio, ref_audio)
    else:
        assert (audio - ref_audio).abs().max() < 1e-5


def test_encode_blocks_refuses_empty_input():
    from hf_musiccodec.codecs.long_audio import encode_blocks

    for preset in ("dac_16khz", "encodec_24khz", "encodec_48khz"):
        model = _model(preset)
        with pytest.raises(ValueError, match="empty"):
            encode_blocks(model, iter([torch.zeros(1, model.config.audio_channels, 0)]))
