"""Training Music ControlNet on a real (tiny) latent cache with its controls, on a tiny trained latent
diffusion pipeline: the control cache matches the pipeline's own extraction, a resumed run (EMA
included) ends exactly where an uninterrupted one does, validation reports the loss with and
without controls, and the export is a MusicControlNetPipeline that the controls steer."""

import json

import numpy as np
import pytest
import torch

from hf_musiccodec.audio.io import load_audio
from hf_musiccodec.data.control_cache import CONTROLS_NAME, ControlCache, build_control_cache
from hf_musiccodec.data.latent_crops import LatentCrops
from hf_musiccodec.pipelines.controlnet import MusicControlNetPipeline, extract_controls
from hf_musiccodec.training.controlnet_solver import ControlNetSolver, ControlNetTrainingConfig
from hf_musiccodec.training.diffusion_solver import DiffusionSolver
from tests.training.diffusion_workspace import build_diffusion_workspace
from tests.training.test_diffusion_solver import _config as diffusion_config
from tests.training.token_workspace import Killed, dies_after_step


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = build_diffusion_workspace(tmp_path_factory.mktemp("controlnet"))
    DiffusionSolver(diffusion_config(root, root / "base-run", max_steps=2, validate_every=0)).fit()
    build_control_cache(root / "cache", progress=False)
    return root


def _config(root, out, **kw):
    values = dict(output_dir=str(out), pipeline=str(root / "base-run" / "model"), train_cache=str(root / "cache"),
                  validation_cache=str(root / "cache"), crop_seconds=0.4, batch_size=2, max_steps=6, save_every=2,
                  validate_every=3, validation_items=4, log_every=1, report_to=None, warmup_steps=1,
                  mixed_precision="no", conditioning_embedding_channels=8, norm_num_groups=8)  # fmt: skip
    values.update(kw)
    return ControlNetTrainingConfig(**values)


def test_control_cache_is_the_pipelines_extraction(workspace):
    cache = ControlCache(workspace / "cache")
    items = [json.loads(line) for line in (workspace / "cache" / "items.jsonl").read_text().splitlines()]
    audio, sr = load_audio(workspace / "cache" / items[0]["path"], sampling_rate=24000, channels=1)
    frames = cache._offsets[1] - cache._offsets[0]
    expected = extract_controls(audio[0], sr, 75.0, frames)
    crop = cache.crop(0, 0, frames)
    np.testing.assert_array_equal(crop["melody"], expected.melody)
    np.testing.assert_allclose(crop["dynamics"], expected.dynamics, atol=0.05)   # stored as float16
    past = cache.crop(0, frames - 5, 10)
    assert (past["melody"][5:] == -1).all() and not past["rhythm"][:, 5:].any()
    crops = LatentCrops(workspace / "cache", 30, controls=True)
    assert crops[0]["melody"].shape == (30,) and crops[0]["rhythm"].shape == (2, 30)
    with pytest.raises(ValueError, match="do not combine"):
        LatentCrops(workspace / "cache", 30, controls=True, mixup="blm")
    metadata = build_control_cache(workspace / "cache", progress=False)  # a rerun keeps the file
    assert metadata["key"] == json.loads((workspace / "cache" / "index.json").read_text())["key"]


def test_stale_or_missing_control_cache_is_refused(workspace, tmp_path):
    with pytest.raises(ValueError, match="cache_controls.py"):
        ControlCache(tmp_path)
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "index.json").write_text(json.dumps({"key": "other"}))
    (stale / CONTROLS_NAME).write_bytes((workspace / "cache" / CONTROLS_NAME).read_bytes())
    with pytest.raises(ValueError, match="stale"):
        ControlCache(stale)


def test_resumed_run_matches_an_uninterrupted_one_and_exports_a_pipeline(workspace, tmp_path):
    whole = ControlNetSolver(_config(workspace, tmp_path / "whole")).fit()
    with pytest.raises(Killed):
        dies_after_step(ControlNetSolver, 4)(_config(workspace, tmp_path / "parts")).fit()
    resumed = ControlNetSolver(_config(workspace, tmp_path / "parts"))
    parts = resumed.fit()
    a = MusicControlNetPipeline.from_pretrained(whole).controlnet.state_dict()
    b = MusicControlNetPipeline.from_pretrained(parts).controlnet.state_dict()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    # the frozen U-Net is the base pipeline's, unchanged
    base = MusicControlNetPipeline.from_pretrained(parts).unet.state_dict()
    original = resumed.base.unet.state_dict()
    assert all(torch.equal(base[k], original[k]) for k in base)
    metrics = resumed.validate()
    assert set(metrics) == {f"val_loss_t{t}{s}" for t in (100, 500, 900) for s in ("_controls", "_no_controls")}
    pipe = MusicControlNetPipeline.from_pretrained(parts)
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a pulse", audio_length_in_s=0.5, num_inference_steps=3, melody=np.full(19, 4),
               generator=torch.Generator().manual_seed(0))
    assert out.audios.shape == (1, 1, 12000) and np.isfinite(out.audios).all()


def test_bad_options_are_errors():
    with pytest.raises(ValueError, match="no mixup"):
        ControlNetTrainingConfig(mixup="blm").validate()
    with pytest.raises(ValueError, match="control_dropout"):
        ControlNetTrainingConfig(control_dropout=1.5).validate()


@pytest.mark.parametrize("zero_init", [False, True])
def test_the_branch_starts_as_the_base_model_and_sees_the_controls_unless_zero_initialised(workspace, tmp_path, zero_init):
    solver = ControlNetSolver(_config(workspace, tmp_path / "start", zero_init_control_embedding=zero_init))
    controlnet = solver._trained[0].model
    assert bool(controlnet.controlnet_cond_embedding.conv_out.weight.abs().sum()) is not zero_init
    assert all(not p.abs().sum() for p in controlnet.controlnet_down_blocks.parameters())   # the residuals are zero
    assert not controlnet.controlnet_mid_block.weight.abs().sum()
