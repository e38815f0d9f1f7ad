"""The codec interface generators use: rates and sizes, codes <-> latents <-> audio, gradients."""

import pytest
import torch

from hf_musiccodec import MusicCodecModel
from hf_musiccodec.testing.tiny import tiny_codec_config

FOURIER = dict(encoder_type="stft", decoder_type="istft", decoder_hidden_size=16, decoder_num_layers=2,
               encoder_num_layers=1)
# a causal SEANet (with its LSTM), DAC, and the Fourier (STFT encoder / iSTFT decoder) variant
GRADIENT_CASES = {"encodec_24khz": {}, "dac_16khz": {}, "soundstream_24khz-fourier": FOURIER}


def _model(name, **overrides):
    preset = name.split("-")[0]
    torch.manual_seed(0)
    model = MusicCodecModel(tiny_codec_config(preset, **{**GRADIENT_CASES.get(name, {}), **overrides})).eval()
    if model.quantizer is not None and model.config.quantizer_type == "euclidean":
        with torch.no_grad():
            for layer in model.quantizer.layers:
                layer.codebook.embed.normal_(std=0.3)
    return model


def test_rates_and_sizes():
    model = _model("encodec_32khz")
    assert (model.sampling_rate, model.audio_channels, model.hop_length) == (32_000, 1, 640)
    assert model.frame_rate == 50.0 and model.num_codebooks == 4 and model.codebook_size == 16
    ae = _model("autoencoder")
    assert ae.num_codebooks == 0 and ae.codebook_size is None


@pytest.mark.parametrize("name", ["encodec_24khz", "dac_16khz", "soundstream_24khz-fourier"])
def test_codes_latents_audio_round_trip(name, noise):
    model = _model(name)
    x = noise(2, 1, 7 * model.hop_length)
    with torch.no_grad():
        enc = model.encode(x)
        audio = model.decode(enc.audio_codes).audio_values
    latents = model.encode_latents(x)
    assert latents.shape == (2, model.config.hidden_size, 7) and not latents.requires_grad
    codes = model.latents_to_codes(latents)
    assert torch.equal(codes, enc.audio_codes[0])
    assert torch.equal(model.latents_to_codes(latents, num_quantizers=2), codes[:, :2])
    quantized = model.codes_to_latents(enc.audio_codes)  # (1, B, n, T) from encode, or (B, n, T)
    torch.testing.assert_close(quantized, model.codes_to_latents(codes))
    torch.testing.assert_close(model.decode_latents(quantized), audio, rtol=1e-5, atol=1e-6)


def test_latent_interface_refuses_chunked_codecs():
    model = _model("encodec_48khz")
    with pytest.raises(ValueError, match="encode / decode"):
        model.encode_latents(torch.zeros(1, 2, 960))


def _directional_check(fn, inputs, seed=0):
    """Backward gradient of sum(w * fn(inputs)) against a central finite difference along a random direction."""
    g = torch.Generator().manual_seed(seed)
    inputs = inputs.detach().requires_grad_(True)
    out = fn(inputs)
    weights = torch.randn(out.shape, generator=g, dtype=out.dtype)
    (out * weights).sum().backward()
    grad = inputs.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    direction = torch.randn(inputs.shape, generator=g, dtype=inputs.dtype)
    eps = 1e-6
    with torch.no_grad():
        plus = (fn(inputs + eps * direction) * weights).sum()
        minus = (fn(inputs - eps * direction) * weights).sum()
    numeric = (plus - minus) / (2 * eps)
    analytic = (grad * direction).sum()
    torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-7)
    return grad


@pytest.mark.parametrize("name", list(GRADIENT_CASES))
def test_decode_latents_is_differentiable_in_eval_mode(name):
    model = _model(name).double().requires_grad_(False)  # frozen, as a generator's decoder is
    latents = 0.3 * torch.randn(1, model.config.hidden_size, 5, dtype=torch.float64)
    _directional_check(model.decode_latents, latents)
    # the training-mode graph gives the same gradient
    model.train()
    grad_train = _directional_check(lambda z: model._full_length(model.decoder(z), z.shape[-1]), latents)
    model.eval()
    z = latents.clone().requires_grad_(True)
    (model.decode_latents(z) * torch.randn(1, 1, 5 * model.hop_length, generator=torch.Generator().manual_seed(0),
                                           dtype=torch.float64)).sum().backward()
    torch.testing.assert_close(z.grad, grad_train)


@pytest.mark.parametrize("name", list(GRADIENT_CASES))
def test_encode_latents_is_differentiable_in_eval_mode(name, noise):
    model = _model(name).double().requires_grad_(False)
    x = noise(1, 1, 4 * model.hop_length).double()
    _directional_check(model.encode_latents, x)


def test_gradients_reach_codebooks_through_codes_to_latents_in_training():
    model = _model("dac_16khz").train()
    codes = torch.randint(0, 16, (1, 3, 4))
    model.decode_latents(model.codes_to_latents(codes)).sum().backward()
    assert model.quantizer.layers[0].codebook.weight.grad.abs().sum() > 0
