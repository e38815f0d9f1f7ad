"""The VampNet Space (spaces/vampnet): its functions with the tiny random pipeline, and the real
page in a headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import re
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

SPACE = REPO / "spaces" / "vampnet"
SR = 24000  # the tiny pipeline's codec: 75 frames/s, 2 coarse codebooks of 16 tokens (4 bits)

demo = load_space_module(SPACE, "vampnet_demo.py", "vampnet_space_demo")


@pytest.fixture(scope="module")
def tiny_pipeline_dir(tmp_path_factory):
    from hf_musiccodec.testing.tiny import tiny_vampnet_pipeline

    path = tmp_path_factory.mktemp("models") / "tiny-vampnet"
    tiny_vampnet_pipeline().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 1.2 s 16-bit wav at the codec's rate (90 frames)."""
    path = tmp_path_factory.mktemp("audio") / "riff.wav"
    sf.write(path, tune(1.2, SR), SR, subtype="PCM_16")
    return path


@pytest.fixture(autouse=True)
def _space_env(monkeypatch, tiny_pipeline_dir):
    monkeypatch.setenv(demo.MODEL_ENV, str(tiny_pipeline_dir))
    monkeypatch.delenv(demo.MAX_UPLOAD_SECONDS_ENV, raising=False)


def _error(excinfo) -> str:
    return excinfo.value.message


# a recipe: keep 0.2 s at each end and every 4th frame in between, codebook 0 only there
RECIPE = dict(prefix=0.2, suffix=0.2, periodic=4, periodic_width=1, upper_codebook_mask=1, beat_width=0,
              onset_width=0, dropout=0)


# --------------------------------------------------------------------------- mask and vamp


def test_preview_shows_the_mask_that_vamp_uses(clip):
    preview = demo.preview_mask(str(clip), **RECIPE, seed=3)
    mask = preview.mask
    assert mask.shape == (1, 2, 90) and mask.dtype == torch.bool
    kept_frames = (~mask[0, 0]).nonzero().flatten().tolist()
    assert kept_frames[:15] == list(range(15)) and kept_frames[-15:] == list(range(75, 90))
    assert set(range(16, 75, 4)) <= set(kept_frames) and 17 not in kept_frames
    assert bool(mask[0, 1].all())  # the upper codebook is generated everywhere
    assert preview.bits_per_second == pytest.approx((~mask).sum().item() * 4 / 1.2)
    assert f"{preview.bits_per_second:.1f} bits/s" in preview.text
    image = preview.image
    assert image.mode == "RGB" and image.size[0] > 300 and np.asarray(image).std() > 10

    result = demo.vamp(str(clip), **RECIPE, steps=4, seed=3)
    assert torch.equal(result.mask, mask) and result.bits_per_second == pytest.approx(preview.bits_per_second)
    assert result.audio.shape == (1, int(1.2 * SR)) and result.sampling_rate == SR
    assert np.isfinite(result.audio).all() and np.abs(result.audio).max() > 0

    # the Space is the pipeline: the same mask and seed give the same audio
    pipe = demo.load_pipeline()
    x, _ = load_audio(clip)
    expected = pipe(x, sampling_rate=SR, mask=mask, num_inference_steps=4,
                    generator=torch.Generator().manual_seed(3)).audios[0]
    np.testing.assert_allclose(result.audio, expected, atol=1e-6)
    again = demo.vamp(str(clip), **RECIPE, steps=4, seed=3)
    np.testing.assert_array_equal(result.audio, again.audio)
    other = demo.vamp(str(clip), **RECIPE, steps=4, seed=4)
    assert not np.array_equal(result.audio, other.audio)
    assert result.audio_path != again.audio_path  # each request writes its own folder

    assert Path(result.audio_path).name == "riff_vamp_seed3.wav"
    info = sf.info(result.audio_path)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 1, int(1.2 * SR), "PCM_16")
    written, _ = load_audio(result.audio_path)
    assert np.abs(written - np.clip(result.audio, -1, 1)).max() < 1e-4
    assert not list(Path(result.audio_path).parent.glob("*.tmp*"))  # atomic writes leave no temporaries
    assert result.spectrogram.size[1] > 2 * result.grid.size[1]  # input and output panels
    assert np.asarray(result.grid).std() > 10 and np.asarray(result.spectrogram).std() > 10
    text = result.summary_text
    assert "Vamped: 1.20 s" in text and f"**{preview.bits_per_second:.1f} bits/s**" in text
    assert "prefix 0.2 s, suffix 0.2 s, periodic 4 (width 1)" in text and "4 steps, seed 3" in text


def test_recipes_keep_different_tokens(clip):
    def kept(**changes):
        return demo.preview_mask(str(clip), **{**RECIPE, **changes}, seed=0).bits_per_second

    base = kept()
    assert kept(upper_codebook_mask=2) > base  # codebook 1 kept too where frames are kept
    assert kept(upper_codebook_mask=9) == kept(upper_codebook_mask=2)  # capped at the model's codebooks
    assert kept(prefix=0, suffix=0, periodic=0) == 0  # nothing kept: everything generated
    assert kept(dropout=1) == 0
    assert kept(prefix=0, suffix=0, periodic=0, onset_width=40) > 0  # the tune's onsets keep frames
    random_a = demo.preview_mask(str(clip), **{**RECIPE, "dropout": 0.5}, seed=1).mask
    random_b = demo.preview_mask(str(clip), **{**RECIPE, "dropout": 0.5}, seed=2).mask
    assert not torch.equal(random_a, random_b)  # the seed draws the dropout


def test_text_prompt_changes_the_result(clip):
    # everything generated: the tiny random model's condition moves its logits only a little
    recipe = {**RECIPE, "prefix": 0, "suffix": 0, "periodic": 0}
    plain = demo.vamp(str(clip), **recipe, steps=8, seed=0)
    jazz = demo.vamp(str(clip), **recipe, steps=8, seed=0, prompt="a jazz trio")
    assert not np.array_equal(plain.audio, jazz.audio) and 'text "a jazz trio"' in jazz.summary_text


def test_unloop_plays_the_passes_one_after_another(clip):
    result = demo.unloop(str(clip), **RECIPE, steps=3, seed=1, num_loops=3, feedback=0.8)
    assert result.audio.shape == (1, 3 * int(1.2 * SR)) and result.mask.shape == (1, 2, 270)
    assert Path(result.audio_path).name == "riff_loop3_seed1.wav"
    assert "3 loops: 3.60 s" in result.summary_text and "3 loops, feedback 0.8" in result.summary_text
    assert "bits/s" in result.summary_text
    again = demo.unloop(str(clip), **RECIPE, steps=3, seed=1, num_loops=3, feedback=0.8)
    np.testing.assert_array_equal(result.audio, again.audio)
    # feedback 1 keeps everything the first pass generated: the later passes repeat it
    frozen = demo.unloop(str(clip), **RECIPE, steps=3, seed=1, num_loops=3, feedback=1.0)
    independent = demo.unloop(str(clip), **RECIPE, steps=3, seed=1, num_loops=3, feedback=0.0)
    assert not frozen.mask[:, :, 90:].any() and independent.mask[:, :, 90:].any()
    assert not np.array_equal(frozen.audio, independent.audio)


def test_page_handlers_give_their_outputs(clip):
    calls = []

    def progress(value, desc=None, unit=None):
        calls.append(value)

    values = list(RECIPE.values())
    image, text = demo.preview_for_page(str(clip), *values, 0)
    assert image.size[0] > 300 and "bits/s" in text
    outputs = demo.vamp_for_page(str(clip), *values, 3, 0, "", progress=progress)
    assert len(outputs) == 5
    audio_path, spectrogram, grid, summary, download = outputs
    assert Path(audio_path).is_file() and download == audio_path and "Vamped: 1.20 s" in summary
    steps = [c for c in calls if isinstance(c, tuple)]
    assert steps and steps[-1][0] == steps[-1][1]  # the progress bar reaches its end
    outputs = demo.loop_for_page(str(clip), *values, 3, 0, "", 2, 0.5, progress=progress)
    assert len(outputs) == 5 and "2 loops: 2.40 s" in outputs[3]


# --------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize("content, message", [
    (None, "Upload or record a clip first."),
    (b"", "Could not read 'song.wav' as audio: empty file (0 bytes). Upload a wav, flac, ogg, opus, mp3 or aiff file."),
    (b"this is not audio at all" * 40, "Could not read 'song.wav' as audio: unreadable audio file"),
    ("truncated", "Could not read 'song.wav' as audio: truncated file"),
    ("silent", "'song.wav' is silent: upload or record a clip with audible music."),
    ("short", "'song.wav' is 0.20 s long; at least 0.5 s is needed."),
    ("nan", "'song.wav' has 3 NaN or infinite samples: upload a clip of finite audio."),
])  # fmt: skip
@pytest.mark.parametrize("action", ["preview", "vamp", "loop"])
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
    function = {"preview": demo.preview_mask, "vamp": demo.vamp, "loop": demo.unloop}[action]
    with pytest.raises(gr.Error) as excinfo:
        function(upload, **RECIPE)
    text = _error(excinfo)
    assert text.startswith(message)
    assert "\n" not in text and "Traceback" not in text
    assert str(tmp_path) not in text  # no server paths in user-facing text


def test_overlong_upload_and_settings_mistakes(clip, monkeypatch):
    monkeypatch.setenv(demo.MAX_UPLOAD_SECONDS_ENV, "1")
    with pytest.raises(gr.Error) as excinfo:
        demo.vamp(str(clip), **RECIPE)
    assert _error(excinfo) == "'riff.wav' is 1.2 s long; this Space accepts up to 1 s. Trim it and try again."
    monkeypatch.delenv(demo.MAX_UPLOAD_SECONDS_ENV)

    cases = [
        (dict(prefix=-1), "Prefix (s) must be 0 or more, got -1."),
        (dict(suffix=None), "Suffix (s) must be a number, got None."),
        (dict(periodic=2.5), "Periodic prompt must be a finite whole number, got 2.5."),
        (dict(periodic_width=0), "Periodic width must be 1 or more, got 0."),
        (dict(onset_width=float("nan")), "Onset mask width (ms) must be a finite number, got nan."),
        (dict(dropout=1.5), "Dropout must be from 0 to 1, got 1.5."),
        (dict(steps=0), "Steps must be from 1 to 256, got 0."),
        (dict(seed=-3), "Seed must be a whole number from 0 to 2^63 - 1, got -3."),
    ]
    for changes, message in cases:
        with pytest.raises(gr.Error) as excinfo:
            demo.vamp(str(clip), **{**RECIPE, **changes})
        assert _error(excinfo) == message
    with pytest.raises(gr.Error) as excinfo:
        demo.unloop(str(clip), **RECIPE, num_loops=0)
    assert _error(excinfo) == "Loops must be from 1 to 16, got 0."
    with pytest.raises(gr.Error) as excinfo:
        demo.unloop(str(clip), **RECIPE, feedback=2)
    assert _error(excinfo) == "Feedback must be from 0 to 1, got 2."


def test_a_model_without_a_text_condition_refuses_a_prompt(clip, tmp_path, monkeypatch):
    from hf_musiccodec.testing.tiny import tiny_vampnet_pipeline

    folder = tmp_path / "no-clap"
    tiny_vampnet_pipeline(with_clap=False, with_coarse_to_fine=False).save_pretrained(folder)
    monkeypatch.setenv(demo.MODEL_ENV, str(folder))
    with pytest.raises(gr.Error) as excinfo:
        demo.vamp(str(clip), **RECIPE, prompt="jazz")
    assert _error(excinfo) == "This model was trained without a text condition: clear the text prompt."
    result = demo.vamp(str(clip), **RECIPE, steps=2)  # without the coarse-to-fine model: 2 codebooks decoded
    assert result.audio.shape == (1, int(1.2 * SR))
    blocks = demo.build_demo()
    prompt = next(c for c in blocks.blocks.values() if getattr(c, "elem_id", None) == "prompt")
    assert prompt.interactive is False


def test_missing_model_is_a_message_and_the_page_still_builds(tmp_path, monkeypatch, clip):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "train.yaml").write_text("steps: 1\n")
    for folder, start in ((tmp_path / "absent", "No VampNet model: the folder"),
                          (tmp_path / "training", "No VampNet model yet:")):
        monkeypatch.setenv(demo.MODEL_ENV, str(folder))
        with pytest.raises(gr.Error) as excinfo:
            demo.vamp(str(clip), **RECIPE)
        assert _error(excinfo).startswith(start) and demo.MODEL_ENV in _error(excinfo)
        assert "\n" not in _error(excinfo)
        blocks = demo.build_demo()
        buttons = {c.elem_id: c for c in blocks.blocks.values() if getattr(c, "elem_id", None) in
                   ("vamp", "loop", "show-mask")}
        assert len(buttons) == 3 and all(b.interactive is False for b in buttons.values())
    monkeypatch.delenv(demo.MODEL_ENV)
    assert demo.model_folder().parts[-2:] == ("pipelines", "vampnet")


def test_page_builds_with_the_components_the_browser_test_uses(tiny_pipeline_dir):
    blocks = demo.build_demo()
    by_id = {c.elem_id: c for c in blocks.blocks.values() if getattr(c, "elem_id", None)}
    assert {"input-audio", "prefix", "suffix", "periodic", "periodic-width", "upper-codebook-mask", "beat-width",
            "onset-width", "dropout", "steps", "seed", "prompt", "show-mask", "mask-grid", "mask-info", "vamp",
            "vamped-audio", "vamped-spectrogram", "vamped-grid", "vamped-summary", "vamped-download", "loops",
            "feedback", "loop", "looped-audio", "looped-summary", "model-info"} <= set(by_id)
    assert by_id["input-audio"].sources == ["upload", "microphone"]
    assert by_id["upper-codebook-mask"].maximum == 2 and by_id["prompt"].interactive is True
    assert demo.load_pipeline(tiny_pipeline_dir) is demo.load_pipeline(str(tiny_pipeline_dir) + os.sep)


def test_space_metadata_and_requirements():
    check_space_metadata_and_requirements(SPACE, gr.__version__)


# --------------------------------------------------------------------------- browser


def _bits(text: str) -> float:
    return float(re.search(r"([0-9.]+) bits/s", text).group(1))


@pytest.mark.timeout(240)
def test_space_in_headless_chromium(tiny_pipeline_dir, clip, tmp_path):
    sync_playwright = browser.sync_playwright_or_skip()

    garbage = tmp_path / "not_audio.wav"
    garbage.write_bytes(b"definitely not a wav file" * 50)
    env = {demo.MODEL_ENV: str(tiny_pipeline_dir), demo.MAX_UPLOAD_SECONDS_ENV: None}
    with browser.serve_space(SPACE / "app.py", tmp_path, env, timeout=120) as space, \
            browser.chromium_page(sync_playwright, space.url, height=1800) as page:
        page.wait_for_selector("#vamp", timeout=20000)
        assert "tiny-vampnet" in page.inner_text("#model-info")

        # 1. upload, set the recipe, show the mask
        browser.upload(page, "input-audio", clip)
        for elem_id, value in (("prefix", 0.2), ("suffix", 0.2), ("periodic", 4), ("upper-codebook-mask", 1),
                               ("steps", 4), ("seed", 3)):
            browser.set_number(page, elem_id, value)
        page.click("#show-mask")
        page.locator("#mask-info").filter(has_text="bits/s").wait_for(timeout=60000)
        browser.assert_image_shown(page, "mask-grid")
        expected = demo.preview_mask(str(clip), **RECIPE, seed=3)
        assert _bits(page.inner_text("#mask-info")) == pytest.approx(expected.bits_per_second, abs=0.05)
        space.mark("mask shown")

        # 2. vamp: the player, the spectrogram, the grid, the bit rate and the wav
        page.click("#vamp")
        page.locator("#vamped-summary").filter(has_text="Vamped: 1.20 s").wait_for(timeout=60000)
        browser.wait_for_player(page, "vamped-audio")
        summary = page.inner_text("#vamped-summary")
        assert _bits(summary) == pytest.approx(expected.bits_per_second, abs=0.05), summary
        assert "4 steps, seed 3" in summary, summary
        browser.assert_image_shown(page, "vamped-spectrogram")
        browser.assert_image_shown(page, "vamped-grid")
        name, data = browser.download(page, "vamped-download")
        assert name == "riff_vamp_seed3.wav"
        wav = tmp_path / "downloaded.wav"
        wav.write_bytes(data)
        audio, sr = load_audio(wav)
        assert sr == SR and audio.shape == (1, int(1.2 * SR))
        reference = demo.vamp(str(clip), **RECIPE, steps=4, seed=3).audio
        assert np.abs(audio - np.clip(reference, -1, 1)).max() < 1e-3  # same settings: the same result
        space.mark("vamped")

        browser.screenshot(page, tmp_path / "vampnet_space.png", SPACE)

        # 3. the Loop tab
        page.get_by_role("tab", name="Loop").click()
        page.locator("#loops").wait_for(state="visible", timeout=20000)
        browser.set_number(page, "loops", 2)
        page.click("#loop")
        page.locator("#looped-summary").filter(has_text="2 loops: 2.40 s").wait_for(timeout=60000)
        browser.wait_for_player(page, "looped-audio")
        assert "bits/s" in page.inner_text("#looped-summary")
        space.mark("looped")

        # 4. an unreadable upload: the one-line message in a toast, no crash
        page.reload()
        page.wait_for_selector("#vamp", timeout=20000)
        browser.upload(page, "input-audio", garbage)
        page.click("#vamp")
        toast = browser.wait_for_error_toast(page, "Could not read 'not_audio.wav' as audio")
        assert "Traceback" not in toast.first.inner_text()
        space.mark("error shown")
