"""The released pipelines/vampnet artifact: loads offline, small, and vamps with each prompt type on
the bundled demo clip, keeping the tokens its prompt keeps."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hf_musiccodec.audio import load_audio, rms_db

ROOT = Path(__file__).resolve().parents[3]
FOLDER = ROOT / "pipelines" / "vampnet"
CLIP = ROOT / "src" / "hf_musiccodec" / "assets" / "bach_chorale_bwv66.6_24khz.flac"

pytestmark = pytest.mark.skipif(not (FOLDER / "model_index.json").is_file(), reason="no released VampNet artifact")

RECIPES = {
    "inpainting": dict(prefix_s=0.75, suffix_s=0.75),
    "continuation": dict(prefix_s=1.5),
    "periodic": dict(periodic_prompt=8, periodic_width=2),
    "beat": dict(beat_mask_width_ms=100),
    "onset": dict(onset_mask_width_ms=75),
    "codebook": dict(keep_lower_codebooks=1),
    "upper codebook mask": dict(periodic_prompt=4, upper_codebook_mask=2),
    "dropout": dict(periodic_prompt=4, dropout=0.3),
}


@pytest.fixture(scope="module")
def pipe():
    from hf_musiccodec import VampNetPipeline

    weights = list((FOLDER / "vampnet").glob("*.safetensors"))
    assert weights and max(f.stat().st_size for f in weights) < 16_000_000  # 15 MB shards
    assert not list(FOLDER.rglob("*.bin")) and not list(FOLDER.rglob("*.pt"))  # safetensors only
    pipe = VampNetPipeline.from_pretrained(FOLDER)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def clip():
    audio, sr = load_audio(CLIP)
    return audio[..., 2 * sr: 5 * sr], sr


@pytest.mark.parametrize("name", list(RECIPES))
def test_each_prompt_keeps_its_tokens_and_makes_sound(pipe, clip, name):
    audio, sr = clip
    original = pipe.encode_audio(audio, sr)
    out = pipe(audio, sampling_rate=sr, num_inference_steps=6, generator=torch.Generator().manual_seed(0),
               **RECIPES[name])
    assert out.audios.shape == (1, 1, audio.shape[-1]) and np.isfinite(out.audios).all()
    kept = ~out.mask
    assert kept.any() and out.mask.any()
    assert torch.equal(out.codes[:, : kept.shape[1]][kept], original[:, : kept.shape[1]].cpu()[kept])
    assert 0 < out.bits_per_second < 3000
    assert rms_db(out.audios[0]) > -60  # not silence


def test_text_prompt_and_loop(pipe, clip):
    audio, sr = clip
    seeded = dict(num_inference_steps=6, periodic_prompt=16)
    plain = pipe(audio, sampling_rate=sr, generator=torch.Generator().manual_seed(0), **seeded)
    steered = pipe(audio, sampling_rate=sr, prompt="a fast jig on fiddle", guidance_scale=3.0,
                   generator=torch.Generator().manual_seed(0), **seeded)
    assert not torch.equal(plain.codes, steered.codes)
    looped = pipe.loop(audio[..., : sr], sampling_rate=sr, num_loops=2, feedback=0.5, periodic_prompt=8,
                       num_inference_steps=4, generator=torch.Generator().manual_seed(0))
    assert looped.audios.shape == (1, 1, 2 * sr)
