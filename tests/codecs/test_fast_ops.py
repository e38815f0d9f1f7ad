"""The CPU inference fast paths: private torch ops are tried once and have a public fallback that
gives the same outputs; the fast paths never change torch's thread count and never run while a
graph is needed."""

import importlib.util

import pytest
import torch

from hf_musiccodec import MusicCodecModel
from hf_musiccodec.codecs.modules import fast_ops
from hf_musiccodec.testing.tiny import tiny_codec_config

PRESETS = ["encodec_24khz", "encodec_32khz", "soundstream_24khz", "dac_16khz", "dac_44khz"]


@pytest.fixture
def fresh_probes(monkeypatch):
    """Forget earlier probe results (and restore them, and the switch, afterwards)."""
    monkeypatch.setattr(fast_ops, "_probed", {})
    monkeypatch.setattr(fast_ops, "_private_ops", True)


def _run(model, x):
    with torch.no_grad():
        latents = model.encoder(model._pad_to_hop(x))
        codes = model.quantizer.encode(latents)
        audio = model.decoder(model.quantizer.decode(codes))
    return latents, codes, audio


@pytest.mark.parametrize("preset", PRESETS)
def test_private_and_public_ops_agree(preset, noise, fresh_probes):
    torch.manual_seed(0)
    model = MusicCodecModel(tiny_codec_config(preset)).eval()
    # long enough that the latent-rate convs (> 64 frames) take oneDNN's pre-packed kernels too
    x = noise(1, 1, 70 * model.config.hop_length)
    latents, codes, audio = _run(model, x)
    assert fast_ops.mkldnn_fused_ok() == torch.backends.mkldnn.is_available()
    fast_ops.set_private_ops(False)
    assert not fast_ops.mkldnn_fused_ok()
    latents_pub, _, _ = _run(model, x)
    with torch.no_grad():
        audio_pub = model.decoder(model.quantizer.decode(codes))  # same codes: audio comparable
    torch.testing.assert_close(latents_pub, latents, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(audio_pub, audio, rtol=1e-4, atol=1e-5)
    # and both equal the differentiable training path
    fast_ops.set_private_ops(True)
    x_grad = x.clone().requires_grad_(True)
    torch.testing.assert_close(model.encoder(model._pad_to_hop(x_grad)).detach(), latents, rtol=1e-4, atol=1e-5)


def test_failing_private_op_falls_back(noise, fresh_probes, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("operator changed in this torch release")

    monkeypatch.setattr(torch.ops.mkldnn, "_convolution_pointwise", broken)
    assert not fast_ops.mkldnn_fused_ok()
    model = MusicCodecModel(tiny_codec_config("dac_16khz")).eval()
    _run(model, noise(1, 1, 70 * model.config.hop_length))  # runs on public ops


def test_disagreeing_private_op_falls_back(fresh_probes, monkeypatch):
    real = torch.ops.aten.elu.out

    def wrong(x, *args, out):
        real(x, *args, out=out)
        return out.add_(1)

    monkeypatch.setattr(torch.ops.aten.elu, "out", wrong)
    x = torch.linspace(-2, 2, 9)
    out = torch.empty(9)
    fast_ops.elu_into(x, out)
    assert torch.equal(out, torch.nn.functional.elu(x)) and fast_ops._probed["elu_out"] is False


def test_environment_switch_forces_public_ops(monkeypatch):
    monkeypatch.setenv("HF_MUSICCODEC_PUBLIC_OPS", "1")
    spec = importlib.util.spec_from_file_location("hf_musiccodec.codecs.modules._fast_ops_copy", fast_ops.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert not module.private_ops_enabled() and not module.mkldnn_fused_ok()


def test_fast_path_only_on_cpu_without_graph_or_autocast():
    x = torch.zeros(1, 1, 4)
    weight = torch.nn.Parameter(torch.zeros(1))
    assert fast_ops.use_fast_path(x, [weight]) is False  # a parameter wants a gradient
    with torch.no_grad():
        assert fast_ops.use_fast_path(x, [weight])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not fast_ops.use_fast_path(x, [weight])
        assert not fast_ops.use_fast_path(x.to("meta"), [weight])  # any non-CPU device (CUDA)


def test_inference_leaves_the_thread_count_alone(noise):
    model = MusicCodecModel(tiny_codec_config("encodec_24khz")).eval()
    before = torch.get_num_threads()
    calls = []
    original = torch.set_num_threads
    torch.set_num_threads = lambda n: calls.append(n) or original(n)
    try:
        x = noise(1, 1, 960)
        model.decode(model.encode(x).audio_codes)
        with model.streaming():
            for start in range(0, 960, 100):
                model.decode(model.encode(x[..., start: start + 100]).audio_codes)
    finally:
        torch.set_num_threads = original
    assert calls == [] and torch.get_num_threads() == before
