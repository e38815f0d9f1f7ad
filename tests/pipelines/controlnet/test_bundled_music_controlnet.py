"""The released pipelines/music-controlnet folder: the bundled latent diffusion model's parts (links)
plus the trained control branch; loads offline from small shards, takes the controls of the demo
clip, and with its branch turned off gives exactly the base model's output."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hf_musiccodec.audio import load_audio, rms_db

ROOT = Path(__file__).resolve().parents[3]
FOLDER = ROOT / "pipelines" / "music-controlnet"
CLIP = ROOT / "src" / "hf_musiccodec" / "assets" / "bach_chorale_bwv66.6_24khz.flac"

pytestmark = pytest.mark.skipif(not (FOLDER / "model_index.json").is_file(), reason="no released music-controlnet")


def test_controls_of_the_demo_clip_steer_the_bundled_model():
    from hf_musiccodec import MusicControlNetPipeline, MusicDiffusionPipeline

    weights = list((FOLDER / "controlnet").glob("*.safetensors"))
    assert weights and max(f.stat().st_size for f in weights) < 16_000_000
    pipe = MusicControlNetPipeline.from_pretrained(FOLDER)
    pipe.set_progress_bar_config(disable=True)
    clip, sr = load_audio(CLIP, sampling_rate=pipe.sampling_rate)
    controls = pipe.extract_controls(clip[:, : 3 * sr], sr)
    kwargs = dict(audio_length_in_s=3.0, num_inference_steps=8)
    given = dict(melody=controls.melody, dynamics=controls.dynamics, rhythm=controls.rhythm)
    steered = pipe("a chorale", generator=torch.Generator().manual_seed(0), **given, **kwargs).audios
    assert steered.shape == (1, 1, 3 * sr) and rms_db(steered[0]) > -45
    off = pipe("a chorale", generator=torch.Generator().manual_seed(0), controlnet_conditioning_scale=0.0, **given,
               **kwargs).audios
    base = MusicDiffusionPipeline.from_pretrained(ROOT / "pipelines" / "music-diffusion")
    base.set_progress_bar_config(disable=True)
    plain = base("a chorale", generator=torch.Generator().manual_seed(0), **kwargs).audios
    np.testing.assert_allclose(off, plain, atol=1e-4)
    assert not np.allclose(steered, plain, atol=1e-3)
