import json

import pytest
import soundfile as sf

from hf_musiccodec.data import music21_render as mr

music21 = pytest.importorskip("music21")
needs_fluidsynth = pytest.mark.skipif(not mr.fluidsynth_available(), reason="needs fluidsynth + FluidR3_GM")


def test_plan_is_seeded_per_piece():
    assert mr.plan_render("bach/bwv66.6", seed=0) == mr.plan_render("bach/bwv66.6", seed=0)
    plans = {str(mr.plan_render(f"p{i}", seed=0)) for i in range(10)}
    assert len(plans) > 1
    assert all(-5 <= mr.plan_render(f"p{i}")["transpose"] <= 5 for i in range(20))


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

    records = mr.render_many(["essenFolksong/altdeu10#3"], tmp_path / "set", max_seconds=1.5, sampling_rate=16000)
    line = json.loads((tmp_path / "set" / "manifest.jsonl").read_text())
    assert line == records[0] and line["path"].startswith("audio/")
    assert line["title"] == "Herzog Ernst" and line["num_parts"] == 1 and line["caption"].startswith("Herzog Ernst")
    assert (tmp_path / "set" / line["path"]).exists()
