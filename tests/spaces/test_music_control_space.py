"""The music control Space (spaces/music-control): Music ControlNet and DITTO with tiny random
pipelines, and the real page in a headless Chromium driven by Playwright."""

from __future__ import annotations


import numpy as np
import pytest
import soundfile as sf

gr = pytest.importorskip("gradio", reason="the Space needs the 'spaces' extra: pip install -e '.[spaces]'")
pytest.importorskip("matplotlib", reason="the Space needs the 'spaces' extra: pip install -e '.[spaces]'")

from hf_musiccodec.audio.io import load_audio  # noqa: E402
from tests.spaces import browser  # noqa: E402
from tests.spaces.space_files import REPO, check_space_metadata_and_requirements, load_space_module  # noqa: E402

SPACE = REPO / "spaces" / "music-control"
SR = 24000

demo = load_space_module(SPACE, "music_control_demo.py", "music_control_space_demo")
FAST = dict(steps=2, guidance=3.0)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    from hf_musiccodec import DittoPipeline
    from hf_musiccodec.testing.tiny import tiny_music_controlnet_pipeline, tiny_music_diffusion_pipeline

    root = tmp_path_factory.mktemp("models")
    tiny_music_controlnet_pipeline().save_pretrained(root / "tiny-controlnet")
    b = tiny_music_diffusion_pipeline()
    DittoPipeline(**b.components, latent_mean=b.config.latent_mean,
                  latent_std=b.config.latent_std).save_pretrained(root / "tiny-ditto")
    return {"controlnet": root / "tiny-controlnet", "ditto": root / "tiny-ditto"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A 1.2 s tune: a note every 0.25 s, decaying."""
    t = np.arange(int(1.2 * SR)) / SR
    freqs = 220.0 * 2 ** (np.floor(t * 4) % 5 / 12)
    tune = 0.3 * np.sin(2 * np.pi * np.cumsum(freqs) / SR) * np.exp(-3 * (t % 0.25))
    path = tmp_path_factory.mktemp("audio") / "tune.wav"
    sf.write(path, tune.astype(np.float32), SR, subtype="PCM_16")
    return path


@pytest.fixture(autouse=True)
def _space_env(monkeypatch, model_dirs):
    monkeypatch.setenv(demo.CONTROLNET_ENV, str(model_dirs["controlnet"]))
    monkeypatch.setenv(demo.DITTO_ENV, str(model_dirs["ditto"]))


def test_controlnet_keeps_chosen_controls_over_a_range(reference, monkeypatch):
    pipe = demo.load_controlnet()
    calls = []
    original = type(pipe).__call__

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "__call__", spy)
    result = demo.controlnet_generate(str(reference), "a waltz", melody=False, dynamics=True, rhythm=True,
                                      start=0.2, end=0.8, strength=0.8, seed=3, **FAST)
    assert result.controls == ["dynamics", "rhythm"]
    (kwargs,) = calls
    assert "melody" not in kwargs and set(kwargs["control_mask"]) == {"dynamics", "rhythm"}
    mask = kwargs["control_mask"]["dynamics"]
    t = (np.arange(mask.size) + 0.5) / pipe.control_frame_rate
    assert mask.any() and not mask.all() and np.array_equal(mask, (t >= 0.2) & (t < 0.8))
    assert kwargs["controlnet_conditioning_scale"] == 0.8
    audio, sr = load_audio(result.audio_path)
    assert sr == pipe.sampling_rate and abs(audio.shape[-1] / sr - 1.2) < 0.05
    assert result.plot.size[0] > 300 and result.plot.size[1] > 200
    assert "kept dynamics, rhythm of 'tune.wav' from 0.20 to 0.80 s" in result.summary_text
    again = demo.controlnet_generate(str(reference), "a waltz", False, True, True, 0.2, 0.8, 0.8, seed=3, **FAST)
    assert np.array_equal(again.audio, result.audio)  # same seed, same music


def test_ditto_gives_a_loss_per_optimisation_step():
    result = demo.ditto_generate("a slow chorale", "-40, -25, -10, -30", duration=1.0, optimization_steps=2,
                                 lr=0.05, seed=1, **FAST)
    assert len(result.losses) == 3 and all(np.isfinite(result.losses))
    assert result.target.tolist() == [-40, -25, -10, -30]
    assert result.loudness.size > 4 and np.isfinite(result.loudness).all()
    assert result.loss_plot.size[0] > 300 and result.loudness_plot.size[0] > 300
    audio, sr = load_audio(result.audio_path)
    assert abs(audio.shape[-1] / sr - 1.0) < 0.05


@pytest.mark.parametrize("call, message", [
    (lambda ref, bad: demo.controlnet_generate(None, "x", **FAST), "Upload or record a reference first."),
    (lambda ref, bad: demo.controlnet_generate(str(bad), "x", **FAST), "Could not read 'junk.wav' (the reference)"),
    (lambda ref, bad: demo.controlnet_generate(str(ref), "x", False, False, False, **FAST), "Pick at least one"),
    (lambda ref, bad: demo.controlnet_generate(str(ref), "x", start=0.9, end=0.3, **FAST), "must end after"),
    (lambda ref, bad: demo.controlnet_generate(str(ref), "x", start=5, end=6, **FAST), "after the end of 'tune.wav'"),
    (lambda ref, bad: demo.ditto_generate("x", "-40, loud", duration=1, **FAST), "numbers in dB separated by commas"),
    (lambda ref, bad: demo.ditto_generate("x", "-40", duration=1, **FAST), "at least 2 finite dB values"),
    (lambda ref, bad: demo.ditto_generate("x", "-40, -20", duration=1, lr=0, **FAST), "Learning rate must be above 0"),
    (lambda ref, bad: demo.ditto_generate("x", "-40, -20", duration=1, seed=-1, **FAST), "Seed must be"),
])
def test_bad_input_is_a_one_line_message(reference, tmp_path, call, message):
    bad = tmp_path / "junk.wav"
    bad.write_bytes(b"not audio at all" * 40)
    with pytest.raises(gr.Error) as excinfo:
        call(reference, bad)
    assert message in excinfo.value.message and "\n" not in excinfo.value.message


def test_pipeline_refusal_is_a_one_line_message():
    too_long = "a " * 40 + "waltz"  # the tiny CLAP takes at most 16 tokens
    with pytest.raises(gr.Error) as excinfo:
        demo.ditto_generate(too_long, "-40, -20", duration=1, optimization_steps=1, **FAST)
    assert excinfo.value.title == "Cannot generate" and "\n" not in excinfo.value.message


def test_space_metadata_and_requirements():
    check_space_metadata_and_requirements(SPACE, gr.__version__)


@pytest.mark.timeout(300)
def test_space_in_headless_chromium(model_dirs, reference, tmp_path):
    sync_playwright = browser.sync_playwright_or_skip()
    env = {demo.CONTROLNET_ENV: str(model_dirs["controlnet"]), demo.DITTO_ENV: str(model_dirs["ditto"])}
    with browser.serve_space(SPACE / "app.py", tmp_path, env, timeout=120) as space, \
            browser.chromium_page(sync_playwright, space.url, height=1500) as page:
        page.wait_for_selector("#controlnet-generate", timeout=20000)
        assert "tiny-controlnet" in page.inner_text("#controlnet-info")

        # 1. ControlNet: a reference, melody off, a range; the output beside the reference, the plot
        browser.upload(page, "reference", reference)
        page.fill("#controlnet-prompt textarea", "a waltz")
        page.locator("#keep-melody input").uncheck()
        browser.set_number(page, "control-start", 0.2)
        browser.set_number(page, "control-end", 0.8)
        browser.set_number(page, "controlnet-steps", 2)
        page.click("#controlnet-generate")
        page.locator("#controlnet-summary").filter(has_text="kept dynamics, rhythm").wait_for(timeout=60000)
        browser.wait_for_player(page, "controlnet-audio")
        browser.wait_for_player(page, "controlnet-reference")
        browser.assert_image_shown(page, "controlnet-plot")
        name, data = browser.download(page, "controlnet-download")
        assert name == "controlnet_seed0.wav" and data[:4] == b"RIFF"
        space.mark("controlnet")

        browser.screenshot(page, tmp_path / "music_control_space.png", SPACE)

        # 2. DITTO: the drawn curve, the loss plot
        page.get_by_role("tab", name="DITTO").click()
        page.locator("#ditto-run").wait_for(state="visible", timeout=20000)
        page.fill("#ditto-prompt textarea", "a chorale")
        page.locator("#ditto-curve").locator("textarea, input").first.fill("-40, -20, -30")
        browser.set_number(page, "ditto-duration", 1)
        browser.set_number(page, "ditto-opt-steps", 2)
        browser.set_number(page, "ditto-steps", 2)
        page.click("#ditto-run")
        page.locator("#ditto-summary").filter(has_text="2 optimisation steps").wait_for(timeout=120000)
        browser.assert_image_shown(page, "ditto-loss")
        browser.assert_image_shown(page, "ditto-loudness")
        browser.wait_for_player(page, "ditto-audio")
        space.mark("ditto")
