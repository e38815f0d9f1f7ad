"""``hf-musiccodec vamp``: writes the vamped wav(s) and the kept tokens' bit rate; bad input is one
line, exit status 2 and no output file."""

import re

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_musiccodec.cli.main import main
from hf_musiccodec.testing.tiny import tiny_vampnet_pipeline

SR = 24000  # the tiny pipeline's codec: 75 frames/s, 2 coarse codebooks of 16 (4 bits)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vampnet") / "pipe"
    tiny_vampnet_pipeline().save_pretrained(folder)
    return folder


def _tune(seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    notes = 220.0 * 2 ** (np.floor(t * 4) % 5 / 12)  # a new note every 0.25 s: onsets to find
    return (0.3 * np.sin(2 * np.pi * np.cumsum(notes) / sr) * np.exp(-3 * (t % 0.25))).astype(np.float32)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "clip.wav"
    sf.write(str(path), _tune(1.2), SR, subtype="PCM_16")
    return path


def _vamp(folder, clip, out, *extra):
    return main(["vamp", str(clip), "--model", str(folder), "--output", str(out), "--steps", "3", *extra])


def _rate(text: str) -> float:
    return float(re.search(r"\(([0-9.]+) bits/s\)", text).group(1))


def test_periodic_prompt_writes_a_wav_and_prints_the_kept_bit_rate(folder, clip, tmp_path, capsys):
    out = tmp_path / "out.wav"
    assert _vamp(folder, clip, out, "--periodic", "4", "--upper-codebook-mask", "1", "--seed", "3") == 0
    text = capsys.readouterr().out
    audio, sr = sf.read(str(out))
    assert sr == SR and audio.shape == (int(1.2 * SR),) and np.abs(audio).max() > 0
    # 90 frames, every 4th kept (23 frames), only codebook 0 kept: 23 tokens x 4 bits / 1.2 s
    assert _rate(text) == pytest.approx(23 * 4 / 1.2, abs=0.05)
    assert str(out) in text and "clip.wav: 1.20 s vamped" in text

    # the CLI is the pipeline: the same recipe and seed give the same audio
    from hf_musiccodec.audio.io import load_audio
    from hf_musiccodec.pipelines import load_generator

    x, _ = load_audio(clip)
    expected = load_generator(folder)(x, sampling_rate=SR, periodic_prompt=4, upper_codebook_mask=1,
                                      num_inference_steps=3, generator=torch.Generator().manual_seed(3)).audios[0, 0]
    assert np.abs(audio - np.clip(expected, -1, 1)).max() < 1e-3

    assert _vamp(folder, clip, out, "--periodic", "4", "--upper-codebook-mask", "1", "--seed", "4") == 0
    assert not np.array_equal(sf.read(str(out))[0], audio)  # another seed, other music
    assert not list(tmp_path.glob("*.tmp*"))  # atomic writes leave no temporaries


def test_recipe_options_change_what_is_kept(folder, clip, tmp_path, capsys):
    rates = {}
    for name, extra in {"none": [], "prefix": ["--prefix", "0.4", "--suffix", "0.2"],
                        "rhythm": ["--beat-mask-width", "40", "--onset-mask-width", "40"],
                        "dropped": ["--prefix", "0.4", "--suffix", "0.2", "--dropout", "1"]}.items():
        assert _vamp(folder, clip, tmp_path / f"{name}.wav", *extra) == 0, capsys.readouterr().err
        rates[name] = _rate(capsys.readouterr().out)
    assert rates["none"] == 0 and rates["dropped"] == 0  # nothing kept / every kept token dropped
    assert rates["prefix"] == pytest.approx(45 * 2 * 4 / 1.2, abs=0.05)  # 30 + 15 frames, 2 codebooks
    assert rates["rhythm"] > 0  # the tune's onsets keep some frames


def test_variations_prompt_and_loops(folder, clip, tmp_path, capsys):
    out = tmp_path / "var.wav"
    assert _vamp(folder, clip, out, "--periodic", "3", "--variations", "2", "--prompt", "jazz") == 0
    first, second = (sf.read(str(tmp_path / f"var_{i}.wav"))[0] for i in (1, 2))
    assert first.shape == second.shape == (int(1.2 * SR),) and not np.array_equal(first, second)
    assert not out.exists() and capsys.readouterr().out.count(" -> ") == 2

    loop = tmp_path / "loop.wav"
    assert _vamp(folder, clip, loop, "--periodic", "3", "--loops", "3", "--feedback", "0.8") == 0
    audio, _ = sf.read(str(loop))
    assert audio.shape == (3 * int(1.2 * SR),)  # the passes one after another
    assert "1.20 s x 3 loops vamped" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--model", "ABSENT"], "no VampNet pipeline at"),
    (["--model", "TRAINING"], "no model_index.json"),
    (["--input", "MISSING"], "MISSING"),
    (["--input", "BROKEN"], "BROKEN: unreadable audio file"),
    (["--input", "TRUNCATED"], "TRUNCATED: truncated file"),
    (["--input", "SILENT"], "SILENT: silent audio"),
    (["--input", "SHORT"], "SHORT: 0.10 s long; at least 0.25 s is needed"),
    (["--prefix", "-1"], "--prefix must be a number >= 0, got -1"),
    (["--onset-mask-width", "nan"], "--onset-mask-width must be a number >= 0, got nan"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1], got 1.5"),
    (["--steps", "0"], "--steps must be an integer >= 1, got 0"),
    (["--periodic-width", "0"], "--periodic-width must be an integer >= 1, got 0"),
    (["--upper-codebook-mask", "9"], "upper_codebook_mask must be an integer in [0, 2], got 9"),
    (["--loops", "2", "--feedback", "2"], "--feedback must be in [0, 1], got 2"),
    (["--feedback", "0.5"], "--feedback needs --loops"),
    (["--output", "INPUT"], "refusing to overwrite the input file"),
])  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(folder, clip, tmp_path, capsys, extra, message):
    (tmp_path / "TRAINING").mkdir()
    (tmp_path / "TRAINING" / "train.yaml").write_text("steps: 1\n")
    (tmp_path / "BROKEN").write_bytes(b"RIFF0000WAVEfmt garbage" * 10)
    sf.write(str(tmp_path / "TRUNCATED"), _tune(1.0), SR, format="WAV", subtype="PCM_16")
    (tmp_path / "TRUNCATED").write_bytes((tmp_path / "TRUNCATED").read_bytes()[:20000])
    sf.write(str(tmp_path / "SILENT"), np.zeros(SR, np.float32), SR, format="WAV")
    sf.write(str(tmp_path / "SHORT"), _tune(0.1), SR, format="WAV")
    source = clip
    if extra[0] == "--input":
        source, extra = tmp_path / extra[1], []
    extra = [str(tmp_path / e) if e in ("ABSENT", "TRAINING") else str(source) if e == "INPUT" else e for e in extra]
    out = tmp_path / "o.wav"
    assert _vamp(folder, source, out, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hf-musiccodec: error:") and message in err[0], err
    assert not out.exists()


def test_a_text_to_music_folder_is_refused(tmp_path, clip, capsys):
    from hf_musiccodec.testing.tiny import tiny_text_to_music_pipeline

    other = tmp_path / "t2m"
    tiny_text_to_music_pipeline().save_pretrained(other)
    assert _vamp(other, clip, tmp_path / "o.wav") == 2
    assert "holds a TextToMusicPipeline, not a VampNetPipeline" in capsys.readouterr().err
