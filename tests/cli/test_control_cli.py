"""``hf-musiccodec control``: keeps a reference's controls with Music ControlNet (over a time range)
or DITTO, writes the wav; what a method cannot keep, a wrong folder or bad audio is one line and
exit 2, and the reference is never overwritten."""

import numpy as np
import pytest
import soundfile as sf

from hf_musiccodec.cli.main import main
from hf_musiccodec.pipelines.ditto import DittoPipeline
from hf_musiccodec.testing.tiny import tiny_music_controlnet_pipeline


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("control")
    pipe = tiny_music_controlnet_pipeline()
    pipe.save_pretrained(root / "controlnet")
    parts = {k: v for k, v in pipe.components.items() if k != "controlnet"}
    DittoPipeline(**parts, latent_mean=pipe.config.latent_mean, latent_std=pipe.config.latent_std).save_pretrained(
        root / "ditto")
    return root


@pytest.fixture
def reference(tmp_path):
    path = tmp_path / "reference.wav"
    t = np.arange(int(1.2 * 16000)) / 16000
    tune = np.sin(2 * np.pi * np.where(t < 0.6, 440, 660) * t) * (0.1 + 0.3 * t)   # two notes, a crescendo
    sf.write(str(path), tune.astype(np.float32), 16000)
    return path


def _run(folders, reference, out, *extra, method="controlnet"):
    return main(["control", "a chorale", "--reference", str(reference), "--method", method, "--steps", "2",
                 "--model", str(folders / method), "--output", str(out), *extra])


@pytest.mark.parametrize("method, extra", [
    ("controlnet", []),
    ("controlnet", ["--controls", "melody", "--start", "0.2", "--end", "0.8", "--scale", "0.5"]),
    ("ditto", ["--controls", "dynamics", "melody", "--ditto-steps", "1"]),
    ("ditto", ["--controls", "structure", "--ditto-steps", "1", "--seconds", "1.0"]),
])  # fmt: skip
def test_keeps_the_references_controls(folders, reference, tmp_path, capsys, method, extra):
    out = tmp_path / "out.wav"
    assert _run(folders, reference, out, *extra, method=method) == 0, capsys.readouterr().err
    audio, sr = sf.read(str(out))
    seconds = 1.0 if "--seconds" in extra else 1.2
    assert sr == 24000 and audio.shape == (int(round(seconds * 24000)),) and np.isfinite(audio).all()
    assert f"({method})" in capsys.readouterr().out


def test_the_time_range_and_scale_change_the_output(folders, reference, tmp_path):
    outputs = []
    for extra in ([], ["--start", "0.6"], ["--scale", "0"]):
        out = tmp_path / f"out{len(outputs)}.wav"
        assert _run(folders, reference, out, *extra) == 0
        outputs.append(sf.read(str(out))[0])
    assert not np.allclose(outputs[0], outputs[1]) and not np.allclose(outputs[0], outputs[2])


@pytest.mark.parametrize("method, extra, message", [
    ("controlnet", ["--controls", "structure"], "controlnet cannot keep structure"),
    ("ditto", ["--controls", "rhythm"], "ditto cannot keep rhythm"),
    ("ditto", ["--start", "0.5"], "--start/--end apply to ControlNet"),
    ("controlnet", ["--start", "0.9", "--end", "0.3"], "start < end"),
    ("controlnet", ["--model", "DITTO"], "needs a MusicControlNetPipeline"),
    ("controlnet", ["--model", "/nonexistent"], "no controlnet pipeline"),
    ("controlnet", ["--reference", "BROKEN"], "BROKEN"),
    ("controlnet", ["--reference", "SILENT"], "silent"),
])  # fmt: skip
def test_bad_input_is_one_line(folders, reference, tmp_path, capsys, method, extra, message):
    (tmp_path / "BROKEN").write_bytes(b"RIFF0000WAVEfmt garbage")
    sf.write(str(tmp_path / "SILENT"), np.zeros(16000, np.float32), 16000, format="WAV")
    names = {"BROKEN": str(tmp_path / "BROKEN"), "SILENT": str(tmp_path / "SILENT"), "DITTO": str(folders / "ditto")}
    extra = [names.get(e, e) for e in extra]
    out = tmp_path / "o.wav"
    assert _run(folders, reference, out, *extra, method=method) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hf-musiccodec: error:") and message in err[-1], err[-1]
    assert not out.exists()


def test_output_onto_the_reference_is_refused(folders, reference, capsys):
    before = reference.read_bytes()
    assert _run(folders, reference, reference) == 2
    assert reference.read_bytes() == before
