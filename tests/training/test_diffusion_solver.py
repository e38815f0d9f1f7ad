"""Training the latent diffusion U-Net on a real (tiny) latent cache with CLAP and beats: a resumed run
(EMA included) ends exactly where an uninterrupted one does, validation reports its losses, the
training loss falls, and the export is a MusicDiffusionPipeline that generates."""

import json

import numpy as np
import pytest
import torch

from hf_musiccodec.pipelines.latent_diffusion import MusicDiffusionPipeline
from hf_musiccodec.training.diffusion_solver import DiffusionSolver, DiffusionTrainingConfig, latent_statistics
from tests.training.diffusion_workspace import build_diffusion_workspace
from tests.training.token_workspace import Killed, dies_after_step


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return build_diffusion_workspace(tmp_path_factory.mktemp("diffusion"))


def _config(root, out, **kw):
    values = dict(output_dir=str(out), codec=str(root / "codec"), clap=str(root / "clap"),
                  train_cache=str(root / "cache"), validation_cache=str(root / "cache"), crop_seconds=0.4, patch=2,
                  block_out_channels=(16, 32), attention_head_dim=8, norm_num_groups=8, batch_size=2, max_steps=6,
                  save_every=2, validate_every=3, validation_items=4, log_every=1, report_to=None, warmup_steps=1,
                  mixed_precision="no", mixup="blm", mixup_prob=0.5)  # fmt: skip
    values.update(kw)
    return DiffusionTrainingConfig(**values)


def test_resumed_run_matches_an_uninterrupted_one_and_exports_a_pipeline(workspace, tmp_path):
    whole = DiffusionSolver(_config(workspace, tmp_path / "whole")).fit()
    with pytest.raises(Killed):
        dies_after_step(DiffusionSolver, 4)(_config(workspace, tmp_path / "parts")).fit()
    resumed = DiffusionSolver(_config(workspace, tmp_path / "parts"))  # a new process would start the same way
    parts = resumed.fit()
    assert json.loads((parts / "training_state.json").read_text())["step"] == 6
    a = MusicDiffusionPipeline.from_pretrained(whole).unet.state_dict()
    b = MusicDiffusionPipeline.from_pretrained(parts).unet.state_dict()
    for k in a:  # the exported (EMA) weights
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    live_whole = resumed.accelerator.unwrap_model(resumed.unet).state_dict()
    assert any(not torch.equal(live_whole[k], a[k]) for k in a)  # the export holds the EMA, not the live weights

    # the export: U-Net, scheduler with the training schedule, codec, CLAP and the latent statistics
    index = json.loads((parts / "model_index.json").read_text())
    assert {"unet", "scheduler", "codec", "clap", "clap_processor"} <= set(index)
    mean, std = latent_statistics(resumed.train_set.latents)
    np.testing.assert_allclose(index["latent_mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(index["latent_std"], std, rtol=1e-6)
    pipe = MusicDiffusionPipeline.from_pretrained(parts)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.scheduler.config.beta_schedule == "squaredcos_cap_v2"
    out = pipe("a pulse", audio_length_in_s=0.5, num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    assert out.audios.shape == (1, 1, 12000) and np.isfinite(out.audios).all()


def test_validation_reports_conditioned_and_null_losses(workspace, tmp_path):
    solver = DiffusionSolver(_config(workspace, tmp_path / "val", max_steps=0))
    metrics = solver.validate()
    assert set(metrics) == {f"val_loss_t{t}{s}" for t in (100, 500, 900) for s in ("", "_null")}
    assert all(np.isfinite(v) and v > 0 for v in metrics.values())
    assert metrics == solver.validate()  # the same noise every time


def test_the_loss_falls(workspace, tmp_path):
    solver = DiffusionSolver(_config(workspace, tmp_path / "fit", max_steps=80, learning_rate=3e-3, mixup=None,
                                     save_every=100, validate_every=0, ema_decay=0.5))
    batch = torch.utils.data.default_collate([solver.train_set[i] for i in range(len(solver.train_set))])
    size = batch["latents"].shape[0]
    noise = torch.randn(size, solver.layout.channels, 1, solver.layout.frames_to_width(batch["latents"].shape[-1]),
                        generator=torch.Generator().manual_seed(0))

    def loss():
        with torch.no_grad():
            return float(solver.diffusion_loss(batch, torch.full((size,), 500), noise, torch.ones(size, dtype=bool)))

    before = loss()
    solver.fit()
    # deterministic (seeded): 0.557 -> 0.430; v-prediction at t=500 has a floor far above zero
    assert loss() < 0.85 * before


def test_a_cache_of_another_codec_is_refused(workspace, tmp_path):
    from hf_musiccodec.codecs import MusicCodecModel
    from hf_musiccodec.testing.tiny import tiny_codec_config

    MusicCodecModel(tiny_codec_config("encodec_24khz", hidden_size=16, kmeans_init=False)).save_pretrained(
        tmp_path / "codec16")
    with pytest.raises(ValueError, match="a cache of another codec"):
        DiffusionSolver(_config(workspace, tmp_path / "x", codec=str(tmp_path / "codec16")))


def test_bad_options_are_errors():
    with pytest.raises(ValueError, match="mixup"):
        DiffusionTrainingConfig(mixup="cutmix").validate()
    with pytest.raises(ValueError, match="condition_dropout"):
        DiffusionTrainingConfig(condition_dropout=2.0).validate()
    with pytest.raises(ValueError, match="unknown training options"):
        DiffusionTrainingConfig.load(None, ["mixupp=blm"])
