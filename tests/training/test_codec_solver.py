"""Toy-size integration tests of the codec training loop: one process, exact accumulation and resume, resume
after kill -9, two processes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from hf_musiccodec import MusicCodecModel
from hf_musiccodec.testing.distributed import accelerate_launch_command
from hf_musiccodec.training.codec_config import CodecTrainingConfig
from hf_musiccodec.training.codec_solver import CodecSolver, train

TOY = dict(
    preset="soundstream_24khz",
    model_overrides=dict(num_filters=4, hidden_size=8, codebook_size=16, num_quantizers=4, target_bandwidths=None,
                         num_lstm_layers=0, num_residual_layers=1, kmeans_iters=2, sampling_rate=8000,
                         quantizer_dropout=0.5),
    segment_seconds=0.1, crops_per_file=2, batch_size=2, validation_items=2, validation_seconds=0.3,
    discriminator="msstftd", discriminator_channels=2, discriminator_kwargs={"n_ffts": [256, 128]},
    adversarial_start_step=2, log_every=1, validate_every=3, save_every=2, report_to=None,
)


@pytest.fixture
def music_folder(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(8000 * 2) / 8000
    for i in range(3):
        tone = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(folder / f"track{i}.flac", tone.astype(np.float32), 8000)
    return folder


def _config(tmp_path, music_folder, **overrides) -> dict:
    return {**TOY, "train_folder": str(music_folder), "output_dir": str(tmp_path / "run"), **overrides}


def test_train_from_scratch_exports_a_loadable_model(tmp_path, music_folder):
    cfg = CodecTrainingConfig(**_config(tmp_path, music_folder, max_steps=4))
    folder = train(cfg)
    model = MusicCodecModel.from_pretrained(folder)
    assert json.loads((folder / "training_state.json").read_text())["step"] == 4
    assert model.quantizer.layers[0].codebook.inited.item() == 1.0  # k-means ran on real batches
    samples = sorted((tmp_path / "run" / "samples" / "step_3").glob("*.wav"))
    assert samples and sf.info(samples[0]).samplerate == 8000
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["step_4"] or len(
        list((tmp_path / "run" / "checkpoints").iterdir())) == 2


def test_validation_writes_samples_under_the_default_tracker(tmp_path, music_folder):
    # report_to's default is tensorboard; where it is not installed Accelerate hands back a blank
    # tracker, and validation must still write its samples (a 3000-step run once died at step 1000).
    cfg = CodecTrainingConfig(**_config(tmp_path, music_folder, max_steps=3, discriminator=None,
                                        report_to="tensorboard"))
    train(cfg)
    assert sorted(p.name for p in (tmp_path / "run" / "samples" / "step_3").glob("*.wav"))


def test_fine_tune_from_loaded_weights(tmp_path, music_folder):
    base = train(CodecTrainingConfig(**_config(tmp_path, music_folder, max_steps=2)))
    before = MusicCodecModel.from_pretrained(base).state_dict()
    tuned = train(CodecTrainingConfig(**_config(tmp_path, music_folder, max_steps=2, preset=None,
                                                init_from=str(base), output_dir=str(tmp_path / "tuned"),
                                                model_overrides={})))
    after = MusicCodecModel.from_pretrained(tuned).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_decoder_only_fine_tune_keeps_every_code(tmp_path, music_folder, capsys):
    # frozen encoder and codebooks (no EMA, k-means or restarts either): the codes a token LM was
    # trained on stay the same and only the decoder learns, here with the high-resolution STFT loss
    base = train(CodecTrainingConfig(**_config(tmp_path, music_folder, max_steps=2)))
    tuned = train(CodecTrainingConfig(**_config(
        tmp_path, music_folder, max_steps=3, preset=None, init_from=str(base), model_overrides={},
        output_dir=str(tmp_path / "tuned"), frozen=["encoder", "quantizer"], discriminator=None,
        hires_stft_weight=1.0, hires_fft_sizes=[512, 1024], segment_seconds=0.2)))
    before, after = MusicCodecModel.from_pretrained(base).eval(), MusicCodecModel.from_pretrained(tuned).eval()
    changed = {k.split(".")[0] for k, v in before.state_dict().items() if not torch.equal(v, after.state_dict()[k])}
    assert changed == {"decoder"}
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(row.get("loss/hires_stft", 0) > 0 for row in logged)
    audio = torch.sin(torch.arange(4000) / 8000 * 2 * torch.pi * 330)[None, None]
    assert torch.equal(before.encode(audio).audio_codes, after.encode(audio).audio_codes)
    with pytest.raises(ValueError, match="frozen"):
        CodecTrainingConfig(**_config(tmp_path, music_folder, frozen=["decoder"])).validate()


def test_loss_balancer_and_dac_discriminators(tmp_path, music_folder):
    cfg = CodecTrainingConfig(**_config(tmp_path, music_folder, max_steps=3, loss_balancer=True,
                                        waveform_weight=1.0, discriminator="dac", adversarial_start_step=1,
                                        discriminator_kwargs={"periods": [2, 3], "window_lengths": [256, 128]}))
    model = MusicCodecModel.from_pretrained(train(cfg))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_fourier_codec_trains(tmp_path, music_folder):
    fourier = dict(encoder_type="stft", decoder_type="istft", decoder_hidden_size=16, encoder_num_layers=1,
                   decoder_num_layers=1, use_causal_conv=False)
    cfg = CodecTrainingConfig(**_config(tmp_path, music_folder, max_steps=3, discriminator=None, waveform_weight=1.0,
                                        model_overrides={**TOY["model_overrides"], **fourier}))
    model = MusicCodecModel.from_pretrained(train(cfg))
    assert model.config.encoder_type == "stft" and model.config.decoder_type == "istft"
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"train_folder": "x", "batch_size": 4}))
    cfg = CodecTrainingConfig.load(str(path), ["batch_size=6", "model_overrides={num_filters: 8}"])
    assert cfg.batch_size == 6 and cfg.model_overrides == {"num_filters": 8}
    with pytest.raises(ValueError, match="unknown training options"):
        CodecTrainingConfig.load(str(path), ["batch_sise=6"])


def _launch(args, log):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def test_resume_after_kill_9(tmp_path, music_folder):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path, music_folder, max_steps=40, save_every=3, validate_every=100)))
    command = [sys.executable, "-m", "hf_musiccodec.training.train_codec", "--config", str(config)]
    checkpoints = tmp_path / "run" / "checkpoints"
    with open(tmp_path / "first.log", "w") as log:
        process = _launch(command, log)
        deadline = time.time() + 120
        while not (checkpoints / "step_6").is_dir() and time.time() < deadline and process.poll() is None:
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert (checkpoints / "step_6").is_dir(), (tmp_path / "first.log").read_text()[-2000:]
    done = max(int(p.name.split("_")[1]) for p in checkpoints.glob("step_*"))
    with open(tmp_path / "second.log", "w") as log:
        assert _launch(command + ["--set", "max_steps=" + str(done + 3)], log).wait(timeout=300) == 0
    second = (tmp_path / "second.log").read_text()
    assert f"at step {done}" in second
    state = json.loads((tmp_path / "run" / "model" / "training_state.json").read_text())
    assert state["step"] == done + 3


# Each rank records its quantizer-dropout draws and a hash of its weights after training.
RANK_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
from hf_musiccodec.training.codec_config import CodecTrainingConfig
from hf_musiccodec.training.codec_solver import CodecSolver

solver = CodecSolver(CodecTrainingConfig.load(sys.argv[1]))
model = solver.accelerator.unwrap_model(solver.model)
draws = []
model.quantizer.register_forward_hook(
    lambda module, args, out: draws.append(out.num_quantizers.tolist()) if module.training else None)
solver.fit()
weights = hashlib.sha256(b"".join(v.cpu().numpy().tobytes() for v in model.state_dict().values())).hexdigest()
acc = solver.accelerator
Path(sys.argv[2], f"rank{acc.process_index}.json").write_text(
    json.dumps({"world": acc.num_processes, "draws": draws, "weights": weights}))
"""


def test_two_processes_draw_alike_and_hold_identical_weights(tmp_path, music_folder):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path, music_folder, max_steps=3, gradient_accumulation_steps=2,
                                             validate_every=3)))
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    command = accelerate_launch_command([str(script), str(config), str(tmp_path)])
    with open(tmp_path / "ddp.log", "w") as log:
        code = _launch(command, log).wait(timeout=300)
    assert code == 0, (tmp_path / "ddp.log").read_text()[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert len(ranks[0]["draws"]) == 6  # 3 steps x 2 micro-batches
    assert ranks[0]["draws"] == ranks[1]["draws"]  # quantizer dropout alike on both ranks
    assert ranks[0]["weights"] == ranks[1]["weights"]
    model = MusicCodecModel.from_pretrained(tmp_path / "run" / "model")
    assert model.quantizer.layers[0].codebook.inited.item() == 1.0


def _trained(cfg: CodecTrainingConfig) -> dict:
    solver = CodecSolver(cfg)
    unwrap = solver.accelerator.unwrap_model
    initial = {k: v.clone() for k, v in unwrap(solver.model).state_dict().items()}
    solver.fit()
    return {"initial": initial, "model": unwrap(solver.model).state_dict(),
            "discriminator": unwrap(solver.discriminator).state_dict(),
            "balancer": solver.balancer.state_dict() if solver.balancer else None}


DAC_TOY = dict(preset="dac_16khz", model_overrides=dict(num_filters=2, hidden_size=16, decoder_hidden_size=32,
                                                        codebook_size=16, num_quantizers=3, sampling_rate=8000,
                                                        quantizer_dropout=0.0, target_bandwidths=None))


def test_accumulated_micro_batches_make_the_update_of_one_large_batch(tmp_path, music_folder):
    # Deterministic model (factorized codebooks learn by gradient, no dropout), with a discriminator.
    common = dict(DAC_TOY, max_steps=1, adversarial_start_step=0, validate_every=100)
    large = _trained(CodecTrainingConfig(**_config(tmp_path, music_folder, **common, batch_size=4,
                                                   output_dir=str(tmp_path / "large"))))
    micro = _trained(CodecTrainingConfig(**_config(tmp_path, music_folder, **common, batch_size=2,
                                                   gradient_accumulation_steps=2, output_dir=str(tmp_path / "micro"))))
    for part in ("model", "discriminator"):
        for name, value in large[part].items():
            torch.testing.assert_close(micro[part][name], value, rtol=0, atol=1e-5,
                                       msg=lambda m, key=f"{part}.{name}": f"{key}: {m}")
    assert any(not torch.equal(large["initial"][k], v) for k, v in large["model"].items())  # it did train


def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, music_folder):
    # Quantizer dropout and dead-code restarts draw random numbers, the balancer keeps an EMA, the
    # discriminator starts late, 2 micro-batches per step and 3 batches per epoch: the resume lands
    # mid-epoch and must restore all of it.
    common = dict(gradient_accumulation_steps=2, loss_balancer=True, waveform_weight=1.0, adversarial_start_step=1,
                  save_every=2, keep_checkpoints=5, validate_every=100)
    whole = _trained(CodecTrainingConfig(**_config(tmp_path, music_folder, **common, max_steps=6,
                                                   output_dir=str(tmp_path / "whole"))))
    cut = dict(_config(tmp_path, music_folder, **common, output_dir=str(tmp_path / "cut")))
    _trained(CodecTrainingConfig(**{**cut, "max_steps": 3}))
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / "step_3")  # killed after the checkpoint of step 2
    resumed = _trained(CodecTrainingConfig(**{**cut, "max_steps": 6}))
    assert resumed["balancer"] == whole["balancer"]
    for part in ("model", "discriminator"):
        for name, value in whole[part].items():
            assert torch.equal(resumed[part][name], value), f"{part}.{name}"


def test_generator_losses_leave_the_discriminator_gradients_alone(tmp_path, music_folder):
    # Otherwise they would add to the discriminator's accumulated gradients.
    solver = CodecSolver(CodecTrainingConfig(**_config(tmp_path, music_folder, max_steps=1, adversarial_start_step=0)))
    real = next(solver.batches())["input_values"]
    solver._generator_losses(real, solver.model(real), adversarial=True)
    assert all(p.grad is None for p in solver.discriminator.parameters())
    assert all(p.requires_grad for p in solver.discriminator.parameters())
    assert any(p.grad is not None for p in solver.model.parameters())


def test_misspelled_model_and_discriminator_options_are_errors(tmp_path, music_folder):
    with pytest.raises(ValueError, match=r"unknown model_overrides: 'num_filter' \(did you mean 'num_filters'"):
        CodecTrainingConfig(**_config(tmp_path, music_folder, model_overrides={"num_filter": 4})).validate()
    with pytest.raises(ValueError, match=r"unknown discriminator_kwargs for 'msstftd': 'n_fft_sizes' \(did you mean"):
        CodecTrainingConfig(**_config(tmp_path, music_folder, discriminator_kwargs={"n_fft_sizes": [64]})).validate()
    dac = CodecTrainingConfig(**_config(tmp_path, music_folder, discriminator="dac",
                                        discriminator_kwargs={"periods": [2], "window_lengths": [64]}))
    dac.validate()  # options of either of the preset's discriminators are fine
    with pytest.raises(ValueError, match="did you mean 'periods'"):
        CodecSolver(CodecTrainingConfig(**_config(tmp_path, music_folder, discriminator="mpd",
                                                  discriminator_kwargs={"period": [2]})))
