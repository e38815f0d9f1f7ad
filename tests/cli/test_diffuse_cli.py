"""``hf-musiccodec diffuse``: writes the generated wav (any scheduler, audio-to-audio, inpainting, CLAP
re-ranking); bad input is one line and exit 2, and an input file is never overwritten."""

import numpy as np
import pytest
import soundfile as sf

from hf_musiccodec.cli.main import main
from hf_musiccodec.testing.tiny import tiny_music_diffusion_pipeline


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ldm") / "pipe"
    tiny_music_diffusion_pipeline().save_pretrained(folder)
    return folder


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.wav"
    t = np.arange(int(1.5 * 16000)) / 16000
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t) * (t % 0.5 < 0.25)).astype(np.float32), 16000)
    return path


@pytest.mark.parametrize("scheduler", ["dpm", "ddim", "euler"])
def test_generates_a_wav(folder, tmp_path, capsys, scheduler):
    out = tmp_path / "out.wav"
    code = main(["diffuse", "a slow chorale", "--seconds", "0.8", "--steps", "3", "--scheduler", scheduler,
                 "--candidates", "2", "--negative", "a march", "--model", str(folder), "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    audio, sr = sf.read(str(out))
    assert sr == 24000 and audio.shape == (int(0.8 * 24000),) and np.abs(audio).max() > 0
    assert str(out) in capsys.readouterr().out


def test_audio_to_audio_and_inpainting_keep_the_input_length(folder, clip, tmp_path, capsys):
    for extra in (["--strength", "0.5"], ["--inpaint", "0.4", "0.9"]):
        out = tmp_path / "out.wav"
        code = main(["diffuse", "x", "--input", str(clip), "--steps", "3", "--model", str(folder), "--output", str(out),
                     *extra])
        assert code == 0, capsys.readouterr().err
        audio, sr = sf.read(str(out))
        assert sr == 24000 and audio.shape == (int(1.5 * 24000),)


@pytest.mark.parametrize("extra, message", [
    (["--model", "/nonexistent"], "no latent diffusion pipeline"),
    (["--seconds", "-1"], "audio_length_in_s"),
    (["--steps", "0"], "num_inference_steps"),
    (["--strength", "0.5"], "need the input audio"),
    (["--input", "MISSING"], "MISSING"),
    (["--input", "BROKEN"], "BROKEN"),
    (["--input", "CLIP", "--inpaint", "5", "6"], "past the input"),
])  # fmt: skip
def test_bad_input_is_one_line(folder, clip, tmp_path, capsys, extra, message):
    (tmp_path / "BROKEN").write_bytes(b"RIFF0000WAVEfmt garbage")
    names = {"MISSING": str(tmp_path / "MISSING"), "BROKEN": str(tmp_path / "BROKEN"), "CLIP": str(clip)}
    extra = [names.get(e, e) for e in extra]
    args = ["diffuse", "x", "--seconds", "0.3", "--steps", "2", "--model", str(folder), "--output", str(tmp_path / "o.wav")]
    assert main(args + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hf-musiccodec: error:") and message in err[-1]
    assert not (tmp_path / "o.wav").exists()


def test_output_onto_the_input_is_refused(folder, clip, capsys):
    before = clip.read_bytes()
    assert main(["diffuse", "x", "--input", str(clip), "--steps", "2", "--model", str(folder), "--output", str(clip)]) == 2
    assert clip.read_bytes() == before
