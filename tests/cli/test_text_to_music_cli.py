"""``hf-musiccodec text-to-music``: writes the generated wav; bad input is one line and exit 2."""

import numpy as np
import pytest
import soundfile as sf

from hf_musiccodec.cli.main import main
from hf_musiccodec.testing.tiny import tiny_text_to_music_pipeline


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("t2m") / "pipe"
    tiny_text_to_music_pipeline().save_pretrained(folder)
    return folder


def test_generates_a_wav_with_melody_and_continuation(folder, tmp_path, capsys):
    tune = tmp_path / "tune.wav"
    sf.write(str(tune), (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32), 16000)
    out = tmp_path / "out.wav"
    code = main(["text-to-music", "a slow waltz", "--seconds", "1.2", "--model", str(folder), "--output", str(out),
                 "--melody", str(tune), "--continue", str(tune), "--clap", "--seed", "3"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    audio, sr = sf.read(str(out))
    assert sr == 24000 and audio.shape == (int(1.2 * 24000),)
    assert str(out) in capsys.readouterr().out


def test_tempo_and_key_options(tmp_path, capsys):
    folder = tmp_path / "attributes"
    tiny_text_to_music_pipeline(with_attributes=True).save_pretrained(folder)
    outs = []
    for extra in ([], ["--bpm", "150", "--key", "F# minor"], ["--bpm", "150", "--key", "F# minor", "--key-guidance", "4"]):
        outs.append(tmp_path / f"out{len(outs)}.wav")
        code = main(["text-to-music", "a tune", "--seconds", "0.6", "--model", str(folder), "--output", str(outs[-1]),
                     *extra])  # fmt: skip
        assert code == 0, capsys.readouterr().err
    audios = [sf.read(str(out))[0] for out in outs]
    assert not np.array_equal(audios[0], audios[1]) and not np.array_equal(audios[1], audios[2])
    assert main(["text-to-music", "a tune", "--model", str(folder), "--key", "H major"]) == 2
    assert "not a key name" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--model", "/nonexistent"], "no text-to-music pipeline"),
    (["--bpm", "120"], "rhythm condition"),
    (["--seconds", "-1"], "audio_length_in_s"),
    (["--key-guidance", "-2"], "key_guidance_scale must be"),
    (["--melody", "MISSING"], "MISSING"),
    (["--continue", "BROKEN"], "BROKEN"),
])  # fmt: skip
def test_bad_input_is_one_line(folder, tmp_path, capsys, extra, message):
    (tmp_path / "BROKEN").write_bytes(b"RIFF0000WAVEfmt garbage")
    extra = [str(tmp_path / e) if e in ("MISSING", "BROKEN") else e for e in extra]
    args = ["text-to-music", "x", "--seconds", "0.3", "--model", str(folder), "--output", str(tmp_path / "o.wav")]
    assert main(args + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hf-musiccodec: error:") and message in err[-1]
    assert not (tmp_path / "o.wav").exists()
