import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_musiccodec import MusicCodecModel
from hf_musiccodec.cli.main import main
from hf_musiccodec.testing.tiny import tiny_codec_config

SR = 24_000


def _save_codec(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = MusicCodecModel(tiny_codec_config("encodec_24khz", codebook_size=1024, kmeans_init=False))
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def codecs(tmp_path_factory):
    root = tmp_path_factory.mktemp("codecs")
    return _save_codec(root / "codec_a", 0), _save_codec(root / "codec_b", 1)


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "in.wav"
    audio = 0.3 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    sf.write(path, np.clip(audio, -1, 1), SR, subtype="PCM_16")
    return path


def run(capsys, *argv):
    capsys.readouterr()
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def refused(capsys, *argv, match: str):
    """Run a command that must fail: status 2, exactly one stderr line, no traceback."""
    status, out, err = run(capsys, *argv)
    assert status == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hf-musiccodec: error: "), err
    assert "Traceback" not in err + out
    assert match in lines[0], lines[0]
    return lines[0]


def no_leftovers(folder: Path, expected: set):
    assert {p.name for p in folder.iterdir()} == expected


@pytest.fixture
def packed(capsys, codecs, wav, tmp_path):
    status, out, err = run(capsys, "compress", wav, tmp_path / "in.hfmc", "--model", codecs[0])
    assert status == 0 and err == "", err
    return tmp_path / "in.hfmc"


# --------------------------------------------------------------------------- happy paths


def test_roundtrip(capsys, codecs, packed, tmp_path):
    status, out, err = run(capsys, "decompress", packed, tmp_path / "out.wav", "--model", codecs[0])
    assert status == 0 and err == ""
    info = sf.info(tmp_path / "out.wav")
    assert (info.samplerate, info.channels, info.frames) == (SR, 1, SR)
    no_leftovers(tmp_path, {"in.wav", "in.hfmc", "out.wav"})


def test_compress_resamples_with_a_warning(capsys, codecs, tmp_path):
    src = tmp_path / "stereo.flac"
    sf.write(src, 0.2 * np.random.default_rng(1).standard_normal((44_100, 2)), 44_100)
    status, out, err = run(capsys, "compress", src, tmp_path / "s.hfmc", "--model", codecs[0], "--bandwidth", "1.5")
    assert status == 0
    assert "resampling from 44100 Hz" in err and "Traceback" not in err
    assert all(line.startswith("hf-musiccodec: warning: ") for line in err.strip().splitlines())
    status, _, _ = run(capsys, "decompress", tmp_path / "s.hfmc", tmp_path / "s.wav", "--model", codecs[0])
    assert status == 0
    assert sf.info(tmp_path / "s.wav").frames == SR


def test_info(capsys, packed):
    status, out, err = run(capsys, "info", packed)
    assert status == 0 and err == ""
    for text in ("codec_a", "24000 Hz", "1.000 s", "3 kbps", "1 chunk(s) x 1 item(s) x 4 codebook(s) x 75 frames"):
        assert text in out
    status, out, _ = run(capsys, "info", packed, "--json")
    fields = json.loads(out)
    assert fields["codec"] == "codec_a"
    assert fields["codes_shape"] == [1, 1, 4, 75]
    assert fields["bandwidth_kbps"] == 3.0
    assert fields["file_bitrate_kbps"] == pytest.approx(packed.stat().st_size * 8 / 1000)
    assert len(fields["fingerprint"]) == 32


def test_help(capsys):
    for argv in (["--help"], ["compress", "--help"], ["decompress", "--help"], ["info", "--help"], ["demo", "--help"]):
        status, out, _ = run(capsys, *argv)
        assert status == 0 and "usage: hf-musiccodec" in out


def test_console_script_help():
    script = Path(sys.executable).parent / "hf-musiccodec"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "compress" in result.stdout and "decompress" in result.stdout


# --------------------------------------------------------------------------- refusals


def _decompress_refused(capsys, codecs, tmp_path, data: bytes, match: str, model=None):
    bad = tmp_path / "bad.hfmc"
    bad.write_bytes(data)
    refused(capsys, "decompress", bad, tmp_path / "out.wav", "--model", model or codecs[0], match=match)
    assert not (tmp_path / "out.wav").exists()
    refused(capsys, "info", bad, match=match)
    return bad


def test_truncated(capsys, codecs, packed, tmp_path):
    _decompress_refused(capsys, codecs, tmp_path, packed.read_bytes()[:-7], "truncated")


def test_flipped_byte(capsys, codecs, packed, tmp_path):
    data = bytearray(packed.read_bytes())
    data[len(data) // 2 + 20] ^= 0x04
    _decompress_refused(capsys, codecs, tmp_path, bytes(data), "checksum mismatch")


def test_empty(capsys, codecs, tmp_path):
    _decompress_refused(capsys, codecs, tmp_path, b"", "empty file")


def test_random_bytes(capsys, codecs, tmp_path):
    data = np.random.default_rng(5).integers(0, 256, 500, dtype=np.uint8).tobytes()
    _decompress_refused(capsys, codecs, tmp_path, b"\x00" + data, "not an hf-musiccodec compressed file")


def test_wrong_version(capsys, codecs, packed, tmp_path):
    data = bytearray(packed.read_bytes())
    data[4] = 200
    _decompress_refused(capsys, codecs, tmp_path, bytes(data), "unsupported format version 200")


def test_file_made_by_another_model(capsys, codecs, packed, tmp_path):
    line = refused(capsys, "decompress", packed, tmp_path / "out.wav", "--model", codecs[1],
                   match="made by codec 'codec_a'")
    assert "codec_b" in line
    assert not (tmp_path / "out.wav").exists()


def test_failed_decompress_keeps_existing_output(capsys, codecs, packed, tmp_path):
    (tmp_path / "out.wav").write_bytes(b"previous")
    refused(capsys, "decompress", packed, tmp_path / "out.wav", "--model", codecs[1], match="made by codec")
    assert (tmp_path / "out.wav").read_bytes() == b"previous"
    no_leftovers(tmp_path, {"in.wav", "in.hfmc", "out.wav"})


def test_output_is_input(capsys, codecs, wav, packed, tmp_path):
    before = wav.read_bytes(), packed.read_bytes()
    refused(capsys, "compress", wav, wav, "--model", codecs[0], match="refusing to overwrite the input")
    refused(capsys, "compress", wav, tmp_path / "sub" / ".." / "in.wav", "--model", codecs[0], match="refusing")
    refused(capsys, "decompress", packed, packed, "--model", codecs[0], match="refusing to overwrite the input")
    os.link(wav, tmp_path / "hard.wav")
    refused(capsys, "compress", wav, tmp_path / "hard.wav", "--model", codecs[0], match="refusing")
    os.symlink(packed, tmp_path / "sym.wav")
    refused(capsys, "decompress", packed, tmp_path / "sym.wav", "--model", codecs[0], match="refusing")
    assert (wav.read_bytes(), packed.read_bytes()) == before


def test_unreadable_input_audio(capsys, codecs, tmp_path):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF not really a wave file" * 10)
    refused(capsys, "compress", bad, tmp_path / "x.hfmc", "--model", codecs[0], match="noise.wav")
    refused(capsys, "compress", tmp_path / "missing.wav", tmp_path / "x.hfmc", "--model", codecs[0],
            match="file not found")
    no_leftovers(tmp_path, {"noise.wav"})


def test_bad_options(capsys, codecs, wav, packed, tmp_path):
    refused(capsys, "compress", wav, tmp_path / "x.hfmc", "--model", codecs[0], "--bandwidth", "7",
            match="unsupported bandwidth 7.0 kbps")
    refused(capsys, "compress", wav, tmp_path / "x.hfmc", "--model", tmp_path / "nowhere", match="codec folder not found")
    refused(capsys, "compress", wav, tmp_path / "x.hfmc", "--model", tmp_path, match="not a codec folder")
    refused(capsys, "decompress", packed, tmp_path / "x.mp4", "--model", codecs[0], match="unsupported output extension")
    refused(capsys, "info", tmp_path / "missing.hfmc", match="No such file")
    no_leftovers(tmp_path, {"in.wav", "in.hfmc"})


# --------------------------------------------------------------------------- model source, blocks


def test_decompress_finds_the_model_the_file_records(capsys, codecs, packed, tmp_path):
    status, out, _ = run(capsys, "info", packed)
    assert status == 0 and f"model source: {codecs[0].resolve()}" in out
    status, _, err = run(capsys, "decompress", packed, tmp_path / "auto.wav")  # no --model
    assert status == 0 and err == "", err
    run(capsys, "decompress", packed, tmp_path / "explicit.wav", "--model", codecs[0])
    assert (tmp_path / "auto.wav").read_bytes() == (tmp_path / "explicit.wav").read_bytes()


def test_decompress_names_the_missing_model(capsys, codecs, wav, tmp_path):
    moved = tmp_path / "moved_codec"
    _save_codec(moved, 0)
    run(capsys, "compress", wav, tmp_path / "m.hfmc", "--model", moved)
    moved.rename(tmp_path / "elsewhere")
    line = refused(capsys, "decompress", tmp_path / "m.hfmc", tmp_path / "out.wav", match="not found here")
    assert str(moved.resolve()) in line and "--model" in line
    status, _, _ = run(capsys, "decompress", tmp_path / "m.hfmc", tmp_path / "out.wav", "--model", tmp_path / "elsewhere")
    assert status == 0


def test_compress_in_blocks_equals_whole_file_encode(capsys, codecs, tmp_path, monkeypatch):
    """Small read blocks, resampling and channel mixing on the way: the codes of the whole file."""
    import functools

    from hf_musiccodec.audio import io
    from hf_musiccodec.codecs.file_format import decode_waveform, encode_waveform, read_compressed

    src = tmp_path / "stereo44.flac"
    sf.write(src, 0.2 * np.random.default_rng(2).standard_normal((int(1.3 * 44_100), 2)), 44_100)
    monkeypatch.setattr(io, "read_audio_blocks", functools.partial(io.read_audio_blocks, blocksize=999))
    status, _, _ = run(capsys, "compress", src, tmp_path / "b.hfmc", "--model", codecs[0])
    assert status == 0
    model = MusicCodecModel.from_pretrained(codecs[0]).eval()
    audio, _ = io.load_audio(src, sampling_rate=SR, channels=1)
    whole = encode_waveform(model, audio)
    streamed = read_compressed(tmp_path / "b.hfmc", model=model)
    np.testing.assert_array_equal(streamed.audio_codes, whole.audio_codes)
    assert streamed.num_samples == audio.shape[-1]
    status, _, _ = run(capsys, "decompress", tmp_path / "b.hfmc", tmp_path / "b.wav", "--model", codecs[0])
    decoded, _ = sf.read(tmp_path / "b.wav", dtype="float32")
    expected = np.clip(decode_waveform(model, whole)[0, 0], -1, 1)
    np.testing.assert_allclose(decoded, expected, atol=1 / 32768 + 1e-5)  # 16-bit PCM


def test_truncated_input_audio_leaves_no_output(capsys, codecs, wav, tmp_path):
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav.read_bytes()[: len(wav.read_bytes()) // 2])
    refused(capsys, "compress", cut, tmp_path / "x.hfmc", "--model", codecs[0], match="truncated")
    assert not (tmp_path / "x.hfmc").exists()


def test_wheel_package_data_carries_the_default_codec():
    """pyproject's package-data globs reach the default codec through codecs/bundled/ (a symlink
    that setuptools copies into the wheel); the full check builds a wheel (see docs/file_format.md)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["hf_musiccodec"]
    package = root / "src" / "hf_musiccodec"
    found = {p.relative_to(package).as_posix() for pattern in patterns for p in package.glob(pattern)}
    for name in ("config.json", "model.safetensors"):
        assert f"codecs/bundled/musiccodec-24khz/{name}" in found
    from hf_musiccodec.codecs import default_model_path

    if "HF_MUSICCODEC_DEFAULT_CODEC" not in os.environ:
        assert default_model_path() == package / "codecs" / "bundled" / "musiccodec-24khz"


def test_demo_runs_in_blocks_and_segments(capsys, codecs, tmp_path, monkeypatch):
    from hf_musiccodec.cli import demo

    src = tmp_path / "clip.flac"
    sf.write(src, 0.2 * np.random.default_rng(3).standard_normal((int(1.5 * 44_100), 2)), 44_100)
    status, out, err = run(capsys, "demo", "--model", codecs[0], "--input", src, "--output", tmp_path / "o.wav",
                           "--bandwidth", "3")
    assert status == 0, err
    whole = out.strip().splitlines()[-1].split()
    monkeypatch.setattr(demo, "METRIC_SEGMENT_SECONDS", 0.4)  # several segments
    status, out, err = run(capsys, "demo", "--model", codecs[0], "--input", src, "--output", tmp_path / "p.wav",
                           "--bandwidth", "3")
    assert status == 0, err
    parts = out.strip().splitlines()[-1].split()
    assert parts[:4] == whole[:4]  # kbps, bytes, real kbps, ratio
    assert (tmp_path / "o.wav").read_bytes() == (tmp_path / "p.wav").read_bytes()
    assert sf.info(tmp_path / "o.wav").frames == int(1.5 * SR)


def test_transformers_encodec_folder_is_recorded(capsys, wav, tmp_path):
    """A file made with --model path/to/encodec_24khz (transformers layout) decompresses without it."""
    from hf_musiccodec.testing.parity import build_reference

    folder = tmp_path / "encodec_24khz"
    build_reference("encodec", num_filters=4, hidden_size=16, codebook_size=64, num_lstm_layers=1).save_pretrained(folder)
    status, _, err = run(capsys, "compress", wav, tmp_path / "e.hfmc", "--model", folder, "--bandwidth", "1.5")
    assert status == 0, err
    status, out, _ = run(capsys, "info", tmp_path / "e.hfmc")
    assert "codec:" in out and "encodec_24khz" in out and f"model source: {folder.resolve()}" in out
    status, _, err = run(capsys, "decompress", tmp_path / "e.hfmc", tmp_path / "e.wav")
    assert status == 0, err
