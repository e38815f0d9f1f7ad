import pytest
import torch
from transformers import AutoModel

from hf_musiccodec import MusicCodecModel

from hf_musiccodec.testing.tiny import tiny_codec_config as tiny_config

ALL = ["autoencoder", "vqvae", "soundstream_24khz", "encodec_24khz", "encodec_48khz", "dac_16khz", "dac_44khz"]


def _input(model, noise, seconds=0.25, batch=2):
    cfg = model.config
    return noise(batch, cfg.audio_channels, int(seconds * cfg.sampling_rate))


@pytest.mark.parametrize("preset", ALL)
def test_encode_decode_shapes(preset, noise):
    model = MusicCodecModel(tiny_config(preset)).eval()
    x = _input(model, noise)
    with torch.no_grad():
        enc = model.encode(x)
        audio = model.decode(enc.audio_codes, enc.audio_scales, last_frame_pad_length=enc.last_frame_pad_length,
                             latents=enc.latents).audio_values
    cfg = model.config
    if cfg.quantizer_type == "none":
        assert enc.audio_codes is None and enc.latents.shape[2] == cfg.hidden_size
    else:
        assert enc.audio_codes.dtype == torch.long
        assert enc.audio_codes.shape[1:3] == (2, cfg.num_quantizers)  # bandwidth=None: the highest
        assert int(enc.audio_codes.max()) < cfg.codebook_size
    assert audio.shape[:2] == x.shape[:2]
    assert audio.shape[-1] >= x.shape[-1]


@pytest.mark.parametrize("preset", ALL)
def test_forward_trains(preset, noise):
    model = MusicCodecModel(tiny_config(preset, quantizer_dropout=0.5)).train()
    x = _input(model, noise, seconds=0.1, batch=4)
    out = model(x)
    assert out.audio_values.shape == x.shape
    loss = (out.audio_values - x).abs().mean() + out.vq_loss
    loss.backward()
    grads = [p.grad for p in model.encoder.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_quantizer_dropout_uses_fewer_codebooks(noise):
    model = MusicCodecModel(tiny_config("dac_16khz", quantizer_dropout=1.0, num_quantizers=6)).train()
    torch.manual_seed(0)
    used = model(noise(16, 1, 640)).num_quantizers
    assert used.min() >= 1 and used.max() <= 6 and len(set(used.tolist())) > 1
    model.eval()
    assert (model(noise(4, 1, 640)).num_quantizers == 6).all()  # no dropout at inference


def test_bandwidth_selects_codebooks_and_rejects_unsupported(noise):
    model = MusicCodecModel(tiny_config("encodec_24khz")).eval()
    x = _input(model, noise)
    lowest = model.config.target_bandwidths[0]
    assert model.encode(x, bandwidth=lowest).audio_codes.shape[2] == model.config.num_quantizers_for_bandwidth(lowest)
    with pytest.raises(ValueError, match="unsupported bandwidth 5.0 kbps; this model supports"):
        model.encode(x, bandwidth=5.0)


def test_more_codebooks_reconstruct_latents_better(noise):
    model = MusicCodecModel(tiny_config("encodec_24khz", num_quantizers=8)).train()
    x = _input(model, noise)
    model(x)  # k-means initialises every codebook on this batch
    model.eval()
    latents = model.encoder(x)
    errors = [(model.quantizer.decode(model.quantizer.encode(latents, n)) - latents).pow(2).mean() for n in (1, 4, 8)]
    assert errors[0] > errors[1] > errors[2]


def test_bad_inputs_are_clear_errors(noise):
    model = MusicCodecModel(tiny_config("encodec_24khz")).eval()
    x = _input(model, noise)
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.encode(torch.full_like(x, float("nan")))
    with pytest.raises(ValueError, match="1-channel"):
        model.encode(torch.zeros(1, 2, 1000))
    with pytest.raises(ValueError, match="empty"):
        model.encode(torch.zeros(1, 1, 0))
    codes = model.encode(x).audio_codes
    with pytest.raises(ValueError, match=r"must be in \[0, 16\)"):
        model.decode(codes + 16, [None])
    with pytest.raises(ValueError, match="integers"):
        model.decode(codes.float(), [None])


def test_save_and_load_round_trip(tmp_path, noise):
    model = MusicCodecModel(tiny_config("soundstream_24khz")).train()
    x = _input(model, noise)
    model(x)  # initialise the codebooks so the buffers carry real state
    model.eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    for loaded in (MusicCodecModel.from_pretrained(tmp_path), AutoModel.from_pretrained(tmp_path)):
        assert isinstance(loaded, MusicCodecModel)
        loaded.eval()
        with torch.no_grad():
            assert torch.equal(model.encode(x).audio_codes, loaded.encode(x).audio_codes)
            a = model.decode(model.encode(x).audio_codes).audio_values
            b = loaded.decode(loaded.encode(x).audio_codes).audio_values
        assert torch.allclose(a, b, atol=1e-6)


def test_folded_weight_norm_follows_optimizer_updates(noise):
    model = MusicCodecModel(tiny_config("dac_16khz")).eval()
    x = _input(model, noise, batch=1)
    with torch.no_grad():
        before = model.decode(model.encode(x).audio_codes).audio_values
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    model(x).audio_values.pow(2).mean().backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        codes = model.encode(x).audio_codes
        cached = model.decode(codes).audio_values
        for module in model.modules():  # drop every cache and recompute from g and v
            if hasattr(module, "_folded"):
                module._folded = None
        fresh = model.decode(codes).audio_values
    assert torch.equal(cached, fresh)
    assert not torch.allclose(before, cached)


def test_padding_mask_trims_output(noise):
    model = MusicCodecModel(tiny_config("dac_16khz")).eval()
    x = noise(1, 1, 1000)  # not a multiple of the hop: DAC pads it
    mask = torch.ones_like(x, dtype=torch.bool)
    with torch.no_grad():
        enc = model.encode(x, padding_mask=mask)
        audio = model.decode(enc.audio_codes, enc.audio_scales, padding_mask=mask).audio_values
    assert audio.shape == x.shape
