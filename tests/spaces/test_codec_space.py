"""The codec Space (spaces/codec): its processing functions with a tiny codec, and the real page
in a headless Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

gr = pytest.importorskip("gradio", reason="the Space needs the 'spaces' extra: pip install -e '.[spaces]'")
pytest.importorskip("matplotlib", reason="the Space needs the 'spaces' extra: pip install -e '.[spaces]'")

from hf_musiccodec.audio.io import load_audio  # noqa: E402
from hf_musiccodec.codecs import MusicCodecModel, default_model_path  # noqa: E402
from hf_musiccodec.codecs.file_format import CompressedAudio, decode_waveform, read_compressed  # noqa: E402
from hf_musiccodec.data import demo_clip_path  # noqa: E402
from hf_musiccodec.testing.tiny import tiny_codec_config  # noqa: E402
from tests.spaces import browser  # noqa: E402
from tests.spaces.space_files import REPO, check_space_metadata_and_requirements, load_space_module  # noqa: E402

SPACE = REPO / "spaces" / "codec"

demo = load_space_module(SPACE, "codec_demo.py", "codec_space_demo")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tinycodec"
    MusicCodecModel(tiny_codec_config("encodec_24khz", kmeans_init=False)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """2 s of the bundled Bach chorale as a 24 kHz mono 16-bit wav."""
    audio, sr = load_audio(demo_clip_path(), duration=2.0)
    path = tmp_path_factory.mktemp("audio") / "chorale.wav"
    sf.write(path, audio.T, sr, subtype="PCM_16")
    return path


@pytest.fixture(autouse=True)
def _space_env(monkeypatch, tiny_model_dir):
    monkeypatch.setenv(demo.MODELS_ENV, str(tiny_model_dir))
    monkeypatch.delenv(demo.MAX_SECONDS_ENV, raising=False)


def _error(excinfo) -> str:
    return excinfo.value.message


# --------------------------------------------------------------------------- processing


def test_process_returns_audio_images_bitrate_and_a_decodable_file(tiny_model_dir, clip):
    result = demo.process(str(clip), str(tiny_model_dir), 1.2)
    model = demo.load_model(tiny_model_dir)

    original, sr = load_audio(result.original_path)
    reconstruction, sr2 = load_audio(result.reconstruction_path)
    assert sr == sr2 == 24000 and original.shape == reconstruction.shape == (1, 48000)
    assert np.isfinite(reconstruction).all()

    for image in (result.original_spectrogram, result.reconstruction_spectrogram):
        assert image.mode == "RGB" and image.size[0] > 300 and image.size[1] > 150
        assert np.asarray(image).std() > 10  # a picture, not a blank canvas

    assert result.nominal_kbps == 1.2
    assert result.file_bytes == Path(result.compressed_path).stat().st_size
    assert result.real_kbps == pytest.approx(result.file_bytes * 8 / 2.0 / 1000)
    assert "1.2 kbps nominal" in result.bitrate_text and f"{result.real_kbps:.2f} kbps real" in result.bitrate_text
    assert f"{result.file_bytes:,} bytes" in result.bitrate_text
    assert "mel distance" in result.metrics_text and "SI-SDR" in result.metrics_text
    assert np.isfinite(result.mel_distance) and result.mel_distance > 0 and np.isfinite(result.si_sdr)

    assert result.compressed_path.endswith("chorale_1.2kbps.hfmc")
    compressed = read_compressed(result.compressed_path, model)
    assert compressed.bandwidth == pytest.approx(1.2) and compressed.num_samples == 48000
    decoded = decode_waveform(model, compressed)[0]
    # the page's reconstruction is the decoded file (stored as 16-bit PCM)
    assert np.abs(decoded - reconstruction).max() < 1e-3


def test_bitrate_choices_follow_the_model_and_change_the_file(tiny_model_dir, clip):
    assert [b for _, b in demo.bandwidth_choices(tiny_model_dir)] == [0.3, 0.6, 0.9, 1.2]
    low = demo.process(str(clip), str(tiny_model_dir), "0.3")
    high = demo.process(str(clip), str(tiny_model_dir), None)  # None: the highest
    assert low.nominal_kbps == 0.3 and high.nominal_kbps == 1.2
    assert low.file_bytes < high.file_bytes
    assert CompressedAudio.from_bytes(Path(low.compressed_path).read_bytes()).num_quantizers == 1
    update, summary = demo.on_model_change(str(tiny_model_dir))
    assert update.value == 1.2 and "24 kHz mono" in summary


def test_conversion_to_the_codec_format_is_reported(tiny_model_dir, tmp_path):
    audio, sr = load_audio(demo_clip_path(), duration=1.0, sampling_rate=16000)
    path = tmp_path / "stereo 16k.flac"
    sf.write(path, np.stack([audio[0], 0.5 * audio[0]]).T, sr)
    result = demo.process(str(path), str(tiny_model_dir), 0.6)
    assert result.seconds == pytest.approx(1.0)
    assert any("16000 Hz stereo" in note and "24000 Hz mono" in note for note in result.notes)
    assert Path(result.compressed_path).name == "stereo_16k_0.6kbps.hfmc"


def test_run_for_page_gives_the_seven_outputs(tiny_model_dir, clip):
    outputs = demo.run_for_page(str(clip), str(tiny_model_dir), 0.9)
    assert len(outputs) == 7
    original, reconstruction, _, _, bitrate_text, metrics_text, compressed = outputs
    assert Path(original).is_file() and Path(reconstruction).is_file() and compressed.endswith(".hfmc")
    assert "0.9 kbps nominal" in bitrate_text and "SI-SDR" in metrics_text


def test_overlong_upload_is_refused_with_a_clear_message(tiny_model_dir, clip, monkeypatch):
    monkeypatch.setenv(demo.MAX_SECONDS_ENV, "1.5")
    with pytest.raises(gr.Error) as excinfo:
        demo.process(str(clip), str(tiny_model_dir), 1.2)
    assert _error(excinfo) == ("'chorale.wav' is 2.0 s long; this Space accepts up to 1.5 s. "
                               "Trim it (or record a shorter take) and run again.")


@pytest.mark.parametrize("content, detail", [
    (b"", "empty file"),
    (b"this is not audio at all" * 40, "unreadable audio file"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "unreadable audio file"),
])
def test_unreadable_upload_is_refused_with_a_clear_message(tiny_model_dir, tmp_path, content, detail):
    path = tmp_path / "song.wav"
    path.write_bytes(content)
    with pytest.raises(gr.Error) as excinfo:
        demo.process(str(path), str(tiny_model_dir), 1.2)
    message = _error(excinfo)
    assert message.startswith("Could not read 'song.wav' as audio: ") and detail in message
    assert str(tmp_path) not in message  # no server paths in user-facing text
    assert "Upload a wav, flac, ogg, opus, mp3 or aiff file" in message


def test_no_input_and_bad_bitrate(tiny_model_dir, clip):
    with pytest.raises(gr.Error) as excinfo:
        demo.process(None, str(tiny_model_dir), 1.2)
    assert "No audio yet: upload a file or record with the microphone" in _error(excinfo)
    with pytest.raises(gr.Error) as excinfo:
        demo.process(str(clip), str(tiny_model_dir), 6.0)
    assert _error(excinfo) == "This codec does not have 6 kbps; choose one of 0.3, 0.6, 0.9, 1.2 kbps."


def test_model_list_and_cache(tiny_model_dir, tmp_path, monkeypatch):
    not_a_codec = tmp_path / "clap"
    not_a_codec.mkdir()
    (not_a_codec / "config.json").write_text(json.dumps({"model_type": "clap"}))
    autoencoder = tmp_path / "autoencoder"
    MusicCodecModel(tiny_codec_config("autoencoder")).save_pretrained(autoencoder)
    monkeypatch.setenv(demo.MODELS_ENV, os.pathsep.join([str(tiny_model_dir), str(not_a_codec), str(autoencoder),
                                                         str(tmp_path / "missing")]))
    models = demo.available_models()
    paths = list(models.values())
    assert paths[0] == str(tiny_model_dir.resolve())  # the explicit choice is preselected
    assert list(models)[0] == "tinycodec (from $HF_MUSICCODEC_SPACE_MODELS)"
    assert str(not_a_codec.resolve()) not in paths and str(autoencoder.resolve()) not in paths
    if (default_model_path() / "config.json").is_file():
        assert str(default_model_path().resolve()) in paths
    assert len(paths) == len(set(paths))
    assert demo.load_model(tiny_model_dir) is demo.load_model(str(tiny_model_dir) + os.sep)
    with pytest.raises(gr.Error, match="Could not load the codec"):
        demo.load_model(not_a_codec)


def test_page_builds_with_the_components_the_browser_test_uses(tiny_model_dir):
    blocks = demo.build_demo()
    ids = {c.elem_id for c in blocks.blocks.values() if getattr(c, "elem_id", None)}
    assert {"audio-in", "model", "bitrate", "run", "original", "reconstruction", "original-spectrogram",
            "reconstruction-spectrogram", "bitrate-text", "metrics-text", "compressed"} <= ids
    audio_in = next(c for c in blocks.blocks.values() if getattr(c, "elem_id", None) == "audio-in")
    assert audio_in.sources == ["upload", "microphone"]


def test_space_metadata_and_requirements():
    check_space_metadata_and_requirements(SPACE, gr.__version__)


# --------------------------------------------------------------------------- browser


@pytest.mark.timeout(150)
def test_space_in_headless_chromium(tiny_model_dir, clip, tmp_path):
    sync_playwright = browser.sync_playwright_or_skip()

    # UPDATE_SCREENSHOTS=1 runs the page with the bundled codec on 10 s of music for the README's picture.
    update = os.environ.get("UPDATE_SCREENSHOTS") == "1" and (default_model_path() / "config.json").is_file()
    model_dir = default_model_path().resolve() if update else tiny_model_dir
    upload = clip
    if update:
        upload = tmp_path / "bach_chorale.wav"
        audio, sr = load_audio(demo_clip_path())
        sf.write(upload, audio.T, sr, subtype="PCM_16")
    garbage = tmp_path / "not_audio.wav"
    garbage.write_bytes(b"definitely not a wav file" * 50)

    # with UPDATE_SCREENSHOTS the page as a visitor sees it: the bundled codec preselected
    env = {demo.MODELS_ENV: None if update else str(model_dir), demo.MAX_SECONDS_ENV: None}
    with browser.serve_space(SPACE / "app.py", tmp_path, env, timeout=90) as space, \
            browser.chromium_page(sync_playwright, space.url, height=1400) as page:
        page.wait_for_selector("#run", timeout=20000)
        assert model_dir.name in page.locator("#model input").input_value()
        assert page.locator("#bitrate input").input_value().endswith("kbps")

        # an unreadable upload: a clear message in a toast, no crash
        browser.upload(page, "audio-in", garbage)
        page.click("#run")
        browser.wait_for_error_toast(page, "Could not read 'not_audio.wav' as audio")
        space.mark("error shown")

        # a real upload
        page.reload()
        page.wait_for_selector("#run", timeout=20000)
        browser.upload(page, "audio-in", upload)
        page.click("#run")
        page.wait_for_selector("#metrics-text :text('SI-SDR')", timeout=60000)
        browser.wait_for_player(page, "reconstruction")  # it fetched the decoded wav
        space.mark("result shown")

        bitrate_text = page.inner_text("#bitrate-text")
        assert re.search(r"Bitrate: [\d.]+ kbps nominal, [\d.]+ kbps real file", bitrate_text), bitrate_text
        assert ".hfmc file is" in bitrate_text
        metrics_text = page.inner_text("#metrics-text")
        assert re.search(r"mel distance: \d+\.\d+", metrics_text) and re.search(r"SI-SDR: -?\d+\.\d+ dB", metrics_text)
        for image in ("original-spectrogram", "reconstruction-spectrogram"):
            browser.assert_image_shown(page, image)
        assert page.locator("#original audio[src^='blob:']").count() >= 1

        name, data = browser.download(page, "compressed")
        assert name.endswith(".hfmc")
        model = MusicCodecModel.from_pretrained(model_dir).eval()
        compressed = CompressedAudio.from_bytes(data)
        assert decode_waveform(model, compressed).shape[-1] == compressed.num_samples

        shot = browser.screenshot(page, tmp_path / "codec_space.png")
        if update:
            shutil.copyfile(shot, SPACE / "screenshot.png")


def test_process_in_segments_equals_one_segment(tiny_model_dir, clip, monkeypatch):
    """Pictures and metrics of a long upload are built segment by segment (bounded memory)."""
    whole = demo.process(str(clip), str(tiny_model_dir), 1.2)
    monkeypatch.setattr(demo, "METRIC_SEGMENT_SECONDS", 0.5)
    pieces = demo.process(str(clip), str(tiny_model_dir), 1.2)
    assert Path(pieces.compressed_path).read_bytes() == Path(whole.compressed_path).read_bytes()
    assert Path(pieces.reconstruction_path).read_bytes() == Path(whole.reconstruction_path).read_bytes()
    assert pieces.original_spectrogram.size == whole.original_spectrogram.size
    assert pieces.mel_distance == pytest.approx(whole.mel_distance, rel=0.2)
