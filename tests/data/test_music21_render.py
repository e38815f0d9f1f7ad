import json

import numpy as np
import pytest
import soundfile as sf

from hf_musiccodec.data import music21_render as mr

music21 = pytest.importorskip("music21")
needs_fluidsynth = pytest.mark.skipif(not mr.fluidsynth_available(), reason="needs fluidsynth + FluidR3_GM")


def test_plans_are_seeded_and_spread_over_the_ranges():
    assert mr.plan_renders("bach/bwv66.6", 4, seed=0) == mr.plan_renders("bach/bwv66.6", 4, seed=0)
    plans = [p for i in range(200) for p in mr.plan_renders(f"p{i}", 4, seed=0, num_parts=1 + i % 4)]
    tempi = [p["tempo_bpm"] for p in plans]
    assert 50 <= min(tempi) < 55 and 195 < max(tempi) <= 200
    assert all(sum(lo <= t < lo + 37.5 for t in tempi) > 150 for lo in (50, 87.5, 125, 162.5))  # even spread
    assert {p["tonic_pitch_class"] for p in plans} == set(range(12))
    one = mr.plan_renders("x", 4, seed=0)
    assert len({p["tonic_pitch_class"] for p in one}) == 4 and len({p["instruments"][0] for p in one}) == 4
    assert len({name for p in plans for name in p["instruments"]}) >= 20
    assert {p["dynamics"] for p in plans} == set(mr.DYNAMICS)
    assert {p["dynamic_shape"] for p in plans} == set(mr.DYNAMIC_SHAPES)
    assert "mixed ensemble" in {p["ensemble"] for p in plans}
    assert all(-6 <= mr._transpose_to(_Key(pc), t) <= 5 for pc in range(12) for t in range(12))
    assert all((pc + mr._transpose_to(_Key(pc), t)) % 12 == t for pc in range(12) for t in range(12))


class _Key:
    def __init__(self, pc):
        self.tonic = type("Tonic", (), {"pitchClass": pc})()


def test_corpus_listing_expands_abc_tunes():
    pieces = mr.list_corpus_pieces(["oneills1850"])
    assert "oneills1850/0001-0050#1" in pieces and len(pieces) > 1000
    chosen = mr.sample_pieces(6, seed=1, collections=["bach", "oneills1850"])
    assert len(chosen) == 6 and sum(p.startswith("bach/") for p in chosen) == 3
    assert chosen == mr.sample_pieces(6, seed=1, collections=["bach", "oneills1850"])


def test_caption_uses_only_metadata():
    r = mr.RenderedPiece(
        path="x.flac",
        piece="bach/bwv66.6",
        title="BWV 66.6",
        composer="Johann Sebastian Bach",
        collection="Bach chorales",
        instruments=["violin", "viola", "viola", "cello"],
        gm_programs=[40, 41, 41, 42],
        tempo_bpm=96.4,
        original_tempo_bpm=96,
        transpose_semitones=0,
        key="F# minor",
        meter="4/4",
        duration=10.0,
        sampling_rate=24000,
        channels=1,
        num_parts=4,
        kind="chorale",
    )
    assert mr.make_caption(r) == (
        "BWV 66.6, a chorale by Johann Sebastian Bach (Bach chorales), arranged for violin, viola and cello, "
        "in F# minor, 4/4 time, 96 BPM."
    )


@needs_fluidsynth
def test_render_piece_and_manifest(tmp_path):
    # A short excerpt keeps this fast; the transposition and tempo must show up in the metadata.
    r = mr.render_piece(
        "bach/bwv66.6",
        tmp_path / "c.flac",
        instruments=["acoustic grand piano"],
        tempo_bpm=120,
        transpose=2,
        max_seconds=2.0,
        sampling_rate=16000,
    )
    info = sf.info(str(tmp_path / "c.flac"))
    assert (info.samplerate, info.channels) == (16000, 1) and abs(info.duration - 2.0) < 1e-3
    assert (r.key, r.meter, r.tempo_bpm, r.transpose_semitones) == ("G# minor", "4/4", 120.0, 2)
    assert r.gm_programs == [0, 0, 0, 0] and r.composer == "Johann Sebastian Bach"
    audio, _ = sf.read(str(tmp_path / "c.flac"))
    assert 0.85 < abs(audio).max() <= 0.9 and abs(audio[-10:]).max() < 0.01  # peak-normalised, faded out

    records = mr.render_many(
        ["essenFolksong/altdeu10#3"], tmp_path / "set", renders_per_piece=2, max_seconds=1.5, min_seconds=0.5,
        sampling_rate=16000, progress=False,
    )
    lines = [json.loads(x) for x in (tmp_path / "set" / "manifest.jsonl").read_text().splitlines()]
    assert lines == records and lines[0]["path"].startswith("audio/") and len(lines) == 2
    line = lines[0]
    assert line["title"] == "Herzog Ernst" and line["num_parts"] == 1 and line["caption"].startswith("Herzog Ernst")
    assert (tmp_path / "set" / line["path"]).exists() and line["render_id"] == "essenFolksong/altdeu10#3@0"
    assert lines[0]["key"] != lines[1]["key"] and lines[0]["instruments"] != lines[1]["instruments"]


@needs_fluidsynth
def test_render_many_resumes(tmp_path, monkeypatch):
    kw = dict(renders_per_piece=2, max_seconds=1.0, min_seconds=0.5, sampling_rate=16000, progress=False)
    monkeypatch.chdir(tmp_path)  # a relative out_dir: manifest paths must still be relative to it
    first = mr.render_many(["bach/bwv66.6"], "out", **kw)
    assert [r["path"] for r in first] == ["audio/bach__bwv66.6@0.flac", "audio/bach__bwv66.6@1.flac"]
    manifest = tmp_path / "out" / "manifest.jsonl"
    # A crash while appending leaves a torn last line: it is dropped, and the clip rendered again.
    text = manifest.read_text().splitlines(keepends=True)
    manifest.write_text(text[0] + text[1][:40])
    calls = []
    render = mr.render_piece
    monkeypatch.setattr(mr, "render_piece", lambda *a, **k: calls.append(k["render_id"]) or render(*a, **k))
    again = mr.render_many(["bach/bwv66.6"], "out", **kw)
    assert calls == ["bach/bwv66.6@1"] and again == first
    assert mr.render_many(["bach/bwv66.6"], "out", **kw) == first and len(calls) == 1


@needs_fluidsynth
def test_render_many_in_two_processes_writes_what_one_does(tmp_path):
    kw = dict(renders_per_piece=2, max_seconds=1.0, min_seconds=0.5, sampling_rate=16000, progress=False)
    pieces = ["bach/bwv66.6", "essenFolksong/altdeu10#3", "no/such-piece"]
    serial = mr.render_many(pieces, tmp_path / "one", **kw)
    parallel = mr.render_many(pieces, tmp_path / "two", workers=2, **kw)
    assert [r["render_id"] for r in parallel] == [r["render_id"] for r in serial] and len(serial) == 4
    assert [{k: v for k, v in r.items() if k != "loudness_lufs"} for r in parallel] == \
        [{k: v for k, v in r.items() if k != "loudness_lufs"} for r in serial]  # fmt: skip
    failed = (tmp_path / "two" / "failed.jsonl").read_text()
    assert "no/such-piece@0" in failed and "no/such-piece@1" in failed


@needs_fluidsynth
def test_render_midi_stops_after_what_is_needed(tmp_path):
    # fluidsynth never finishes some MIDI files: rendering stops once the clip is long enough.
    from music21 import note, stream

    s = stream.Stream([note.Note("C4", quarterLength=40)])  # 20 s at 120 BPM
    s.write("midi", fp=str(tmp_path / "long.mid"))
    audio = mr.render_midi(tmp_path / "long.mid", sampling_rate=8000, stop_after_seconds=1.0)
    assert audio.shape == (2, 8000) and audio.dtype == np.float32 and np.abs(audio).max() > 0.01
    full = mr.render_midi(tmp_path / "long.mid", sampling_rate=8000)
    assert 20 * 8000 <= full.shape[1] < 30 * 8000


def test_dynamics_velocities():
    score = mr.parse_piece("bach/bwv66.6")
    mr._set_velocities(score, 50, 40, clip_quarters=20)
    from music21 import midi

    mf = midi.translate.streamToMidiFile(score)
    velocities = [e.velocity for t in mf.tracks for e in t.events if e.isNoteOn() and e.velocity]
    assert velocities[0] == 30 and max(velocities) == 70  # ramp from -20 to +20 over the clip, then held
