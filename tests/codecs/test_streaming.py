"""Streaming encode/decode of the causal codecs equals offline encode/decode of the whole signal."""

import random

import pytest
import torch

from hf_musiccodec import MusicCodecModel
from hf_musiccodec.testing.tiny import tiny_codec_config

CAUSAL = ["encodec_24khz", "soundstream_24khz"]


def _model(preset, **overrides):
    torch.manual_seed(0)
    model = MusicCodecModel(tiny_codec_config(preset, **overrides)).eval()
    assert model.config.num_lstm_layers > 0  # the tiny causal presets keep an LSTM
    for layer in model.quantizer.layers:  # EnCodec's codebooks start at zero: spread them
        layer.codebook.embed.normal_()
    return model


def _offline(model, x, bandwidth=None):
    with torch.no_grad():
        codes = model.encode(x, bandwidth=bandwidth).audio_codes
        return codes, model.decode(codes).audio_values


def _stream(model, x, sizes, bandwidth=None):
    """Feed x in chunks of the given sizes (cycled); return codes, audio and per-call frame counts."""
    codes, audio, seen = [], [], []
    position, i = 0, 0
    with model.streaming() as stream:
        while position < x.shape[-1]:
            n = sizes[i % len(sizes)]
            i += 1
            c = model.encode(x[..., position: position + n], bandwidth=bandwidth).audio_codes
            position += n
            assert c.dim() == 4 and c.shape[:3] == (1, x.shape[0], c.shape[2])
            codes.append(c)
            audio.append(model.decode(c).audio_values)
            seen.append((min(position, x.shape[-1]), sum(k.shape[-1] for k in codes)))
    codes.append(stream.flushed.audio_codes)
    audio.append(stream.flushed.audio_values)
    return torch.cat(codes, dim=-1), torch.cat(audio, dim=-1), seen


@pytest.mark.parametrize("preset", CAUSAL)
@pytest.mark.parametrize("chunk", [1, 7, "hop-1", "hop+1", "random"])
def test_streaming_equals_offline(preset, chunk, noise):
    # Sample-by-sample chunks on a hop of 8 (strides 2 and 4) keep the test fast; the rest use
    # the preset's strides (8, 5, 4, 2: hop 320).
    model = _model(preset, upsampling_ratios=[4, 2]) if chunk in (1, 7) else _model(preset)
    hop = model.config.hop_length
    length = 12 * hop + 5 if chunk == 1 else 4 * hop + 123
    x = noise(2, 1, length)
    if chunk == "random":
        sizes = [random.Random(0).randint(0, 2 * hop) for _ in range(50)]
    else:
        sizes = [{"hop-1": hop - 1, "hop+1": hop + 1}.get(chunk, chunk)]
    ref_codes, ref_audio = _offline(model, x)
    codes, audio, seen = _stream(model, x, sizes)
    assert torch.equal(codes, ref_codes)
    assert audio.shape == ref_audio.shape
    assert (audio - ref_audio).abs().max() < 1e-5
    # Only completed frames come out before the flush: never more than the samples cover.
    assert all(frames <= samples // hop for samples, frames in seen)


def test_streaming_start_up_then_one_frame_per_hop(noise):
    """Frames come out as soon as the left reflect padding of every layer is known, then one per hop."""
    model = _model("encodec_24khz")
    hop = model.config.hop_length
    x = noise(1, 1, 20 * hop)
    _, _, seen = _stream(model, x, [hop])
    frames = [f for _, f in seen]
    first = next(i for i, f in enumerate(frames) if f)
    assert first <= 8  # start-up: the last conv (kernel 7) needs 7 latent frames
    assert frames[first] == first + 1  # then it catches up at once...
    assert all(b - a == 1 for a, b in zip(frames[first:], frames[first + 1:]))  # ...and keeps pace


def test_flush_restarts_and_context_can_be_reused(noise):
    model = _model("soundstream_24khz")
    x, y = noise(1, 1, 900, seed=1), noise(1, 1, 1500, seed=2)
    ref_x, ref_y = _offline(model, x)[0], _offline(model, y)[0]
    with model.streaming():
        parts = [model.encode(x[..., :500]).audio_codes, model.encode(x[..., 500:]).audio_codes]
        rest = model.flush()
        assert rest.audio_values is None  # nothing was decoded in this stream
        parts.append(rest.audio_codes)
        assert torch.equal(torch.cat(parts, dim=-1), ref_x)
        second = [model.encode(y).audio_codes, model.flush().audio_codes]  # a new signal
        assert torch.equal(torch.cat(second, dim=-1), ref_y)


def test_decode_only_stream_and_lower_bandwidth(noise):
    model = _model("encodec_24khz")
    x = noise(2, 1, 7 * model.config.hop_length + 5)
    bandwidth = model.config.target_bandwidths[0]
    ref_codes, ref_audio = _offline(model, x, bandwidth)
    codes, audio, _ = _stream(model, x, [333], bandwidth)
    assert codes.shape[2] == model.config.num_quantizers_for_bandwidth(bandwidth)
    assert torch.equal(codes, ref_codes) and (audio - ref_audio).abs().max() < 1e-5
    pieces = []
    with model.streaming() as stream:
        for start, size in ((0, 1), (1, 3), (4, 0), (4, 2), (6, 10)):
            pieces.append(model.decode(ref_codes[..., start: start + size]).audio_values)
    pieces.append(stream.flushed.audio_values)
    assert (torch.cat(pieces, dim=-1) - ref_audio).abs().max() < 1e-5


def test_signals_shorter_than_the_padding(noise):
    model = _model("encodec_24khz")
    for length in (1, 2, 6, 8):
        x = noise(1, 1, length)
        codes, audio, _ = _stream(model, x, [1])
        ref_codes, ref_audio = _offline(model, x)
        assert torch.equal(codes, ref_codes) and (audio - ref_audio).abs().max() < 1e-5


def test_streaming_needs_a_causal_codec():
    for preset in ("dac_16khz", "encodec_48khz"):
        model = MusicCodecModel(tiny_codec_config(preset)).eval()
        with pytest.raises(ValueError, match="streaming is not supported"):
            with model.streaming():
                pass
    model = _model("encodec_24khz")
    with pytest.raises(RuntimeError, match="only meaningful inside"):
        model.flush()
