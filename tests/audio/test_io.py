import os
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_musiccodec.audio import (
    AudioError,
    load_audio,
    match_channels,
    measure_loudness,
    resample,
    save_audio,
    validate_waveform,
)

SR = 16000


def sine(freq=440.0, seconds=0.5, sr=SR, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path, audio, sr=SR, **kw):
    """Write (channels, samples) or (samples,) with plain soundfile (independent of save_audio)."""
    audio = np.asarray(audio)
    sf.write(str(path), audio.T if audio.ndim == 2 else audio, sr, **kw)
    return path


def fft_peak_hz(x, sr):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * sr / len(x)


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_load_formats_roundtrip_shape_and_content(tmp_path, ext):
    x = sine(440)
    path = write(tmp_path / f"a.{ext}", x)
    audio, sr = load_audio(path)
    assert sr == SR and audio.dtype == np.float32 and audio.ndim == 2 and audio.shape[0] == 1
    if ext in ("wav", "flac"):
        assert audio.shape[1] == len(x)
        np.testing.assert_allclose(audio[0], x, atol=1e-4)
    else:  # lossy codecs: same pitch, similar length
        assert abs(audio.shape[1] - len(x)) < 0.1 * SR
        assert abs(fft_peak_hz(audio[0], sr) - 440) < 10


def test_load_stereo_noise_keeps_channels(tmp_path):
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((2, 4000))).astype(np.float32)
    audio, _ = load_audio(write(tmp_path / "n.flac", x, subtype="PCM_24"))
    assert audio.shape == (2, 4000)
    np.testing.assert_allclose(audio, x, atol=1e-5)


def test_resampling_keeps_frequency(tmp_path):
    path = write(tmp_path / "s.wav", sine(1000, seconds=1.0, sr=44100), sr=44100)
    audio, sr = load_audio(path, sampling_rate=16000)
    assert sr == 16000 and abs(audio.shape[1] - 16000) <= 1
    assert abs(fft_peak_hz(audio[0], sr) - 1000) < 2
    # Energy is preserved: a 0.5-amplitude sine has RMS 0.354.
    assert abs(np.sqrt(np.mean(audio[0, 1000:-1000] ** 2)) - 0.5 / np.sqrt(2)) < 0.01


def test_resample_function_keeps_rank():
    assert resample(sine(), SR, 8000).shape == (SR // 4,)
    assert resample(np.stack([sine(), sine()]), SR, 8000).shape == (2, SR // 4)
    assert resample(sine(), SR, SR).shape == (SR // 2,)


def test_channel_matching(tmp_path):
    mono = write(tmp_path / "m.wav", sine())
    stereo = write(tmp_path / "s.wav", np.stack([sine(), np.zeros(SR // 2, np.float32)]))
    up, _ = load_audio(mono, channels=2)
    assert up.shape == (2, SR // 2) and np.array_equal(up[0], up[1])
    down, _ = load_audio(stereo, channels=1)
    np.testing.assert_allclose(down[0], sine() / 2, atol=1e-4)
    with pytest.raises(AudioError, match=r"s\.wav: cannot convert 2 channels to 3"):
        load_audio(stereo, channels=3)
    with pytest.raises(AudioError):
        match_channels(np.zeros((3, 10)), 2)


def test_offset_and_duration_window(tmp_path):
    x = np.arange(SR, dtype=np.float32) / SR
    audio, _ = load_audio(write(tmp_path / "r.wav", x, subtype="FLOAT"), offset=0.25, duration=0.5)
    np.testing.assert_array_equal(audio[0], x[SR // 4 : 3 * SR // 4])


def test_peak_normalisation(tmp_path):
    audio, _ = load_audio(write(tmp_path / "q.wav", sine(amp=0.1)), normalize="peak")
    assert abs(np.abs(audio).max() - 10 ** (-1 / 20)) < 1e-3


def test_loudness_normalisation(tmp_path):
    rng = np.random.default_rng(1)
    noise = (0.01 * rng.standard_normal(SR)).astype(np.float32)
    audio, sr = load_audio(write(tmp_path / "n.wav", noise, subtype="FLOAT"), normalize="loudness")
    assert abs(measure_loudness(audio, sr) - (-20.0)) < 0.5
    # Peak cap: the gain never pushes the peak past -1 dBFS.
    loud, _ = load_audio(write(tmp_path / "l.wav", sine(amp=0.9)), normalize="loudness", target_lufs=0.0)
    assert np.abs(loud).max() <= 10 ** (-1 / 20) + 1e-4


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    (tmp_path / "e.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty file"):
        load_audio(tmp_path / "e.wav")


def test_random_bytes_file(tmp_path):
    path = tmp_path / "r.wav"
    path.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(AudioError, match="unreadable") as e:
        load_audio(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_truncated_files(tmp_path, ext):
    full = write(tmp_path / f"full.{ext}", sine(seconds=1.0))
    data = full.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=str(cut)):
        load_audio(cut)


def test_zero_samples(tmp_path):
    path = write(tmp_path / "z.wav", np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="0 samples"):
        load_audio(path)


def test_nan_and_inf_content(tmp_path):
    x = sine()
    x[10] = np.nan
    x[20] = np.inf
    path = write(tmp_path / "nan.wav", x, subtype="FLOAT")
    with pytest.raises(AudioError, match="2 NaN or infinite"):
        load_audio(path)


def test_silent_input_with_normalisation(tmp_path):
    path = write(tmp_path / "silent.wav", np.zeros(SR, np.float32))
    audio, _ = load_audio(path)  # fine without normalisation
    assert not audio.any()
    for mode in ("peak", "loudness"):
        with pytest.raises(AudioError, match="silent"):
            load_audio(path, normalize=mode)


def test_min_duration_and_bad_mode(tmp_path):
    path = write(tmp_path / "short.wav", sine(seconds=0.1))
    with pytest.raises(AudioError, match="too short"):
        load_audio(path, min_duration=0.5)
    with pytest.raises(AudioError, match="normalize must be"):
        load_audio(path, normalize="rms")


def test_validate_waveform():
    assert validate_waveform(torch.zeros(2, 5)).shape == (2, 5)
    with pytest.raises(AudioError, match="x: empty"):
        validate_waveform(np.zeros((1, 0), np.float32), name="x")
    with pytest.raises(AudioError, match="NaN"):
        validate_waveform(torch.tensor([0.0, float("nan")]))
    with pytest.raises(AudioError, match="shape"):
        validate_waveform(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(AudioError, match="float"):
        validate_waveform(np.zeros(4, np.int16))


# --------------------------------------------------------------------------- saving


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_save_numpy_and_torch(tmp_path, ext):
    x = np.stack([sine(), -sine()])
    save_audio(tmp_path / f"np.{ext}", x, SR)
    save_audio(tmp_path / f"pt.{ext}", torch.from_numpy(x[0]), SR)
    a, _ = load_audio(tmp_path / f"np.{ext}")
    b, _ = load_audio(tmp_path / f"pt.{ext}")
    assert a.shape[0] == 2 and b.shape[0] == 1
    if ext != "ogg":
        np.testing.assert_allclose(a, x, atol=1e-4)
    assert sorted(os.listdir(tmp_path)) == sorted([f"np.{ext}", f"pt.{ext}"])  # no temp files left


def test_save_clips_with_warning(tmp_path):
    x = np.array([0.0, 1.5, -2.0, 0.5], np.float32)
    with pytest.warns(UserWarning, match="clipped 2 samples"):
        save_audio(tmp_path / "c.wav", x, SR, subtype="FLOAT")
    np.testing.assert_array_equal(sf.read(tmp_path / "c.wav")[0], [0.0, 1.0, -1.0, 0.5])


def test_opus_roundtrip(tmp_path):
    save_audio(tmp_path / "o.opus", sine(1000, seconds=1.0), SR)
    assert sf.info(tmp_path / "o.opus").subtype == "OPUS"
    audio, sr = load_audio(tmp_path / "o.opus", sampling_rate=SR)
    assert abs(fft_peak_hz(audio[0], sr) - 1000) < 5


def test_save_refuses_protected_path(tmp_path):
    src = write(tmp_path / "in.wav", sine())
    before = src.read_bytes()
    with pytest.raises(AudioError, match="protected"):
        save_audio(tmp_path / "." / "in.wav", np.zeros(10, np.float32), SR, protect=src)
    assert src.read_bytes() == before


def test_failed_save_does_not_clobber(tmp_path, monkeypatch):
    target = write(tmp_path / "out.wav", sine())
    before = target.read_bytes()
    with pytest.raises(AudioError):
        save_audio(target, np.array([np.nan], np.float32), SR)

    real_write = sf.SoundFile.write

    def write_half_then_fail(self, data):
        real_write(self, data[: len(data) // 2])
        raise RuntimeError("disk full")

    monkeypatch.setattr(sf.SoundFile, "write", write_half_then_fail)
    with pytest.raises(AudioError, match="could not write.*disk full"):
        save_audio(target, sine(), SR)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.wav"]


def test_save_rejects_unknown_extension(tmp_path):
    with pytest.raises(AudioError, match="unsupported extension"):
        save_audio(tmp_path / "x.xyz", sine(), SR)


def test_save_default_subtype_falls_back_for_ogg(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_audio(tmp_path / "v.ogg", sine(), SR)  # PCM_16 does not fit OGG: Vorbis is used
    assert sf.info(tmp_path / "v.ogg").subtype == "VORBIS"


# --------------------------------------------------------------------------- blocks


def test_read_blocks_equal_load_audio(tmp_path):
    from hf_musiccodec.audio.io import read_audio_blocks

    rng = np.random.default_rng(4)
    path = write(tmp_path / "s.flac", (0.2 * rng.standard_normal((2, 44_100 + 77))).astype(np.float32), 44_100,
                 subtype="PCM_24")
    for sampling_rate, channels in ((None, None), (24_000, 1), (16_000, 2)):
        whole, _ = load_audio(path, sampling_rate=sampling_rate, channels=channels)
        blocks = list(read_audio_blocks(path, sampling_rate, channels, blocksize=1000))
        assert len(blocks) > 10
        np.testing.assert_array_equal(np.concatenate(blocks, axis=1), whole)  # streaming soxr is exact


def test_read_blocks_errors(tmp_path):
    from hf_musiccodec.audio.io import read_audio_blocks

    with pytest.raises(AudioError, match="not found"):
        read_audio_blocks(tmp_path / "nope.wav")  # at once, before iterating
    path = write(tmp_path / "three.wav", np.zeros((3, 100), np.float32))
    with pytest.raises(AudioError, match="cannot convert 3 channels to 2"):
        read_audio_blocks(path, channels=2)
    full = write(tmp_path / "full.wav", sine(seconds=1.0))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    blocks = read_audio_blocks(cut, blocksize=500)
    with pytest.raises(AudioError, match="truncated"):
        list(blocks)


def test_write_blocks_equal_save_audio(tmp_path):
    from hf_musiccodec.audio.io import rechunk, write_audio_blocks

    x = np.stack([sine(440), sine(660)])
    x[0, 5] = 1.5  # clipped, with one warning for the whole file
    with pytest.warns(UserWarning, match="clipped 1 samples"):
        save_audio(tmp_path / "a.flac", x, SR)
    with pytest.warns(UserWarning, match="clipped 1 samples"):
        write_audio_blocks(tmp_path / "b.flac", rechunk([x[:, :100], x[:, 100:]], 333), SR)
    assert (tmp_path / "a.flac").read_bytes() == (tmp_path / "b.flac").read_bytes()
    assert [b.shape[-1] for b in rechunk([x[:, :100], x[:, 100:]], 3000)] == [3000, 3000, 2000]
    with pytest.raises(AudioError, match="no audio"):
        write_audio_blocks(tmp_path / "c.wav", [], SR)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.flac", "b.flac"]
