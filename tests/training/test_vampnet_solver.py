"""Training VampNet on a real (tiny) latent cache with CLAP conditions: the loss falls, a resumed
run ends exactly where an uninterrupted one does, validation reports its metrics, and the export
is a VampNetPipeline that vamps."""

import json
import math

import numpy as np
import pytest
import torch

from hf_musiccodec.pipelines.vampnet import VampNetPipeline
from hf_musiccodec.training.vampnet_solver import VampNetSolver, VampNetTrainingConfig
from tests.training.token_workspace import SR, Killed, build_token_workspace, dies_after_step, write_tone_clips


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("vampnet")
    return build_token_workspace(root, write_tone_clips(root / "audio", [f"a tune number {i}" for i in range(6)]))


def _config(root, out, **kw):
    values = dict(output_dir=str(out), codec=str(root / "codec"), num_codebooks=2, train_cache=str(root / "cache"),
                  validation_cache=str(root / "cache"), clap=str(root / "clap"), crop_seconds=0.5, batch_size=2,
                  hidden_size=32, num_layers=1, num_heads=2, ffn_dim=64, dropout=0.0, warmup_steps=2, max_steps=6,
                  save_every=2, validate_every=3, validation_items=4, log_every=1, report_to=None,
                  mixed_precision="no")  # fmt: skip
    values.update(kw)
    return VampNetTrainingConfig(**values)


def test_resumed_run_matches_an_uninterrupted_one_and_exports_a_pipeline(workspace, tmp_path):
    whole = VampNetSolver(_config(workspace, tmp_path / "whole")).fit()
    with pytest.raises(Killed):
        dies_after_step(VampNetSolver, 4)(_config(workspace, tmp_path / "parts")).fit()
    assert json.loads((tmp_path / "parts" / "model" / "training_state.json").read_text())["step"] == 4
    resumed = VampNetSolver(_config(workspace, tmp_path / "parts"))  # a new process would start the same way
    assert resumed.train_set.has_clap
    parts = resumed.fit()
    assert json.loads((parts / "training_state.json").read_text())["step"] == 6
    a = VampNetPipeline.from_pretrained(whole).vampnet.state_dict()
    b = VampNetPipeline.from_pretrained(parts).vampnet.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    initial = VampNetSolver(_config(workspace, tmp_path / "fresh", max_steps=0))
    fresh = initial.accelerator.unwrap_model(initial.vampnet).state_dict()
    assert any(not torch.equal(fresh[k], a[k]) for k in fresh)  # it did train

    # the export: codec + model + the CLAP it was conditioned on, a pipeline that vamps with a text prompt
    assert {"codec", "vampnet", "clap", "clap_processor"} <= set(json.loads((parts / "model_index.json").read_text()))
    pipe = VampNetPipeline.from_pretrained(parts)
    pipe.set_progress_bar_config(disable=True)
    config = pipe.vampnet.config
    assert (config.num_codebooks, config.codebook_size, config.context_frames, config.condition_dim) == (2, 16, 38, 16)
    audio = (0.3 * np.sin(2 * np.pi * 330 * np.arange(SR) / SR)).astype(np.float32)
    out = pipe(audio, sampling_rate=SR, prompt="a tune", periodic_prompt=3, num_inference_steps=4,
               generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert out.audios.shape == (1, 1, SR) and np.isfinite(out.audios).all()
    codes = pipe.encode_audio(audio, SR)
    assert torch.equal(out.codes[~out.mask], codes[~out.mask])


def test_loss_starts_uniform_and_falls_on_a_repeated_batch(workspace, tmp_path):
    solver = VampNetSolver(_config(workspace, tmp_path / "run", max_steps=0, learning_rate=3e-3, warmup_steps=1,
                                   max_grad_norm=None))  # fmt: skip
    batch = next(iter(solver.loader))
    optimizer = solver._trained[0].optimizer
    ratios, condition_on = torch.full((2,), 0.3), torch.tensor([True, False])
    losses = []
    solver.vampnet.train()
    for _ in range(25):
        out, mask = solver.masked_loss(batch, ratios, condition_on, generator=torch.Generator().manual_seed(0))
        losses.append(float(out.loss.detach()))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(math.isfinite(x) for x in losses)
    assert abs(losses[0] - math.log(16)) < 0.3  # the untrained model is close to uniform over 16 codes
    assert losses[-1] < 0.5 * losses[0]
    assert mask.float().mean() == pytest.approx(math.cos(0.3 * math.pi / 2), abs=0.15)


def test_train_step_logs(workspace, tmp_path):
    solver = VampNetSolver(_config(workspace, tmp_path / "run", max_steps=0))
    logs = solver.train_step(next(iter(solver.loader)))
    assert math.isfinite(float(logs["loss"])) and 0.0 <= float(logs["masked_share"]) <= 1.0
    assert any(p.grad is not None for p in solver.vampnet.parameters())


def test_validate_reports_each_ratio_and_is_deterministic(workspace, tmp_path):
    solver = VampNetSolver(_config(workspace, tmp_path / "run", max_steps=0))
    metrics = solver.validate()
    assert set(metrics) == {f"val_{m}_r{r}" for m in ("loss", "acc") for r in ("0.25", "0.5", "0.75")}
    for r in ("0.25", "0.5", "0.75"):
        assert abs(metrics[f"val_loss_r{r}"] - math.log(16)) < 0.3 and 0.0 <= metrics[f"val_acc_r{r}"] <= 1.0
    assert solver.validate() == metrics  # the same masks every time
    assert VampNetSolver(_config(workspace, tmp_path / "none", max_steps=0, validation_cache=None)).validate() == {}


def test_without_conditions_and_coarse_to_fine(workspace, tmp_path):
    solver = VampNetSolver(_config(workspace, tmp_path / "plain", use_conditions=False, max_steps=2, save_every=2))
    assert solver.accelerator.unwrap_model(solver.vampnet).config.condition_dim == 0
    folder = solver.fit()
    index = json.loads((folder / "model_index.json").read_text())
    assert index.get("clap", [None])[0] is None  # nothing to condition on: no CLAP bundled
    pipe = VampNetPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    assert pipe(audio_length_in_s=0.5, num_inference_steps=3).audios.shape == (1, 1, SR // 2)

    with pytest.raises(ValueError, match="coarse_pipeline"):
        _config(workspace, tmp_path / "c2f", num_codebooks=4, num_conditioning_codebooks=2).validate()
    solver = VampNetSolver(_config(workspace, tmp_path / "c2f", num_codebooks=4, num_conditioning_codebooks=2,
                                   coarse_pipeline=str(folder), max_steps=2, save_every=2, validate_every=2))
    model = solver.accelerator.unwrap_model(solver.vampnet)
    assert model.config.num_predicted_codebooks == 2 and model.config.condition_dim == 16
    exported = solver.fit()
    metrics = solver.validate()
    assert all(math.isfinite(v) for v in metrics.values())
    # the export pairs the coarse pipeline's model with the trained coarse-to-fine one
    both = VampNetPipeline.from_pretrained(exported)
    both.set_progress_bar_config(disable=True)
    assert both.vampnet.config.num_codebooks == 2 and both.coarse_to_fine.config.num_conditioning_codebooks == 2
    out = both(np.sin(np.arange(SR) / SR * 2 * np.pi * 330).astype(np.float32) * 0.3, sampling_rate=SR,
               prefix_s=0.5, num_inference_steps=2, coarse_to_fine_steps=2)
    assert out.codes.shape[1] == 4 and out.bits_per_second > 0


@pytest.mark.parametrize("kw, match", [
    (dict(condition_prob=1.5), "condition_prob"),
    (dict(crop_seconds=0), "crop_seconds"),
    (dict(mixed_precision="fp8"), "mixed_precision"),
    (dict(batch_size=0), "batch_size"),
])  # fmt: skip


def test_bad_config_values_raise_value_error(workspace, tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        _config(workspace, tmp_path / "bad", **kw).validate()


@pytest.mark.parametrize("kw, match", [
    (dict(num_codebooks=5), "codebooks"),
    (dict(num_conditioning_codebooks=2, coarse_pipeline="x"), "num_conditioning_codebooks"),
    (dict(hidden_size=30), "hidden_size"),
])  # fmt: skip


def test_bad_model_options_raise_value_error(workspace, tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        VampNetSolver(_config(workspace, tmp_path / "bad", **kw))


def test_config_file_and_unknown_keys(workspace, tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"num_codebooks": 3, "crop_seconds": 0.5}))
    cfg = VampNetTrainingConfig.load(str(path), ["hidden_size=64", "condition_prob=0.25"])
    assert (cfg.num_codebooks, cfg.hidden_size, cfg.condition_prob) == (3, 64, 0.25)
    with pytest.raises(ValueError, match="num_codebook"):
        VampNetTrainingConfig.load(None, ["num_codebook=3"])
    with pytest.raises(ValueError, match="condition_prob"):
        VampNetTrainingConfig.load(None, ["condition_prob=2"])


def test_command_line_trains_and_init_from_fine_tunes_the_export(workspace, tmp_path):
    from hf_musiccodec.training.train_vampnet import main

    path = tmp_path / "run.json"
    path.write_text(json.dumps({k: list(v) if isinstance(v, tuple) else v
                                for k, v in _config(workspace, tmp_path / "cli").to_dict().items()}))
    main(["--config", str(path), "--set", "max_steps=2", "save_every=2", "use_conditions=false"])
    folder = tmp_path / "cli" / "model"
    assert json.loads((folder / "training_state.json").read_text())["step"] == 2
    exported = VampNetPipeline.from_pretrained(folder).vampnet.state_dict()
    for init_from in (folder, folder / "vampnet"):  # a pipeline folder or the model folder itself
        solver = VampNetSolver(_config(workspace, tmp_path / "tune", init_from=str(init_from), max_steps=0))
        start = solver.accelerator.unwrap_model(solver.vampnet).state_dict()
        assert start.keys() == exported.keys() and all(torch.equal(start[k], exported[k]) for k in start)
