"""DittoPipeline: optimising the initial noise lowers each objective, objectives combine, zero steps is
the plain DDIM generation, gradient checkpointing changes memory and nothing else, the loop objective
cuts its overlap, save/load offline, callbacks, one-line errors. The objectives' features are checked
against the numpy metrics they stand for."""

import json

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from hf_musiccodec.audio.music_features import loudness_db, melody_chroma, resample_curve, self_similarity
from hf_musiccodec.metrics.melody_dynamics import dynamics_curve
from hf_musiccodec.metrics.melody_dynamics import melody_chroma as melody_chroma_np
from hf_musiccodec.pipelines import GeneratorError
from hf_musiccodec.pipelines.ditto import DittoPipeline, IntensityObjective, LoopObjective, StructureObjective
from hf_musiccodec.pipelines.latent_diffusion import MusicDiffusionPipeline
from hf_musiccodec.testing.tiny import tiny_music_diffusion_pipeline

SR = 24000
FAST = dict(audio_length_in_s=0.6, num_inference_steps=3, optimization_lr=0.5)


def tone(seconds, freq=440.0):
    t = np.arange(int(round(seconds * SR))) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ditto") / "pipe"
    base = tiny_music_diffusion_pipeline()
    DittoPipeline(**base.components, latent_mean=base.config.latent_mean,
                  latent_std=base.config.latent_std).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pipe(folder):
    pipe = DittoPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_features_match_the_numpy_metrics():
    x = tone(2.0) + 0.2 * tone(2.0, 660.0)
    chroma = melody_chroma(torch.from_numpy(x), SR).numpy()
    assert np.mean(chroma.argmax(0) == melody_chroma_np(x, SR).argmax(0)) > 0.95
    np.testing.assert_allclose(chroma.sum(0), 1.0, rtol=1e-5)
    db = loudness_db(torch.from_numpy(x), SR).numpy()
    reference = dynamics_curve(x, SR)
    np.testing.assert_allclose(db[50:-50], reference[50:-50], atol=1e-3)  # the same curve past half a window from the edges
    ssm = self_similarity(torch.rand(12, 7))
    assert ssm.shape == (7, 7) and torch.allclose(torch.diagonal(ssm), torch.ones(7))
    assert resample_curve([0.0, 10.0], 5).tolist() == [0.0, 2.5, 5.0, 7.5, 10.0]


def test_features_are_differentiable():
    x = torch.from_numpy(tone(1.0)).requires_grad_(True)
    (loudness_db(x, SR).mean() + melody_chroma(x, SR)[4].mean()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_zero_steps_is_the_plain_ddim_generation(pipe):
    out = pipe("a tune", objective="melody", target=[0, 4, 7], num_optimization_steps=0, generator=seeded(), **FAST)
    assert len(out.losses) == 1
    plain = MusicDiffusionPipeline(**pipe.components, latent_mean=pipe.config.latent_mean,
                                   latent_std=pipe.config.latent_std)
    plain.set_progress_bar_config(disable=True)
    plain.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    reference = plain("a tune", audio_length_in_s=0.6, num_inference_steps=3, generator=seeded()).audios
    np.testing.assert_allclose(out.audios, reference, atol=1e-5)


@pytest.mark.parametrize("objective, target", [
    ("melody", np.full(40, 9)),
    ("melody", np.r_[np.full(20, -1), np.full(20, 9)]),   # extract_controls' -1 (no pitch): left free
    ("inpainting", dict(audio=tone(0.6), sampling_rate=SR, start_s=0.2, end_s=0.4)),
    ("outpainting", dict(audio=tone(0.3), sampling_rate=SR)),
    ("looping", 0.15),
])  # fmt: skip
def test_optimisation_lowers_the_objective(pipe, objective, target):
    out = pipe("a tune", objective=objective, target=target, num_optimization_steps=6, generator=seeded(), **FAST)
    assert out.audios.shape == (1, 1, int(0.6 * SR)) and np.isfinite(out.audios).all()
    assert len(out.losses) == 7 and out.losses[-1] < out.losses[0], out.losses
    assert out.latents.shape[:3] == (1, pipe.layout.channels, 1)


def test_objectives_combine_with_weights(pipe):
    out = pipe("a tune", objective=[IntensityObjective([-30.0, -10.0], weight=0.01), LoopObjective(0.15, weight=2.0)],
               num_optimization_steps=2, generator=seeded(), **FAST)
    parts = out.objective_losses
    assert set(parts) == {"intensity", "looping"}
    for i, total in enumerate(out.losses):
        assert total == pytest.approx(0.01 * parts["intensity"][i] + 2.0 * parts["looping"][i], rel=1e-5)
    by_name = pipe("a tune", objective=["intensity", "looping"], target={"intensity": [-30.0, -10.0], "looping": 0.15},
                   num_optimization_steps=1, generator=seeded(), **FAST)
    assert set(by_name.objective_losses) == {"intensity", "looping"}


def test_checkpointing_changes_nothing_but_memory(pipe):
    kwargs = dict(objective="looping", target=0.15, num_optimization_steps=2, generator=None, **FAST)
    a = pipe("a tune", gradient_checkpointing=True, latents=torch.randn(1, 16, 1, 29, generator=seeded(5)), **kwargs)
    b = pipe("a tune", gradient_checkpointing=False, latents=torch.randn(1, 16, 1, 29, generator=seeded(5)), **kwargs)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-4)
    np.testing.assert_allclose(a.audios, b.audios, atol=1e-4)


def test_structure_target_from_audio_and_resampling(pipe):
    target = StructureObjective.from_audio(tone(1.0), SR)
    assert target.shape[0] == target.shape[1] and np.allclose(np.diag(target), 1.0, atol=1e-4)
    out = pipe("a tune", objective="structure", target=target, num_optimization_steps=1, generator=seeded(), **FAST)
    assert len(out.losses) == 2 and np.isfinite(out.losses).all()


def test_saved_folder_loads_as_ditto_and_callback_runs(pipe, folder):
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "DittoPipeline"
    seen = []

    def callback(p, step, loss, tensors):
        seen.append((step, loss, tuple(tensors["latents"].shape)))
        if step == 1:
            p._interrupt = True

    out = pipe("a tune", objective="looping", target=0.15, num_optimization_steps=5, generator=seeded(),
               callback_on_step_end=callback, **FAST)
    assert [s for s, _, _ in seen] == [0, 1] and len(out.losses) == 3


@pytest.mark.parametrize("kwargs, message", [
    (dict(objective=None), "objective must be"),
    (dict(objective="tempo"), "unknown objective"),
    (dict(objective="intensity"), "needs a target"),
    (dict(objective="intensity", target=[1.0]), "1-D curve"),
    (dict(objective="melody", target=[0, 14]), "pitch classes"),
    (dict(objective="melody", target=[-1, -1]), "no pitched frame"),
    (dict(objective="structure", target=np.ones((3, 4))), "square matrix"),
    (dict(objective="inpainting", target=np.ones(4)), "dict"),
    (dict(objective="inpainting", target=dict(audio=tone(0.6), sampling_rate=SR, start_s=0.5, end_s=0.1)), "start_s < end_s"),
    (dict(objective="outpainting", target=dict(audio=tone(1.0), sampling_rate=SR)), "longer than the reference"),
    (dict(objective="looping", target=9.0), "overlap_s"),
    (dict(objective=["intensity", "looping"], target=[1.0, 2.0]), "dict"),
    (dict(objective="looping", optimization_lr=0), "optimization_lr"),
    (dict(objective="looping", num_optimization_steps=-1), "num_optimization_steps"),
    (dict(objective="looping", prompt=["a", "b"]), "one generation"),
    (dict(objective="looping", output_type="mel"), "output_type"),
])  # fmt: skip
def test_bad_input_is_a_one_line_error(pipe, kwargs, message):
    kwargs = {"prompt": "a tune", "num_optimization_steps": 1, **FAST, **kwargs}
    with pytest.raises(GeneratorError, match=message) as info:
        pipe(**kwargs)
    assert "\n" not in str(info.value)
