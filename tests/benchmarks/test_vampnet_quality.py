"""benchmarks/vampnet_quality.py end to end: the tiny random VampNetPipeline saved to a folder, a tiny
random CLAP and a render folder of synthesised arpeggios with its manifest.jsonl."""

import json

import numpy as np
import pytest
import soundfile as sf

from hf_musiccodec.metrics import mel_distance
from hf_musiccodec.testing.tiny import tiny_vampnet_pipeline
from tests.benchmarks.common import one_line_error, save_tiny_clap
from tests.benchmarks.load import benchmark_fixture
from tests.pipelines.test_pipeline_utils import arpeggio

SR = 24_000
SECONDS = 1.5
# (split, seconds, tempo, key): the 0.5 s validation file is too short for a 1.5 s clip; 2 of the 3 others are drawn.
FILES = [("validation", 2.0, 120.0, "C major"), ("validation", 2.0, 90.0, "A minor"), ("validation", 0.5, 100.0, "G major"),
         ("validation", 2.0, 140.0, "D minor"), ("train", 2.0, 110.0, "F major")]


vq = benchmark_fixture("vampnet_quality")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(render folder, pipeline folder, CLAP folder)."""
    root = tmp_path_factory.mktemp("vq")
    (root / "data" / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    with open(root / "data" / "manifest.jsonl", "w") as f:
        for i, (split, seconds, tempo, key) in enumerate(FILES):
            sf.write(root / "data" / "audio" / f"clip{i}.wav",
                     arpeggio(tempo, key, seconds, SR, 0.005 * rng.standard_normal(int(seconds * SR))), SR)
            row = {"path": f"audio/clip{i}.wav", "caption": f"an arpeggio in {key}", "split": split, "duration": seconds}
            if i == 0:  # no duration: the benchmark reads the file's header
                del row["duration"]
            f.write(json.dumps(row) + "\n")
    tiny_vampnet_pipeline(with_clap=False).save_pretrained(root / "vampnet")
    save_tiny_clap(root / "clap", 16_000)
    return root / "data", root / "vampnet", root / "clap"


def _argv(inputs, *extra):
    data, pipeline, clap = inputs
    return ["--pipeline", str(pipeline), "--clap", str(clap), "--data", str(data), "--num-clips", "2",
            "--seconds", str(SECONDS), "--threads", "1", "--device", "cpu", *extra]


def test_tables_and_json(vq, inputs, tmp_path, capsys):
    out_json = tmp_path / "out.json"
    assert vq.main(_argv(inputs, "--steps", "1", "2", "--recipe-steps", "2", "--json", str(out_json))) == 0
    out = capsys.readouterr().out
    for title in ("Passes (periodic-16", "Recipes at 2 passes", "Compression continuum"):
        assert title in out
    assert "FAD reference set: the 2 held-out input clips themselves" in out
    assert "| row | passes | n | FAD (clap) | FAD (mel-stats) | s/clip |" in out
    assert "- kept tokens equal %: " in out and "- recon, same frames: " in out

    result = json.loads(out_json.read_text())
    # seeded order clip2 (too short: skipped), clip0 (no duration in the manifest), clip1; clip4 is not held out
    assert [c["path"].rsplit("/", 1)[-1] for c in result["clips"]] == ["clip0.wav", "clip1.wav"]
    rows = {r["name"]: r for r in result["recipe_rows"]}
    assert list(rows) == list(vq.RECIPES) and list(result["recipes"]) == list(vq.RECIPES)
    for name, r in rows.items():
        assert r["n"] == 2 and r["steps"] == 2, name
        for key in ("bps", "mel", "fad_clap", "fad_mel", "s_per_clip", "kept_frames"):
            assert np.isfinite(r[key]) and r[key] >= 0, (name, key)
        # every kept token is the input's, wherever something is kept
        assert r["kept_equal"] == (100.0 if r["kept_tokens"] else None), name

    # bps: the reconstruction keeps every coarse token (2 codebooks of 16 entries at 75 Hz), unconditional none
    recon, uncond = rows["reconstruction"], rows["unconditional"]
    assert recon["bps"] == pytest.approx(2 * 4 * 75) and recon["bps"] == max(r["bps"] for r in rows.values())
    assert uncond["bps"] == 0 and uncond["kept_tokens"] == 0 and uncond["kept_frames"] == 0
    assert uncond["kept_mel"] is None and uncond["kept_mel_reconstruction"] is None
    assert rows["periodic-8"]["bps"] > rows["periodic-16"]["bps"] > rows["periodic-32"]["bps"] > 0
    assert rows["lowest-codebook"]["bps"] == pytest.approx(recon["bps"] / 2)
    assert rows["lowest-codebook"]["kept_frames"] == 0 and rows["lowest-codebook"]["kept_mel"] is None
    assert rows["continuation"]["kept_frames"] == pytest.approx(50, abs=2)

    # kept-region closeness: every frame of the reconstruction is kept, so it is its full mel distance
    assert recon["kept_frames"] == 100
    assert recon["kept_mel"] == pytest.approx(recon["mel"], rel=1e-5) == recon["kept_mel_reconstruction"]
    for name in ("inpainting", "continuation", "periodic-8", "beat"):
        assert rows[name]["kept_mel"] > 0 and rows[name]["kept_mel_reconstruction"] > 0, name

    # the continuum is the recipe rows by bps, highest first
    assert sorted(result["continuum"]) == sorted(rows) and result["continuum"][0] == "reconstruction"
    assert [rows[n]["bps"] for n in result["continuum"]] == sorted((r["bps"] for r in rows.values()), reverse=True)

    # passes: periodic-16 at 1 and 2 passes; 2 passes is the recipe row itself (same seeds, measured once)
    assert [p["steps"] for p in result["passes"]] == [1, 2]
    assert all(p["name"] == "periodic-16" and p["n"] == 2 for p in result["passes"])
    assert result["passes"][1] == rows["periodic-16"]
    assert set(result["columns"]) >= {"fad_clap", "fad_mel", "kept_mel", "kept_equal", "bps", "s_per_clip"}


def test_kept_mel_distance_is_mel_distance_on_the_kept_frames(vq):
    rng = np.random.default_rng(0)
    ref, est = rng.standard_normal((2, 1, SR)).astype(np.float32) * 0.1
    every = np.ones(75, dtype=bool)
    assert vq.kept_mel_distance(ref, est, SR, every, 75.0) == pytest.approx(mel_distance(ref, est, SR), rel=1e-5)
    assert vq.kept_mel_distance(ref, est, SR, ~every, 75.0) is None
    # est equal to ref on the first half: distance there is far below the distance on the second half
    half = est.copy()
    half[:, : SR // 2] = ref[:, : SR // 2]
    first = np.arange(75) < 30
    assert vq.kept_mel_distance(ref, half, SR, first, 75.0) < 0.2 * vq.kept_mel_distance(ref, half, SR, ~first, 75.0)


def _error(vq, capsys, argv) -> str:
    return one_line_error(vq, "vampnet_quality", capsys, argv)


def test_bad_inputs_are_one_line(vq, inputs, tmp_path, capsys):
    data, pipeline, clap = inputs
    assert "--data" in _error(vq, capsys, _argv(inputs, "--data", str(tmp_path / "none")))
    assert "--pipeline" in _error(vq, capsys, _argv(inputs, "--pipeline", str(tmp_path / "none")))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model_index.json").write_text('{"_class_name": "MusicGenPipeline"}')
    assert "not a VampNetPipeline" in _error(vq, capsys, _argv(inputs, "--pipeline", str(tmp_path / "other")))
    assert "--clap" in _error(vq, capsys, _argv(inputs, "--clap", str(tmp_path / "none")))
    assert "--num-clips must be >= 2" in _error(vq, capsys, _argv(inputs, "--num-clips", "1"))
    assert "--seconds" in _error(vq, capsys, _argv(inputs, "--seconds", "0"))
    assert "--seconds" in _error(vq, capsys, _argv(inputs, "--seconds", "nan"))
    assert "--steps" in _error(vq, capsys, _argv(inputs, "--steps", "0"))
    assert "unknown recipe 'nope'" in _error(vq, capsys, _argv(inputs, "--recipes", "periodic-8", "nope"))
    assert "unknown recipe" in _error(vq, capsys, _argv(inputs, "--passes-recipe", "nope"))
    assert "no rows with split 'test'" in _error(vq, capsys, _argv(inputs, "--split", "test"))
    assert "FAD needs at least 2" in _error(vq, capsys, _argv(inputs, "--seconds", "5"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.jsonl").write_text(json.dumps({"path": "gone.wav", "split": "validation"}) + "\n")
    assert "gone.wav" in _error(vq, capsys, _argv(inputs, "--data", str(broken)))
