"""benchmarks/controlnet_adherence.py end to end on a tiny ControlNet pipeline and synthesised
held-out clips: every row is measured (ControlNet with each control, none, and DITTO next to
ControlNet on the same clips), the table and JSON agree, and bad input is one line."""

import json

import datasets
import numpy as np
import pytest
import soundfile as sf

from hf_musiccodec.testing.tiny import tiny_music_controlnet_pipeline
from tests.benchmarks.common import one_line_error
from tests.benchmarks.load import benchmark_fixture

SR = 16_000


adherence = benchmark_fixture("controlnet_adherence")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("adherence")
    rows = []
    for i, (pitch, bpm) in enumerate([(440.0, 120), (330.0, 90), (520.0, 150)]):
        t = np.arange(int(1.5 * SR)) / SR
        pulse = (t * bpm / 60) % 1 < 0.3
        path = root / f"clip{i}.wav"
        sf.write(path, (0.3 * np.sin(2 * np.pi * pitch * t) * pulse).astype(np.float32), SR)
        rows.append({"path": str(path), "caption": f"a pulse at {bpm} BPM"})
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(root / "data")
    tiny_music_controlnet_pipeline().save_pretrained(root / "pipe")
    return root


def test_every_row_is_measured(adherence, inputs, tmp_path, capsys):
    out = tmp_path / "r.json"
    args = ["--model", str(inputs / "pipe"), "--data", str(inputs / "data"), "--num-clips", "3", "--seconds", "1.0",
            "--steps", "2", "--threads", "1", "--ditto-clips", "2", "--ditto-steps", "1", "--ditto-sampler-steps", "2",
            "--json", str(out)]
    assert adherence.main(args) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    result = json.loads(out.read_text())
    assert [r["row"] for r in result["rows"]][:5] == [label for label, _ in adherence.ROWS]
    assert [r["n"] for r in result["rows"]] == [3] * 5 + [2, 2]
    assert result["rows"][-1]["row"].startswith("DITTO") and len(table) == len(result["rows"])
    for r in result["rows"]:
        assert 0 <= r["melody_accuracy"] <= 1 and -1 <= r["dynamics_correlation"] <= 1
        assert np.isfinite([r["fad_clap"], r["clap_score"]]).all()


def test_bad_input_is_one_line(adherence, inputs, tmp_path, capsys):
    line = one_line_error(adherence, "controlnet_adherence", capsys,
                          ["--model", str(inputs / "pipe"), "--data", str(tmp_path), "--num-clips", "1"])
    assert "neither a render folder" in line
