"""The latent diffusion Space (spaces/latent-diffusion): its functions with the tiny random pipeline,
and the real page in a headless Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

gr = pytest.importorskip("gradio", reason="the Space needs the 'spaces' extra: pip install -e '.[spaces]'")
pytest.importorskip("matplotlib", reason="the Space needs the 'spaces' extra: pip install -e '.[spaces]'")

from hf_musiccodec.audio.io import load_audio  # noqa: E402
from tests.spaces import browser  # noqa: E402
from tests.spaces.space_files import REPO, check_space_metadata_and_requirements, load_space_module, tune  # noqa: E402

SPACE = REPO / "spaces" / "latent-diffusion"
SR = 24000  # the tiny pipeline's codec: 75 latent frames/s, 2 frames per U-Net column

demo = load_space_module(SPACE, "latent_diffusion_demo.py", "latent_diffusion_space_demo")

# short and few steps: the tiny pipeline runs them in a fraction of a second
FAST = dict(steps=3, guidance=3.0, scheduler="dpm")


@pytest.fixture(scope="module")
def tiny_pipeline_dir(tmp_path_factory):
    from hf_musiccodec.testing.tiny import tiny_music_diffusion_pipeline

    path = tmp_path_factory.mktemp("models") / "tiny-music-diffusion"
    tiny_music_diffusion_pipeline().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A 1.2 s 16-bit wav at the codec's rate and a 1 s 16 kHz stereo flac (converted by the pipeline)."""
    folder = tmp_path_factory.mktemp("audio")
    riff = folder / "riff.wav"
    sf.write(riff, tune(1.2, SR), SR, subtype="PCM_16")
    stereo = folder / "stereo.flac"
    tone = tune(1.0, sr=16000)
    sf.write(stereo, np.stack([tone, 0.5 * tone]).T, 16000)
    return {"riff": riff, "stereo": stereo}


@pytest.fixture(autouse=True)
def _space_env(monkeypatch, tiny_pipeline_dir):
    monkeypatch.setenv(demo.MODEL_ENV, str(tiny_pipeline_dir))
    for name in (demo.MAX_SECONDS_ENV, demo.MAX_UPLOAD_SECONDS_ENV):
        monkeypatch.delenv(name, raising=False)


def _error(excinfo) -> str:
    return excinfo.value.message


def _pipe_call(prompt, scheduler="dpm", seed=0, **kwargs):
    """What the pipeline itself gives (the Space must give the same)."""
    pipe = demo.load_pipeline()
    demo.use_scheduler(pipe, scheduler)
    return pipe(prompt, generator=torch.Generator().manual_seed(seed), **kwargs)


# --------------------------------------------------------------------------- generate


def test_same_seed_same_audio_and_a_wav_to_download():
    a = demo.generate("a slow waltz for piano", None, 1.0, **FAST, seed=7)
    b = demo.generate("a slow waltz for piano", None, 1.0, **FAST, seed=7)
    c = demo.generate("a slow waltz for piano", None, 1.0, **FAST, seed=8)
    assert a.audio.shape == (1, SR) and a.sampling_rate == SR and a.seconds == pytest.approx(1.0)
    assert np.isfinite(a.audio).all() and np.abs(a.audio).max() > 0
    np.testing.assert_array_equal(a.audio, b.audio)
    assert not np.array_equal(a.audio, c.audio)
    assert a.audio_path != b.audio_path  # each request writes its own folder
    assert a.clap_score is None and "CLAP score" not in a.summary_text  # one candidate: nothing ranked

    assert Path(a.audio_path).name == "a_slow_waltz_for_piano_seed7.wav"
    info = sf.info(a.audio_path)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 1, SR, "PCM_16")
    written, _ = load_audio(a.audio_path)
    assert np.abs(written - np.clip(a.audio, -1, 1)).max() < 1e-4
    assert not list(Path(a.audio_path).parent.glob("*.tmp*"))  # atomic writes leave no temporaries

    image = a.spectrogram
    assert image.mode == "RGB" and image.size[0] > 300 and image.size[1] > 150
    assert np.asarray(image).std() > 10  # a picture, not a blank canvas
    text = a.summary_text
    assert "Generated: 1.00 s" in text and 'text "a slow waltz for piano"' in text
    assert "DPM-Solver++, 3 steps, guidance 3, seed 7" in text and "a_slow_waltz_for_piano_seed7.wav" in text


def test_the_space_gives_what_the_pipeline_gives_with_each_scheduler():
    results = {}
    for key in demo.SCHEDULERS:
        result = demo.generate("jazz", "drums", 0.5, 3, 2.5, key, 1)
        expected = _pipe_call("jazz", key, 1, negative_prompt="drums", audio_length_in_s=0.5, num_inference_steps=3,
                              guidance_scale=2.5)
        assert type(demo.load_pipeline().scheduler).__name__ == demo.SCHEDULERS[key]
        np.testing.assert_allclose(result.audio, expected.audios[0], atol=1e-6)
        assert f"{demo.SCHEDULER_LABELS[key]}, 3 steps, guidance 2.5, seed 1" in result.summary_text
        assert 'negative "drums"' in result.summary_text
        results[key] = result.audio
    assert not np.array_equal(results["dpm"], results["ddim"]) and not np.array_equal(results["dpm"], results["euler"])
    # every scheduler is built from the saved config: back to DPM-Solver++ gives the first result again
    np.testing.assert_array_equal(demo.generate("jazz", "drums", 0.5, 3, 2.5, "dpm", 1).audio, results["dpm"])
    assert demo.load_pipeline().scheduler.config.prediction_type == "v_prediction"
    without_negative = demo.generate("jazz", None, 0.5, 3, 2.5, "dpm", 1)
    assert not np.array_equal(without_negative.audio, results["dpm"])  # the negative prompt steers
    unconditional = demo.generate("", None, 0.5, **FAST, seed=1)
    assert "no text (unconditional)" in unconditional.summary_text


def test_candidates_are_ranked_by_clap_score():
    result = demo.generate("a jazz trio", None, 0.5, **FAST, seed=2, candidates=3)
    expected = _pipe_call("a jazz trio", seed=2, audio_length_in_s=0.5, num_inference_steps=3, guidance_scale=3.0,
                          num_candidates=3)
    np.testing.assert_allclose(result.audio, expected.audios[0], atol=1e-6)
    assert result.clap_score == pytest.approx(float(expected.clap_scores[0]), abs=1e-6)
    assert -1.0 <= result.clap_score <= 1.0
    assert f"**CLAP score {result.clap_score:.3f}**: the best of 3 candidates" in result.summary_text
    single = demo.generate("a jazz trio", None, 0.5, **FAST, seed=2)
    assert single.clap_score is None


# --------------------------------------------------------------------------- audio-to-audio and inpainting


def test_audio_to_audio_follows_the_clip_by_strength(clips):
    riff = str(clips["riff"])
    result = demo.audio_to_audio(riff, "jazz", 0.5, None, 4, 3.0, "ddim", 1)
    assert result.audio.shape == (1, int(1.2 * SR))  # as long as the clip
    x, _ = load_audio(riff)
    expected = _pipe_call("jazz", "ddim", 1, audio=x, sampling_rate=SR, strength=0.5, num_inference_steps=4,
                          guidance_scale=3.0)
    np.testing.assert_allclose(result.audio, expected.audios[0], atol=1e-6)
    assert Path(result.audio_path).name == "riff_a2a_seed1.wav"
    text = result.summary_text
    assert "Audio-to-audio: 1.20 s" in text and "from 'riff.wav' at strength 0.5: the last 2 of 4 steps" in text
    generated = demo.generate("jazz", None, 1.2, **FAST, seed=1)
    assert result.spectrogram.size[1] > 2 * generated.spectrogram.size[1] - 20  # input and output panels
    assert np.asarray(result.spectrogram).std() > 10

    # a low strength stays nearer the clip (as the codec reconstructs it) than a full one
    pipe = demo.load_pipeline()
    with torch.no_grad():
        latents, samples = pipe.encode_audio(x, SR)
        reconstruction = pipe.decode_latents(latents, 90)[0, :, :samples].numpy()
    low = demo.audio_to_audio(riff, "jazz", 0.3, None, 10, 3.0, "dpm", 0).audio
    full = demo.audio_to_audio(riff, "jazz", 1.0, None, 10, 3.0, "dpm", 0).audio
    assert np.abs(low - reconstruction).mean() < 0.75 * np.abs(full - reconstruction).mean()

    stereo = demo.audio_to_audio(str(clips["stereo"]), "jazz", 0.5, None, **FAST, seed=0)  # 16 kHz stereo in
    assert stereo.audio.shape == (1, SR) and "from 'stereo.flac'" in stereo.summary_text


def test_inpainting_regenerates_the_range_and_keeps_the_rest(clips):
    riff = str(clips["riff"])
    a = demo.inpaint(riff, "jazz", 0.4, 0.8, None, **FAST, seed=1)
    b = demo.inpaint(riff, "jazz", 0.4, 0.8, None, **FAST, seed=2)
    assert a.audio.shape == (1, int(1.2 * SR))
    x, _ = load_audio(riff)
    expected = _pipe_call("jazz", seed=1, audio=x, sampling_rate=SR, inpaint_start_s=0.4, inpaint_end_s=0.8,
                          num_inference_steps=3, guidance_scale=3.0)
    np.testing.assert_allclose(a.audio, expected.audios[0], atol=1e-6)
    # the seed changes the range only: before it the output is the same, after it nearly
    diff = np.abs(a.audio - b.audio)[0]
    assert diff[: int(0.35 * SR)].max() < 1e-6
    assert diff[int(0.45 * SR): int(0.75 * SR)].max() > 1e-3
    assert diff[int(1.0 * SR):].max() < 1e-4
    assert "Inpainted: 1.20 s" in a.summary_text and "regenerated 0.40–0.80 s of 'riff.wav' (1.20 s)" in a.summary_text
    assert Path(a.audio_path).name == "riff_inpaint_seed1.wav"
    assert np.asarray(a.spectrogram).std() > 10 and a.spectrogram.size[1] > 400  # input and output panels

    to_the_end = demo.inpaint(riff, "jazz", 0.6, 5.0, None, **FAST, seed=1)  # an end past the clip's: to its end
    assert "regenerated 0.60–1.20 s" in to_the_end.summary_text


def test_page_handlers_give_their_outputs(clips):
    calls = []

    def progress(value, desc=None, unit=None):
        calls.append(value)

    shared = ["techno", "", 3, 3.0, "euler", 3, 2]
    outputs = demo.generate_for_page(*shared, 0.5, progress=progress)
    assert len(outputs) == 4
    audio_path, spectrogram, summary, download = outputs
    assert Path(audio_path).is_file() and download == audio_path and audio_path.endswith(".wav")
    assert spectrogram.size[0] > 300 and "Generated: 0.50 s" in summary and "the best of 2 candidates" in summary
    steps = [c for c in calls if isinstance(c, tuple)]
    assert steps and steps[-1] == (3, 3)  # the progress bar reaches its end

    calls.clear()
    outputs = demo.audio_to_audio_for_page(*shared, str(clips["riff"]), 0.5, progress=progress)
    assert len(outputs) == 4 and "Audio-to-audio: 1.20 s" in outputs[2]
    assert [c for c in calls if isinstance(c, tuple)][-1] == (2, 2)  # strength 0.5 of 3 steps: 2 run
    outputs = demo.inpaint_for_page(*shared, str(clips["riff"]), 0.2, 0.6, progress=progress)
    assert len(outputs) == 4 and "Inpainted: 1.20 s" in outputs[2] and Path(outputs[0]).is_file()


# --------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize("content, message", [
    (None, "{missing}"),
    (b"", "Could not read 'song.wav' as audio: empty file (0 bytes). Upload a wav, flac, ogg, opus, mp3 or aiff file."),
    (b"this is not audio at all" * 40, "Could not read 'song.wav' as audio: unreadable audio file"),
    ("truncated", "Could not read 'song.wav' as audio: truncated file"),
    ("silent", "'song.wav' is silent: upload or record a clip with audible music."),
    ("short", "'song.wav' is 0.20 s long; at least 0.5 s is needed."),
    ("nan", "'song.wav' has 3 NaN or infinite samples: upload a clip of finite audio."),
])  # fmt: skip
@pytest.mark.parametrize("action", ["audio_to_audio", "inpaint"])
def test_bad_uploads_give_a_one_line_message(tmp_path, content, message, action):
    path = tmp_path / "song.wav"
    if content == "truncated":
        sf.write(path, tune(1.0, SR), SR, subtype="PCM_16")
        path.write_bytes(path.read_bytes()[:20000])
    elif content == "silent":
        sf.write(path, np.zeros(SR, np.float32), SR)
    elif content == "short":
        sf.write(path, tune(0.2, SR), SR)
    elif content == "nan":
        x = tune(1.0, SR)
        x[[10, 20, 30]] = np.nan
        sf.write(path, x, SR, subtype="FLOAT")
    elif content is not None:
        path.write_bytes(content)
    upload = None if content is None else str(path)
    with pytest.raises(gr.Error) as excinfo:
        if action == "audio_to_audio":
            demo.audio_to_audio(upload, "a waltz", 0.5, **FAST)
        else:
            demo.inpaint(upload, "a waltz", 0.2, 0.6, **FAST)
    missing = "Upload or record a clip first." if action == "audio_to_audio" else "Upload a clip to inpaint first."
    text = _error(excinfo)
    assert text.startswith(message.format(missing=missing))
    assert "\n" not in text and "Traceback" not in text
    assert str(tmp_path) not in text  # no server paths in user-facing text


def test_overlong_upload_and_settings_mistakes(clips, monkeypatch):
    riff = str(clips["riff"])
    monkeypatch.setenv(demo.MAX_UPLOAD_SECONDS_ENV, "1")
    for call in (lambda: demo.audio_to_audio(riff, "x", 0.5, **FAST), lambda: demo.inpaint(riff, "x", 0.2, 0.6, **FAST)):
        with pytest.raises(gr.Error) as excinfo:
            call()
        assert _error(excinfo) == "'riff.wav' is 1.2 s long; this Space accepts up to 1 s. Trim it and try again."
    monkeypatch.delenv(demo.MAX_UPLOAD_SECONDS_ENV)

    generate_cases = [
        (dict(duration=0), "Duration must be more than 0 s and at most 30 s, got 0 s."),
        (dict(duration=31), "Duration must be more than 0 s and at most 30 s, got 31 s."),
        (dict(steps=0), "Steps must be from 1 to 200, got 0."),
        (dict(steps=2.5), "Steps must be a finite whole number, got 2.5."),
        (dict(guidance=-1), "Guidance must be 0 or more, got -1."),
        (dict(guidance=float("nan")), "Guidance must be a finite number, got nan."),
        (dict(scheduler="pndm"), "Scheduler must be one of dpm, ddim, euler, got 'pndm'."),
        (dict(seed=None), "Seed must be a number, got None."),
        (dict(seed=-3), "Seed must be a whole number from 0 to 2^63 - 1, got -3."),
        (dict(candidates=9), "Candidates must be from 1 to 8, got 9."),
        (dict(prompt="", candidates=2),
         "Candidates are ranked by their CLAP score against the prompt: write a prompt or set Candidates to 1."),
        # the pipeline's own GeneratorError, shown as it is (the tiny CLAP reads at most 16 tokens)
        (dict(prompt="word " * 40), "prompt 'word word word word word word word word '... is longer than 16 tokens"),
        (dict(negative_prompt="drums " * 40),
         "prompt 'drums drums drums drums drums drums drum'... is longer than 16 tokens"),
    ]
    for changes, message in generate_cases:
        arguments = {"prompt": "a waltz", "negative_prompt": None, "duration": 0.5, **FAST, "seed": 0, **changes}
        with pytest.raises(gr.Error) as excinfo:
            demo.generate(**arguments)
        assert _error(excinfo) == message

    clip_cases = [
        (lambda: demo.audio_to_audio(riff, "x", 0, **FAST), "Strength must be more than 0 and at most 1, got 0."),
        (lambda: demo.audio_to_audio(riff, "x", 1.5, **FAST), "Strength must be more than 0 and at most 1, got 1.5."),
        (lambda: demo.inpaint(riff, "x", 0.6, 0.6, **FAST),
         "The range to regenerate must end after it starts, got 0.6 s to 0.6 s."),
        (lambda: demo.inpaint(riff, "x", -1, 0.6, **FAST), "Start (s) must be 0 or more, got -1."),
        (lambda: demo.inpaint(riff, "x", 1.5, 2.0, **FAST),
         "The range to regenerate starts at 1.5 s, after the end of 'riff.wav' (1.20 s): choose an earlier start."),
    ]
    for call, message in clip_cases:
        with pytest.raises(gr.Error) as excinfo:
            call()
        assert _error(excinfo) == message


def test_missing_or_broken_model_is_a_message_and_the_page_still_builds(tmp_path, monkeypatch):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "train.yaml").write_text("steps: 1\n")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model_index.json").write_text(json.dumps({"_class_name": "NoSuchPipeline"}))
    for folder, start in ((tmp_path / "absent", "No latent diffusion model: the folder"),
                          (tmp_path / "training", "No latent diffusion model yet:"),
                          (tmp_path / "broken", "Could not load the latent diffusion model at")):
        monkeypatch.setenv(demo.MODEL_ENV, str(folder))
        with pytest.raises(gr.Error) as excinfo:
            demo.generate("a waltz", None, 0.5, **FAST)
        assert _error(excinfo).startswith(start) and "\n" not in _error(excinfo)
        if folder.name != "broken":
            assert demo.MODEL_ENV in _error(excinfo)
        blocks = demo.build_demo()
        buttons = {c.elem_id: c for c in blocks.blocks.values() if getattr(c, "elem_id", None) in
                   ("generate", "transform", "inpaint")}
        assert len(buttons) == 3 and all(b.interactive is False for b in buttons.values())
        info = next(c for c in blocks.blocks.values() if getattr(c, "elem_id", None) == "model-info")
        assert info.value.startswith(f"**{start}")
    monkeypatch.delenv(demo.MODEL_ENV)
    assert demo.model_folder().parts[-2:] == ("pipelines", "music-diffusion")


def test_page_builds_with_the_components_the_browser_test_uses(tiny_pipeline_dir):
    from hf_musiccodec.cli import diffuse_command

    assert demo.SCHEDULERS is diffuse_command.SCHEDULERS  # the CLI's samplers, not a second list
    assert set(demo.SCHEDULER_LABELS) == set(demo.SCHEDULERS)
    blocks = demo.build_demo()
    by_id = {c.elem_id: c for c in blocks.blocks.values() if getattr(c, "elem_id", None)}
    assert {"model-info", "prompt", "negative-prompt", "steps", "guidance", "scheduler", "seed", "candidates",
            "duration", "generate", "generated-audio", "generated-spectrogram", "generated-summary",
            "generated-download", "a2a-input", "strength", "transform", "transformed-audio",
            "transformed-spectrogram", "transformed-summary", "transformed-download", "inpaint-input",
            "inpaint-start", "inpaint-end", "inpaint", "inpainted-audio", "inpainted-spectrogram",
            "inpainted-summary", "inpainted-download"} <= set(by_id)
    assert by_id["a2a-input"].sources == ["upload", "microphone"] and by_id["inpaint-input"].sources == ["upload"]
    assert [value for _, value in by_id["scheduler"].choices] == ["dpm", "ddim", "euler"]
    assert by_id["scheduler"].value == "dpm" and by_id["generate"].interactive is not False
    assert "tiny-music-diffusion" in by_id["model-info"].value and "16 tokens" in by_id["model-info"].value
    assert demo.load_pipeline(tiny_pipeline_dir) is demo.load_pipeline(str(tiny_pipeline_dir) + os.sep)


def test_space_metadata_and_requirements():
    check_space_metadata_and_requirements(SPACE, gr.__version__)


# --------------------------------------------------------------------------- browser


def _fill_settings(page, prompt: str, seed: int) -> None:
    page.wait_for_selector("#generate", timeout=20000)
    page.fill("#prompt textarea", prompt)
    browser.set_number(page, "steps", 3)
    browser.set_number(page, "seed", seed)


def _run_and_wait(page, button: str, prefix: str, expected: str) -> str:
    page.click(f"#{button}")
    page.locator(f"#{prefix}-summary").filter(has_text=expected).wait_for(timeout=60000)
    browser.wait_for_player(page, f"{prefix}-audio")
    return page.inner_text(f"#{prefix}-summary")


@pytest.mark.timeout(300)
def test_space_in_headless_chromium(tiny_pipeline_dir, clips, tmp_path):
    sync_playwright = browser.sync_playwright_or_skip()

    garbage = tmp_path / "not_audio.wav"
    garbage.write_bytes(b"definitely not a wav file" * 50)
    env = {demo.MODEL_ENV: str(tiny_pipeline_dir), demo.MAX_SECONDS_ENV: None, demo.MAX_UPLOAD_SECONDS_ENV: None}
    with browser.serve_space(SPACE / "app.py", tmp_path, env, timeout=120) as space, \
            browser.chromium_page(sync_playwright, space.url, height=1500) as page:
        page.wait_for_selector("#generate", timeout=20000)
        assert "tiny-music-diffusion" in page.inner_text("#model-info")

        # 1. Generate: a prompt, the player, the spectrogram and the wav (the same music as the function)
        _fill_settings(page, "a slow waltz for piano", 5)
        browser.set_number(page, "duration", 1)
        summary = _run_and_wait(page, "generate", "generated", "Generated: 1.00 s")
        assert 'text "a slow waltz for piano"' in summary and "DPM-Solver++, 3 steps, guidance 3, seed 5" in summary
        browser.assert_image_shown(page, "generated-spectrogram")
        name, data = browser.download(page, "generated-download")
        assert name == "a_slow_waltz_for_piano_seed5.wav"
        wav = tmp_path / "downloaded.wav"
        wav.write_bytes(data)
        audio, sr = load_audio(wav)
        assert sr == SR and audio.shape == (1, SR)
        expected = demo.generate("a slow waltz for piano", None, 1.0, **FAST, seed=5).audio  # the page's other defaults
        assert np.abs(audio - np.clip(expected, -1, 1)).max() < 1e-3  # same seed: the same music
        space.mark("generated")

        # 2. two candidates and a negative prompt: the CLAP score
        page.locator("#negative-prompt").locator("textarea, input").first.fill("drums")
        browser.set_number(page, "candidates", 2)
        summary = _run_and_wait(page, "generate", "generated", "the best of 2 candidates")
        assert "CLAP score" in summary and 'negative "drums"' in summary, summary
        reference = demo.generate("a slow waltz for piano", "drums", 1.0, **FAST, seed=5, candidates=2)
        assert f"CLAP score {reference.clap_score:.3f}" in summary, summary
        space.mark("candidates")

        browser.screenshot(page, tmp_path / "latent_diffusion_space.png", SPACE)

        # 3. Audio-to-audio with another scheduler: input and output spectrograms
        browser.set_number(page, "candidates", 1)
        page.locator("#scheduler input").click()
        page.get_by_role("option", name="DDIM").click()
        page.get_by_role("tab", name="Audio-to-audio").click()
        page.locator("#strength").wait_for(state="visible", timeout=20000)
        browser.upload(page, "a2a-input", clips["riff"])
        browser.set_number(page, "strength", 0.5)
        summary = _run_and_wait(page, "transform", "transformed", "Audio-to-audio: 1.20 s")
        assert "from 'riff.wav' at strength 0.5" in summary and "DDIM, 3 steps" in summary, summary
        browser.assert_image_shown(page, "transformed-spectrogram")
        space.mark("audio-to-audio")

        # 4. Inpainting a range
        page.get_by_role("tab", name="Inpainting").click()
        page.locator("#inpaint-start").wait_for(state="visible", timeout=20000)
        browser.upload(page, "inpaint-input", clips["riff"])
        browser.set_number(page, "inpaint-start", 0.2)
        browser.set_number(page, "inpaint-end", 0.6)
        summary = _run_and_wait(page, "inpaint", "inpainted", "Inpainted: 1.20 s")
        assert "regenerated 0.20–0.60 s of 'riff.wav'" in summary, summary
        browser.assert_image_shown(page, "inpainted-spectrogram")
        space.mark("inpainted")

        # 5. an unreadable upload: the one-line message in a toast, no crash
        page.reload()
        _fill_settings(page, "a waltz", 0)
        page.get_by_role("tab", name="Audio-to-audio").click()
        page.locator("#strength").wait_for(state="visible", timeout=20000)
        browser.upload(page, "a2a-input", garbage)
        page.click("#transform")
        toast = browser.wait_for_error_toast(page, "Could not read 'not_audio.wav' as audio")
        assert "Traceback" not in toast.first.inner_text()
        space.mark("error shown")
