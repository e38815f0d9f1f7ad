"""The released pipelines/ditto folder: the bundled latent diffusion model's parts behind DittoPipeline
(links, not copies), loads offline, and a few optimisation steps lower a loop objective."""

from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
FOLDER = ROOT / "pipelines" / "ditto"

pytestmark = pytest.mark.skipif(not (FOLDER / "model_index.json").is_file(), reason="no released ditto folder")


def test_ditto_folder_loads_and_optimises():
    from hf_musiccodec import DittoPipeline

    assert (FOLDER / "unet").resolve() == (ROOT / "pipelines" / "music-diffusion" / "unet").resolve()
    pipe = DittoPipeline.from_pretrained(FOLDER)
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a slow chorale for strings", objective="looping", target=0.3, audio_length_in_s=1.5,
               num_inference_steps=4, num_optimization_steps=3, optimization_lr=0.1,
               generator=torch.Generator().manual_seed(0))
    assert out.audios.shape == (1, 1, int(1.5 * pipe.sampling_rate)) and np.isfinite(out.audios).all()
    assert out.losses[-1] < out.losses[0]
