"""benchmarks/codec_quality.py: the quality loader and measurement on one short synthetic excerpt."""

import json

import numpy as np
import pytest
import soundfile as sf
from tests.benchmarks.load import benchmark_fixture

SR = 24_000


cq = benchmark_fixture("codec_quality")


def _music(seconds, sr=SR, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(0.1 / (k + 1) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for k, f in enumerate((220, 330, 440, 660)))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2) + 0.02 * rng.standard_normal(t.size)
    return x.astype(np.float32)


@pytest.fixture
def manifest(tmp_path):
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "val.wav", _music(2.0), SR)
    sf.write(tmp_path / "audio" / "train.wav", _music(2.0, seed=1), SR)
    records = [{"path": "audio/val.wav", "duration": 2.0, "split": "validation", "title": "Val"},
               {"path": "audio/train.wav", "duration": 2.0, "split": "train"}]
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_excerpt_positions_deterministic_and_inside(cq):
    pos = cq.excerpt_positions([30.0, 5.0, 100.0], excerpts=5, seconds=10.0)
    assert pos == cq.excerpt_positions([30.0, 5.0, 100.0], excerpts=5, seconds=10.0)
    assert len(pos) == 5 and {i for i, _ in pos} == {0, 2}  # the 5 s track is too short
    assert all(0 <= off <= [30.0, 5.0, 100.0][i] - 10.0 for i, off in pos)


def test_loader_reads_only_the_split(cq, manifest):
    ex = cq.load_quality_excerpts(manifest, excerpts=1, seconds=1.0, sampling_rate=SR)
    assert len(ex) == 1
    assert ex[0].path.endswith("val.wav") and ex[0].title == "Val"
    assert ex[0].audio.shape == (1, SR) and ex[0].offset == 0.5


def test_unrelated_anchor_comes_from_another_track(cq):
    ex = [cq.Excerpt(path=p, title=p, offset=0.0, seconds=1.0, sampling_rate=SR, audio=np.full((1, SR), k, np.float32))
          for k, p in enumerate(["a", "a", "b", "b"])]
    anchors = dict(cq.anchor_outputs(ex, SR))
    # a one-to-one shuffle, every excerpt against the other track
    assert [float(est[0, 0]) for est, _ in anchors["anchor: unrelated music"]] == [2.0, 3.0, 0.0, 1.0]


def test_missing_data_exits_2_with_fetch_command(cq, tmp_path, capsys):
    assert cq.main(["--manifest", str(tmp_path / "nope.jsonl"), "--no-opus", "--no-visqol"]) == 2
    assert "scripts/fetch_debian_music.py" in capsys.readouterr().err


def test_measure_tiny_codec_and_opus(cq, manifest):
    from hf_musiccodec.codecs import MusicCodecModel
    from hf_musiccodec.testing.tiny import tiny_codec_config

    model = MusicCodecModel(tiny_codec_config("encodec_24khz", kmeans_init=False)).eval()
    ex = cq.load_quality_excerpts(manifest, excerpts=1, seconds=1.0, sampling_rate=SR)
    has_opus = cq.opus_available()
    bw = float(model.config.target_bandwidths[-1])
    result = cq.measure_quality(model, ex, [bw], opus=has_opus, opus_bitrates=[6.0])

    rows = {r["system"]: r for r in result["rows"]}
    # one excerpt: the low-pass anchor, but no unrelated-music anchor
    assert set(rows) == ({"codec", "opus", "anchor"} if has_opus else {"codec", "anchor"})
    assert rows["anchor"]["label"] == "anchor: low-pass 3.5 kHz" and rows["anchor"]["lag_samples"] == 0
    metrics = {"mel", "stft", "si_sdr", "loudness_db"} | ({"visqol"} if cq.visqol_available() else set())
    assert set(result["columns"]) == {"file_kbps", "payload_kbps"} | metrics
    assert rows["anchor"]["per_excerpt"][0]["si_sdr"] > 10  # the tones are below 3.5 kHz
    assert abs(rows["anchor"]["per_excerpt"][0]["loudness_db"]) < 1  # a low-pass keeps the tones' level
    for row in rows.values():
        assert len(row["per_excerpt"]) == 1 and row["output_variation"] is None  # one excerpt
        for key in ({"file_kbps", "payload_kbps"} if row["system"] != "anchor" else set()) | metrics:
            assert np.isfinite(row["per_excerpt"][0][key])
            assert set(row["summary"][key]) == {"median", "mean", "min", "max"}
    codec = rows["codec"]["per_excerpt"][0]
    # real bitrate = the .hfmc's bytes: the codes at the nominal rate plus the header
    assert codec["payload_kbps"] == pytest.approx(bw, rel=0.05)
    assert codec["file_kbps"] > codec["payload_kbps"]
    assert codec["file_bytes"] > codec["payload_bytes"] > 0
    if has_opus:
        opus = rows["opus"]["per_excerpt"][0]
        assert rows["opus"]["requested_kbps"] == 6.0
        assert 0 < opus["payload_kbps"] < opus["file_kbps"] < 20
        assert len(opus["packets_sha256"]) == 16
        assert opus["si_sdr"] > codec["si_sdr"]  # an untrained codec does worse than Opus
    text, md = cq.text_table(result), cq.markdown_table(result)
    assert "median" in text and "mean" in text
    assert sum(line.startswith("| ") for line in md.splitlines()) == len(result["rows"]) + 1  # header + rows
    assert ("ViSQOL" in md) == ("visqol" in metrics)
    json.dumps(result)  # JSON-ready


def test_output_variation_flags_an_output_that_ignores_its_input(cq):
    rng = np.random.default_rng(0)
    follows = [rng.standard_normal((1, 1000)).astype(np.float32) for _ in range(3)]
    assert cq.output_variation(follows) == pytest.approx(np.sqrt(2), rel=0.1)
    assert cq.output_variation([follows[0]] * 3) == 0.0
    assert cq.output_variation(follows[:1]) is None


def test_loudness_change_counts_silence_as_the_floor(cq):
    from hf_musiccodec.audio import measure_loudness

    rng = np.random.default_rng(0)
    ref = 0.1 * rng.standard_normal((1, SR)).astype(np.float32)
    assert cq.loudness_change(ref, ref / 10, SR) == pytest.approx(-20.0, abs=0.1)
    silent = cq.loudness_change(ref, np.zeros_like(ref), SR)
    assert silent == pytest.approx(-70.0 - measure_loudness(ref, SR), abs=0.01)
