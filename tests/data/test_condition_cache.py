"""Condition cache: melody tokens per codec frame and windowed CLAP embeddings of a latent cache."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_musiccodec.audio.io import load_audio
from hf_musiccodec.codecs import MusicCodecModel
from hf_musiccodec.conditioning import MusicClapFeatureExtractor, MusicClapModel
from hf_musiccodec.data import condition_cache as cc
from hf_musiccodec.data import latent_cache as lc
from hf_musiccodec.testing.tiny import tiny_clap_config, tiny_codec_config

REPO = Path(__file__).resolve().parents[2]
SR = 24000
SECONDS = [1.0, 2.2, 0.6]


def tone(freq, seconds, sr=SR, amp=0.3):
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def test_melody_tokens_of_a_sine_melody():
    audio = np.concatenate([tone(440.0, 0.5), tone(523.25, 0.5), np.zeros(SR // 2, np.float32)])
    tokens = cc.melody_tokens(audio, SR, 75.0, 120)  # 112.5 frames of audio, then past the end
    assert tokens.shape == (120,) and tokens.dtype == np.uint8
    # A4 -> 9, C5 -> 0 (away from the note change, which the 85 ms chroma window smears)
    assert (tokens[4:33] == 9).all() and (tokens[42:71] == 0).all()
    assert (tokens[75:] == cc.MELODY_SILENT).all()  # silence starts exactly at frame 75
    # stereo is the mix; a tone at -63 dBFS RMS is silent
    assert np.array_equal(cc.melody_tokens(np.stack([audio, audio]), SR, 75.0, 120), tokens)
    assert (cc.melody_tokens(tone(440.0, 0.5, amp=1e-3), SR, 75.0, 37) == cc.MELODY_SILENT).all()
    assert cc.melody_tokens(audio, SR, 75.0, 0).shape == (0,)


@pytest.fixture(scope="module")
def clap():
    torch.manual_seed(0)
    config = tiny_clap_config()
    return MusicClapModel(config).eval(), MusicClapFeatureExtractor.from_model_config(config)


@pytest.fixture
def cache(tmp_path, make_audio):
    torch.manual_seed(0)
    codec = MusicCodecModel(tiny_codec_config("encodec_24khz", kmeans_init=False)).eval()
    rows = []
    for i, s in enumerate(SECONDS):
        path = make_audio(tmp_path / "audio" / f"clip{i}.wav", seconds=s, sr=SR, freq=300 + 150 * i, kind="sine")
        rows.append({"path": str(path), "duration": s, "caption": f"clip {i}"})
    lc.build_latent_cache(codec, rows, tmp_path / "cache", shard_size=2, progress=False)
    return tmp_path / "cache"


def test_build_read_rerun_and_stale(cache, clap):
    model, fe = clap
    meta = cc.build_condition_cache(cache, model, fe, clap_hop_seconds=0.5, progress=False)
    assert meta["key"] == lc.read_index(cache)["key"] and meta["clap_seconds"] == "1.0"
    assert meta["clap_fingerprint"] == cc.clap_fingerprint(model) != "none"
    reader = cc.ConditionCache(cache)
    ds = lc.LatentCacheDataset(cache)
    assert len(reader) == 3 and reader.has_clap and reader.clap_dim == 16
    windows = [2, 5, 2]  # starts 0, 0.5, ... while start < seconds
    assert reader._clap_offsets == [0, 2, 7, 9] and reader._clap.dtype == torch.float16
    for i, item in enumerate(ds):
        frames = item["codes"].shape[-1]
        assert reader.num_frames(i) == frames
        audio = load_audio(item["path"], sampling_rate=SR, channels=1)[0][0]
        expected = torch.from_numpy(cc.melody_tokens(audio, SR, 75.0, frames)).long()
        assert torch.equal(reader.melody(i, 0, frames), expected)
        assert torch.equal(reader.melody(i, 10, 20), expected[10:30])
        tail = reader.melody(i, frames - 5, 12)  # past the end: silent
        assert torch.equal(tail[:5], expected[-5:]) and (tail[5:] == cc.MELODY_SILENT).all()
        for k in range(windows[i]):  # each window = a direct get_audio_features call on it
            window = audio[int(round(k * 0.5 * SR)) : int(round((k * 0.5 + 1.0) * SR))]
            with torch.no_grad():
                direct = model.get_audio_features(**fe([window], sampling_rate=SR)).pooler_output[0]
            torch.testing.assert_close(reader.clap(i, k * 0.5), direct, rtol=0, atol=2e-3)
        assert torch.equal(reader.clap(i, 0.2), reader.clap(i, 0.0))  # nearest window start
        assert torch.equal(reader.clap(i, 99.0), reader.clap(i, (windows[i] - 1) * 0.5))  # clamped
    assert torch.allclose(reader._clap.float().norm(dim=-1), torch.ones(9), atol=1e-2)
    first = reader.melody(0, 0, reader.num_frames(0))
    assert (first == 2).double().mean() > 0.8  # 300 Hz is nearest D4 (pitch class 2)

    path = cache / cc.CONDITIONS_NAME
    mtime = path.stat().st_mtime_ns
    assert cc.build_condition_cache(cache, model, fe, clap_hop_seconds=0.5, progress=False) == meta
    assert path.stat().st_mtime_ns == mtime  # no work
    cc.build_condition_cache(cache, progress=False)  # other settings (no CLAP): rebuilt
    melody_only = cc.ConditionCache(cache)
    assert not melody_only.has_clap and melody_only.clap_dim is None
    assert torch.equal(melody_only._melody, reader._melody)
    with pytest.raises(ValueError, match="no CLAP"):
        melody_only.clap(0, 0.0)

    index = json.loads((cache / "index.json").read_text())
    (cache / "index.json").write_text(json.dumps({**index, "key": "0" * 32}))
    with pytest.raises(ValueError, match="stale"):
        cc.ConditionCache(cache)
    path.unlink()
    with pytest.raises(ValueError, match="missing"):
        cc.ConditionCache(cache)


def test_script_melody_only_and_bad_input(cache, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("cache_conditions_script", REPO / "scripts" / "cache_conditions.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--cache", str(tmp_path / "nowhere"), "--no-progress"]) == 2
    assert script.main(["--cache", str(cache), "--hop", "0"]) == 2
    assert script.main(["--cache", str(cache), "--clap", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("error:") == 3
    assert script.main(["--cache", str(cache), "--no-progress"]) == 0
    assert "3 items" in capsys.readouterr().out and not cc.ConditionCache(cache).has_clap
