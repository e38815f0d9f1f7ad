import os
import subprocess
import time
from pathlib import Path

import pytest
import torch

from hf_musiccodec.audio.io import load_audio
from hf_musiccodec.codecs import MusicCodecModel
from hf_musiccodec.data import latent_cache as lc
from hf_musiccodec.data.manifest import read_manifest_records, write_manifest
from hf_musiccodec.testing.distributed import accelerate_launch_command
from hf_musiccodec.testing.tiny import tiny_codec_config

REPO = Path(__file__).resolve().parents[2]
SECONDS = [1.0, 1.0, 0.6, 1.0, 0.45]


@pytest.fixture
def codec():
    torch.manual_seed(0)
    return MusicCodecModel(tiny_codec_config("encodec_24khz", kmeans_init=False)).eval()


@pytest.fixture
def rows(tmp_path, make_audio):
    out = []
    for i, s in enumerate(SECONDS):
        path = make_audio(tmp_path / "audio" / f"clip{i}.wav", seconds=s, sr=24000, freq=200 + 90 * i, kind="sine")
        out.append({"path": str(path), "duration": s, "caption": f"clip {i}", "split": "train", "tempo_bpm": 90 + i})
    return out


def shards(cache: Path) -> dict:
    from safetensors.torch import load_file

    return {p.name: load_file(str(p)) for p in sorted((cache / "shards").glob("*.safetensors"))}


def assert_same_cache(a: Path, b: Path) -> None:
    sa, sb = shards(a), shards(b)
    assert sa.keys() == sb.keys()
    for name in sa:
        for k in sa[name]:
            torch.testing.assert_close(sa[name][k], sb[name][k], rtol=1e-5, atol=1e-6)
    assert lc.read_index(a) == lc.read_index(b)


def test_round_trip_equals_direct_encoding(codec, rows, tmp_path):
    index = lc.build_latent_cache(codec, rows, tmp_path / "cache", shard_size=2, batch_size=4, progress=False)
    assert index["num_items"] == 5 and index["num_shards"] == 3 and index["has_codes"] and index["has_latents"]
    ds = lc.LatentCacheDataset(tmp_path / "cache", model=codec)
    assert len(ds) == 5
    for i, row in enumerate(rows):
        item = ds[i]
        audio, _ = load_audio(row["path"], sampling_rate=24000)
        x = torch.from_numpy(audio)[None]
        expected = codec.encode(x).audio_codes[0, 0]
        assert torch.equal(item["codes"], expected)
        with torch.no_grad():
            latents = codec.encoder(codec._pad_to_hop(x))[0]
        torch.testing.assert_close(item["latents"], latents, rtol=1e-5, atol=1e-5)
        assert item["codes"].shape[-1] == item["latents"].shape[-1] == round(SECONDS[i] * codec.config.frame_rate)
        assert item["caption"] == f"clip {i}" and item["tempo_bpm"] == 90 + i and item["path"] == row["path"]
    hf = ds.to_hf_dataset()
    assert torch.equal(hf[2]["codes"], ds[2]["codes"]) and hf[2]["caption"] == "clip 2"
    batch = lc.collate_latents([ds[1], ds[2]], pad_code=16)
    assert batch["codes"].shape == (2, 4, 75) and batch["latents"].shape == (2, 8, 75)
    assert batch["mask"].sum(-1).tolist() == [75, 45] and (batch["codes"][1, :, 45:] == 16).all()
    assert batch["caption"] == ["clip 1", "clip 2"]


def test_segments_and_codes_only(codec, rows, tmp_path):
    index = lc.build_latent_cache(
        codec, rows, tmp_path / "c", segment_seconds=0.5, store_latents=False, shard_size=4, progress=False
    )
    ds = lc.LatentCacheDataset(tmp_path / "c")
    # 1.0 s -> two windows; 0.6 s -> one (the 0.1 s left is under half a window); 0.45 s -> one
    windows = [(Path(it["path"]).name, it["offset"], it["seconds"]) for it in ds.items]
    assert len(windows) == 8 and windows[4:] == [("clip2.wav", 0.0, 0.5), ("clip3.wav", 0.0, 0.5),
                                                 ("clip3.wav", 0.5, 0.5), ("clip4.wav", 0.0, 0.45)]  # fmt: skip
    assert not index["has_latents"] and "latents" not in ds[0] and ds[0]["codes"].shape[-1] == 38


def test_resume_after_interruption_gives_the_same_cache(codec, rows, tmp_path, monkeypatch):
    lc.build_latent_cache(codec, rows, tmp_path / "full", shard_size=2, progress=False)
    assert lc.build_latent_cache(codec, rows, tmp_path / "part", shard_size=2, max_shards=1, progress=False) is None
    assert lc.read_index(tmp_path / "part") is None and len(shards(tmp_path / "part")) == 1
    first = (tmp_path / "part" / "shards" / "shard-00000.safetensors").stat().st_mtime_ns
    calls = []
    encode = lc._encode_shard
    monkeypatch.setattr(lc, "_encode_shard", lambda m, items, *a: calls.append(len(items)) or encode(m, items, *a))
    lc.build_latent_cache(codec, rows, tmp_path / "part", shard_size=2, progress=False)
    assert calls == [2, 1]  # only the two missing shards
    assert (tmp_path / "part" / "shards" / "shard-00000.safetensors").stat().st_mtime_ns == first
    assert_same_cache(tmp_path / "full", tmp_path / "part")
    lc.build_latent_cache(codec, rows, tmp_path / "part", shard_size=2, progress=False)
    assert calls == [2, 1]  # complete: nothing redone


def test_stale_cache_is_rebuilt_never_reused(codec, rows, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    old = lc.build_latent_cache(codec, rows, cache, shard_size=2, progress=False)
    with torch.no_grad():
        next(codec.encoder.parameters()).add_(0.01)  # other weights, same config
    with pytest.raises(ValueError, match="rebuild"):
        lc.LatentCacheDataset(cache, model=codec)
    calls = []
    encode = lc._encode_shard
    monkeypatch.setattr(lc, "_encode_shard", lambda *a: calls.append(1) or encode(*a))
    new = lc.build_latent_cache(codec, rows, cache, shard_size=2, progress=False)
    assert len(calls) == 3 and new["key"] != old["key"] and new["fingerprint"] != old["fingerprint"]
    lc.LatentCacheDataset(cache, model=codec)  # valid again
    # Other settings (bandwidth / number of codebooks) or other items: another key, rebuilt too.
    assert lc.build_latent_cache(codec, rows, cache, shard_size=2, bandwidth=0.6, progress=False)["key"] != new["key"]
    assert len(calls) == 6
    assert lc.build_latent_cache(codec, rows[:4], cache, shard_size=2, progress=False)["num_shards"] == 2
    assert len(shards(cache)) == 2  # the stale third shard is gone


def test_two_processes_make_the_same_cache(codec, rows, tmp_path):
    codec.save_pretrained(tmp_path / "codec")
    codec = MusicCodecModel.from_pretrained(tmp_path / "codec").eval()
    write_manifest(rows, tmp_path / "manifest.jsonl")
    lc.build_latent_cache(codec, read_manifest_records(tmp_path / "manifest.jsonl"), tmp_path / "one", shard_size=2,
                          progress=False)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    start = time.time()
    result = subprocess.run(
        accelerate_launch_command([str(REPO / "scripts" / "cache_latents.py"), "--codec", str(tmp_path / "codec"),
                                   "--source", f"manifest:{tmp_path / 'manifest.jsonl'}", "--split", "all",
                                   "--out", str(tmp_path / "two"), "--shard-size", "2", "--no-progress"]),
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert time.time() - start < 40
    assert result.stdout.count("5 items in 3 shards") == 1 and "(2 processes)" in result.stdout  # really distributed
    assert_same_cache(tmp_path / "one", tmp_path / "two")


def test_loudness_normalised_cache_levels_quiet_items_and_has_its_own_key(codec, rows, tmp_path, make_audio):
    quiet = make_audio(tmp_path / "quiet.wav", seconds=1.0, sr=24000, freq=330, amp=0.003, kind="sine")
    loud = make_audio(tmp_path / "loud.wav", seconds=1.0, sr=24000, freq=330, amp=0.3, kind="sine")
    items = [{"path": str(p), "duration": 1.0, "caption": p.stem} for p in (quiet, loud)]
    plain = lc.build_latent_cache(codec, items, tmp_path / "plain", shard_size=2, progress=False)
    levelled = lc.build_latent_cache(codec, items, tmp_path / "levelled", shard_size=2, normalize="loudness",
                                     progress=False)  # fmt: skip
    assert levelled["key"] != plain["key"] and levelled["settings"]["normalize"] == "loudness"
    assert "normalize" not in plain["settings"]  # caches made before the option keep their key
    latents = [lc.LatentCacheDataset(tmp_path / d)[i]["latents"] for d in ("plain", "levelled") for i in (0, 1)]
    assert not torch.allclose(latents[0], latents[1], atol=1e-3)  # unlevelled: a 40 dB quieter copy
    assert torch.allclose(latents[2], latents[3], atol=1e-4)  # levelled: the same sine at any level
