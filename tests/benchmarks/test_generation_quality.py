"""benchmarks/generation_quality.py end to end: a tiny random-weight CLAP, synthesised clips with
metadata, and ToneGenerator (a real generator of the convention) saved as a pipeline folder."""

import json

import datasets
import numpy as np
import pytest
import soundfile as sf

from tests.benchmarks.common import one_line_error, save_tiny_clap
from tests.benchmarks.load import benchmark_fixture
from tests.pipelines.test_pipeline_utils import ToneGenerator, arpeggio, saved

SR = 16_000
SECONDS = 3.0
# (split, tempo, key): test keys are not C major, the empty-prompt default of ToneGenerator.
CLIPS = [("train", 120.0, "C major"), ("train", 100.0, "A minor"),
         ("validation", 110.0, "G major"), ("validation", 90.0, "D minor"), ("validation", 130.0, "F major"),
         ("test", 100.0, "E minor"), ("test", 120.0, "D major"), ("test", 140.0, "Bb major")]
HEADER = ["FAD (clap)", "FAD (mel-stats)", "CLAP score", "tempo acc 4%", "tempo acc 8%", "key acc", "mode acc",
          "novelty (clap > 0.9)", "RTF"]


gq = benchmark_fixture("generation_quality")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(data folder, CLAP folder): a saved DatasetDict of synthesised clips and a tiny random CLAP."""
    root = tmp_path_factory.mktemp("gq")
    rows = {s: [] for s in ("train", "validation", "test")}
    rng = np.random.default_rng(0)
    for i, (split, tempo, key) in enumerate(CLIPS):
        path = root / f"clip{i}.wav"
        sf.write(path, arpeggio(tempo, key, SECONDS, SR, 0.005 * rng.standard_normal(int(SECONDS * SR))), SR)
        rows[split].append({"path": str(path), "caption": f"a plucked arpeggio in {key}, {tempo:g} BPM",
                            "tempo_bpm": tempo, "key": key})
    datasets.DatasetDict({s: datasets.Dataset.from_list(r) for s, r in rows.items()}).save_to_disk(root / "data")
    save_tiny_clap(root / "clap", SR)
    return root / "data", root / "clap"


def _table_rows(out: str) -> dict:
    lines = [line for line in out.splitlines() if line.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head == ["row", "n"] + HEADER
    return {cells[0]: dict(zip(head[1:], cells[1:]))
            for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}


def test_table_has_every_column_and_both_reference_rows(gq, inputs, tmp_path, monkeypatch, capsys):
    data, clap = inputs
    generator = saved(tmp_path / "tones", ToneGenerator, monkeypatch, SR)
    argv = ["--generator", str(generator), "--clap", str(clap), "--data", str(data), "--num-prompts", "3",
            "--seconds", str(SECONDS), "--threads", "1", "--json", str(tmp_path / "out.json")]
    assert gq.main(argv) == 0
    out = capsys.readouterr().out
    assert "reference set for FAD: all 3 validation clips (disjoint from test)" in out
    assert "novelty: nearest of all 2 training clips" in out
    rows = _table_rows(out)
    assert list(rows) == ["real test clips (ceiling)", "tones", "tones, empty prompts"]
    assert rows["real test clips (ceiling)"]["RTF"] == "—" and float(rows["tones"]["RTF"]) > 0
    for name, row in rows.items():
        assert row["n"] == "3"
        for column in HEADER[:-1]:
            assert np.isfinite(float(row[column])), (name, column)
    # ToneGenerator plays the prompt's key: real clips and prompted generations are the same audio
    # up to noise, and the empty prompts (C major) get no test key right.
    assert rows["tones"]["key acc"] == rows["real test clips (ceiling)"]["key acc"]
    assert float(rows["tones"]["key acc"]) > float(rows["tones, empty prompts"]["key acc"]) == 0.0
    result = json.loads((tmp_path / "out.json").read_text())
    assert [r["name"] for r in result["rows"]] == list(rows) and set(result["columns"]) >= {"fad_clap", "rtf"}


def test_state_writes_prompts_that_state_tempo_and_key(gq, inputs, tmp_path, monkeypatch, capsys):
    from hf_musiccodec.conditioning.prompt_attributes import parse_prompt_attributes

    data, clap = inputs
    generator = saved(tmp_path / "tones", ToneGenerator, monkeypatch, SR)
    argv = ["--generator", str(generator), "--clap", str(clap), "--data", str(data), "--num-prompts", "3",
            "--seconds", str(SECONDS), "--threads", "1", "--state", "tempo", "key", "--json", str(tmp_path / "o.json")]
    assert gq.main(argv) == 0
    assert "captions stating tempo and key" in capsys.readouterr().out
    result = json.loads((tmp_path / "o.json").read_text())
    assert len(result["prompt_texts"]) == 3
    for prompt in result["prompt_texts"]:
        stated = parse_prompt_attributes(prompt)
        assert (stated.bpm or stated.tempo_band) and stated.mode, prompt


def test_reference_only_prints_the_real_clips_row(gq, inputs, capsys):
    data, clap = inputs
    assert gq.main(["--reference-only", "--clap", str(clap), "--data", str(data), "--seconds", str(SECONDS),
                    "--threads", "1"]) == 0
    assert list(_table_rows(capsys.readouterr().out)) == ["real test clips (ceiling)"]


class FlatToneGenerator(ToneGenerator):
    """Breaks the convention: returns ``(samples,)`` instead of ``(batch, channels, samples)``."""

    def __call__(self, prompt, **kwargs):
        out = super().__call__(prompt, **kwargs)
        out.audios = out.audios[0, 0]
        return out


class PickyToneGenerator(ToneGenerator):
    """Refuses prompts naming D major as bad input (as a pipeline refuses an overlong prompt)."""

    def __call__(self, prompt, **kwargs):
        from hf_musiccodec.pipelines import GeneratorError

        if "D major" in prompt:
            raise GeneratorError("prompt has 65 tokens; at most 64")
        return super().__call__(prompt, **kwargs)


def test_refused_prompts_leave_their_row_out_of_every_row(gq, inputs, tmp_path, monkeypatch, capsys):
    data, clap = inputs
    generator = saved(tmp_path / "picky", PickyToneGenerator, monkeypatch, SR)
    argv = ["--generator", str(generator), "--clap", str(clap), "--data", str(data), "--num-prompts", "3",
            "--seconds", str(SECONDS), "--threads", "1", "--json", str(tmp_path / "o.json")]
    assert gq.main(argv) == 0
    out = capsys.readouterr().out
    assert "Left out of every row: 1 test rows" in out and "at most 64" in out
    assert {row["n"] for row in _table_rows(out).values()} == {"2"}  # real clips and empty prompts too
    result = json.loads((tmp_path / "o.json").read_text())
    assert len(result["prompt_texts"]) == 2 and not any("D major" in t for t in result["prompt_texts"])
    assert list(result["refused_prompts"].values()) == ["prompt has 65 tokens; at most 64"]


def _one_line_error(gq, capsys, argv) -> str:
    return one_line_error(gq, "generation_quality", capsys, argv)


def test_contract_violation_is_one_line(gq, inputs, tmp_path, monkeypatch, capsys):
    data, clap = inputs
    generator = saved(tmp_path / "flat", FlatToneGenerator, monkeypatch, SR)
    err = _one_line_error(gq, capsys, ["--generator", str(generator), "--clap", str(clap), "--data", str(data),
                                       "--num-prompts", "2", "--seconds", "1", "--threads", "1"])
    assert ".audios must be (batch=1, channels=1 or 2, samples), got shape (16000,)" in err


def test_bad_inputs_are_one_line(gq, inputs, tmp_path, capsys):
    data, clap = inputs
    assert "does not exist" in _one_line_error(gq, capsys, ["--generator", str(tmp_path / "none")])
    assert "--clap" in _one_line_error(gq, capsys, ["--reference-only", "--clap", str(tmp_path / "no"),
                                                    "--data", str(data)])
    no_test = tmp_path / "no_test"
    splits = datasets.load_from_disk(str(data))
    datasets.DatasetDict({"train": splits["train"], "validation": splits["validation"]}).save_to_disk(no_test)
    assert "has no test split" in _one_line_error(gq, capsys, ["--reference-only", "--clap", str(clap),
                                                               "--data", str(no_test)])


def test_a_token_lm_gets_the_row_of_the_real_clips_through_its_codec(gq, inputs, tmp_path, capsys):
    from hf_musiccodec.testing.tiny import tiny_text_to_music_pipeline

    data, clap = inputs
    tiny_text_to_music_pipeline(with_clap=False).save_pretrained(tmp_path / "lm")
    argv = ["--generator", str(tmp_path / "lm"), "--clap", str(clap), "--data", str(data), "--num-prompts", "2",
            "--seconds", "1.5", "--threads", "1"]
    assert gq.main(argv) == 0
    rows = _table_rows(capsys.readouterr().out)
    assert list(rows)[:2] == ["real test clips (ceiling)", "real test clips through the LM's codec"]
    assert rows["real test clips through the LM's codec"]["n"] == "2"
