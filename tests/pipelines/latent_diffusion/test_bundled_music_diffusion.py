"""The released pipelines/music-diffusion artifact: loads offline from small safetensors shards,
generates audible music from a prompt with any scheduler, its U-Net takes a ControlNet, and it
transforms and inpaints the demo clip."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hf_musiccodec.audio import load_audio, rms_db

ROOT = Path(__file__).resolve().parents[3]
FOLDER = ROOT / "pipelines" / "music-diffusion"
CLIP = ROOT / "src" / "hf_musiccodec" / "assets" / "bach_chorale_bwv66.6_24khz.flac"
PROMPT = "a slow chorale for strings"

pytestmark = pytest.mark.skipif(not (FOLDER / "model_index.json").is_file(), reason="no released music-diffusion artifact")


@pytest.fixture(scope="module")
def pipe():
    from hf_musiccodec import MusicDiffusionPipeline

    weights = list(FOLDER.rglob("*.safetensors"))
    assert weights and max(f.stat().st_size for f in weights) < 16_000_000  # 15 MB shards
    assert not [p for p in FOLDER.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]  # safetensors only
    pipe = MusicDiffusionPipeline.from_pretrained(FOLDER)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_prompt_gives_audible_music_and_seeds_repeat(pipe):
    out = pipe(PROMPT, audio_length_in_s=2.0, num_inference_steps=8, generator=torch.Generator().manual_seed(0))
    audio = out.audios
    assert audio.shape == (1, 1, 2 * pipe.sampling_rate) and np.isfinite(audio).all()
    assert rms_db(audio[0]) > -45
    again = pipe(PROMPT, audio_length_in_s=2.0, num_inference_steps=8, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(audio, again.audios)


def test_schedulers_swap_and_controlnet_builds(pipe):
    from diffusers import ControlNetModel, DDIMScheduler, EulerDiscreteScheduler

    original = pipe.scheduler
    try:
        for scheduler in (DDIMScheduler, EulerDiscreteScheduler):
            pipe.scheduler = scheduler.from_config(original.config)
            audio = pipe(PROMPT, audio_length_in_s=1.0, num_inference_steps=6,
                         generator=torch.Generator().manual_seed(0)).audios
            assert np.isfinite(audio).all() and rms_db(audio[0]) > -45
    finally:
        pipe.scheduler = original
    controlnet = ControlNetModel.from_unet(pipe.unet)
    assert sum(p.numel() for p in controlnet.parameters()) > 0


def test_audio_to_audio_and_inpainting_of_the_demo_clip(pipe):
    clip, sr = load_audio(CLIP, sampling_rate=pipe.sampling_rate)
    clip = clip[:, : 3 * sr]
    out = pipe(PROMPT, audio=clip, sampling_rate=sr, strength=0.5, num_inference_steps=10,
               generator=torch.Generator().manual_seed(1)).audios
    assert out.shape == (1, 1, clip.shape[-1]) and rms_db(out[0]) > -45
    inpainted = pipe(PROMPT, audio=clip, sampling_rate=sr, inpaint_start_s=1.0, inpaint_end_s=2.0,
                     num_inference_steps=10, generator=torch.Generator().manual_seed(2)).audios
    assert inpainted.shape == (1, 1, clip.shape[-1]) and np.isfinite(inpainted).all()
