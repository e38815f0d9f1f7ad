"""MusicDiffusionPipeline: the generator convention (shapes, seeds, save/load offline, progress and
callback, one-line errors), guidance and negative prompts, swapped schedulers, ControlNet on its
U-Net, CLAP re-ranking of candidates, audio-to-audio and inpainting."""

import json

import numpy as np
import pytest
import torch
from diffusers import ControlNetModel, DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

from hf_musiccodec.pipelines import GeneratorError, check_generator_output, load_generator
from hf_musiccodec.pipelines.latent_diffusion import MusicDiffusionPipeline
from hf_musiccodec.pipelines.pipeline_utils import clap_audio_embeddings, clap_text_embeddings
from hf_musiccodec.testing.tiny import tiny_music_diffusion_pipeline

SR = 24000
FAST = dict(num_inference_steps=3)


def tone(seconds, freq=440.0):
    t = np.arange(int(round(seconds * SR))) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + np.sign(np.sin(2 * np.pi * 3 * t))) / 2).astype(np.float32)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def pipe():
    pipe = tiny_music_diffusion_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_output_follows_the_generator_convention(pipe):
    out = pipe(["a tune", "a march"], audio_length_in_s=0.5, num_waveforms_per_prompt=2, generator=seeded(), **FAST)
    audios = check_generator_output(out, batch=4, sampling_rate=pipe.sampling_rate, audio_length_in_s=0.5)
    assert audios.shape == (4, 1, 12000)
    assert pipe.sampling_rate == 24000 and pipe.num_timesteps == 3
    assert np.abs(audios).max() > 0


def test_same_seed_same_audio_other_seed_other_audio(pipe):
    a = pipe("a tune", audio_length_in_s=0.4, generator=seeded(1), **FAST).audios
    b = pipe("a tune", audio_length_in_s=0.4, generator=seeded(1), **FAST).audios
    c = pipe("a tune", audio_length_in_s=0.4, generator=seeded(2), **FAST).audios
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_given_latents_replace_the_noise(pipe):
    latents = torch.randn(1, pipe.layout.channels, 1, pipe.layout.frames_to_width(30), generator=seeded(3))
    a = pipe("a tune", audio_length_in_s=0.4, latents=latents, generator=seeded(1), **FAST).audios
    b = pipe("a tune", audio_length_in_s=0.4, latents=latents, generator=seeded(9), **FAST).audios
    np.testing.assert_array_equal(a, b)
    with pytest.raises(GeneratorError, match="latents must have shape"):
        pipe("a tune", audio_length_in_s=0.4, latents=latents[..., :-1], **FAST)


def test_save_and_load_offline_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == "MusicDiffusionPipeline"
    assert {"unet", "scheduler", "codec", "clap", "clap_processor"} <= set(index)
    assert len(index["latent_mean"]) == pipe.codec.config.hidden_size
    loaded = MusicDiffusionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    a = pipe("a tune", audio_length_in_s=0.4, generator=seeded(), **FAST).audios
    b = loaded("a tune", audio_length_in_s=0.4, generator=seeded(), **FAST).audios
    np.testing.assert_array_equal(a, b)
    generic = load_generator(tmp_path)  # what the benchmarks and the command line load
    assert isinstance(generic, MusicDiffusionPipeline)


def test_latent_normalisation_is_saved_and_used(tmp_path):
    pipe = tiny_music_diffusion_pipeline()
    hidden = pipe.codec.config.hidden_size
    shifted = MusicDiffusionPipeline(unet=pipe.unet, scheduler=pipe.scheduler, codec=pipe.codec, clap=pipe.clap,
                                     clap_processor=pipe.clap_processor, latent_mean=[0.5] * hidden,
                                     latent_std=[2.0] * hidden)
    shifted.save_pretrained(tmp_path)
    loaded = MusicDiffusionPipeline.from_pretrained(tmp_path)
    assert loaded.config.latent_mean == [0.5] * hidden and loaded.config.latent_std == [2.0] * hidden
    z = torch.randn(1, hidden, 10)
    np.testing.assert_allclose(loaded.layout.to_sample(z)[:, :hidden, 0, 0], (z[..., 0] - 0.5) / 2.0, rtol=1e-6)


def test_progress_bar_and_callback_on_step_end(pipe):
    seen = []

    def callback(p, step, timestep, tensors):
        seen.append((step, tuple(tensors["latents"].shape)))
        return {"latents": tensors["latents"] * 0.0} if step == 2 else {}

    out = pipe("a tune", audio_length_in_s=0.4, num_inference_steps=3, generator=seeded(), output_type="latent",
               callback_on_step_end=callback)
    assert [s for s, _ in seen] == [0, 1, 2]
    assert torch.count_nonzero(out.audios) == 0  # the callback's latents replaced the step's

    def stop(p, step, timestep, tensors):
        p._interrupt = True
        return {}

    calls = []
    pipe("a tune", audio_length_in_s=0.4, num_inference_steps=5, callback_on_step_end=lambda *a: calls.append(1) or stop(*a))
    assert len(calls) == 1
    with pytest.raises(GeneratorError, match="callback_on_step_end_tensor_inputs"):
        pipe("a tune", audio_length_in_s=0.4, callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["x"],
             **FAST)


def test_guidance_and_negative_prompt_change_the_output(pipe):
    base = pipe("a tune", audio_length_in_s=0.4, guidance_scale=1.0, generator=seeded(), **FAST).audios
    guided = pipe("a tune", audio_length_in_s=0.4, guidance_scale=4.0, generator=seeded(), **FAST).audios
    negative = pipe("a tune", negative_prompt="a march", audio_length_in_s=0.4, guidance_scale=4.0,
                    generator=seeded(), **FAST).audios
    other = pipe("a march", audio_length_in_s=0.4, guidance_scale=1.0, generator=seeded(), **FAST).audios
    assert not np.allclose(base, guided) and not np.allclose(guided, negative) and not np.allclose(base, other)


@pytest.mark.parametrize("scheduler", [DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler])
def test_any_scheduler_swaps_in(scheduler):
    pipe = tiny_music_diffusion_pipeline()
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = scheduler.from_config(pipe.scheduler.config)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    out = pipe("a tune", audio_length_in_s=0.4, num_inference_steps=4, generator=seeded())
    check_generator_output(out, 1, pipe.sampling_rate, 0.4)
    # also audio-to-audio and inpainting, which add noise at the scheduler's own timesteps
    x = tone(0.6)
    for kwargs in (dict(strength=0.5), dict(inpaint_start_s=0.2, inpaint_end_s=0.4)):
        out = pipe("a tune", audio=x, sampling_rate=SR, num_inference_steps=4, generator=seeded(), **kwargs)
        assert out.audios.shape == (1, 1, x.size) and np.isfinite(out.audios).all()


def test_controlnet_from_unet_works_and_feeds_the_unet(pipe):
    controlnet = ControlNetModel.from_unet(pipe.unet, conditioning_embedding_out_channels=(8,)).eval()
    width = pipe.layout.frames_to_width(40)
    sample = torch.randn(2, pipe.layout.channels, 1, width)
    condition = torch.randn(2, pipe.clap.config.projection_dim)
    control = torch.randn(2, 3, 1, width)
    with torch.no_grad():
        down, mid = controlnet(sample, 10, encoder_hidden_states=condition[:, None], class_labels=condition,
                               controlnet_cond=control, return_dict=False)
        plain = pipe.unet(sample, 10, encoder_hidden_states=condition[:, None], class_labels=condition).sample
        controlled = pipe.unet(sample, 10, encoder_hidden_states=condition[:, None], class_labels=condition,
                               down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
    # zero convolutions: a fresh control branch changes nothing until it is trained
    torch.testing.assert_close(plain, controlled)


def test_candidates_are_ranked_by_clap_score(pipe):
    prompt = "a tune"
    ranked = pipe(prompt, audio_length_in_s=0.5, num_candidates=3, generator=seeded(4), **FAST)
    assert ranked.audios.shape == (1, 1, 12000) and ranked.clap_scores.shape == (1,)
    # the same noise drawn as three outputs: the kept one is the best of them by CLAP score
    all3 = pipe(prompt, audio_length_in_s=0.5, num_waveforms_per_prompt=3, generator=seeded(4), **FAST).audios
    text = clap_text_embeddings(pipe.clap, pipe.clap_processor, [prompt], "cpu")
    audio = clap_audio_embeddings(pipe.clap, pipe.clap_processor, list(all3[:, 0]), SR, "cpu")
    scores = torch.nn.functional.cosine_similarity(audio, text).numpy()
    np.testing.assert_allclose(ranked.audios[0], all3[int(scores.argmax())], atol=1e-5)
    np.testing.assert_allclose(ranked.clap_scores[0], scores.max(), atol=1e-5)


def test_audio_to_audio_stays_near_the_input_at_low_strength(pipe):
    x = tone(1.0)
    reconstruction = pipe.decode_latents(pipe.encode_audio(x, SR)[0], 75)[0, 0, : x.size].numpy()

    def distance(strength):
        out = pipe("a tune", audio=x, sampling_rate=SR, strength=strength, num_inference_steps=20, generator=seeded())
        return float(np.abs(out.audios[0, 0] - reconstruction).mean())

    assert distance(0.05) < 0.5 * distance(1.0)


def test_inpainting_keeps_the_input_outside_the_range(pipe):
    x = tone(1.0)
    init = pipe.encode_audio(x, SR)[0]
    out = pipe("a tune", audio=x, sampling_rate=SR, inpaint_start_s=0.4, inpaint_end_s=0.7, output_type="latent",
               generator=seeded(), **FAST).audios
    patch_s = pipe.layout.patch / pipe.frame_rate
    first, last = int(0.4 / patch_s), int(np.ceil(0.7 / patch_s))
    torch.testing.assert_close(out[..., :first], init[..., :first])
    torch.testing.assert_close(out[..., last:], init[..., last:])
    assert not torch.allclose(out[..., first:last], init[..., first:last])
    audio = pipe("a tune", audio=x, sampling_rate=SR, inpaint_start_s=0.4, inpaint_end_s=0.7, **FAST).audios
    assert audio.shape == (1, 1, x.size)


def test_output_types(pipe):
    mel = pipe("a tune", audio_length_in_s=0.5, output_type="mel", **FAST).audios
    assert mel.shape[:3] == (1, 1, 64) and torch.isfinite(mel).all()
    pt = pipe("a tune", audio_length_in_s=0.5, output_type="pt", **FAST).audios
    assert isinstance(pt, torch.Tensor) and pt.shape == (1, 1, 12000)
    latent = pipe("a tune", audio_length_in_s=0.5, output_type="latent", **FAST).audios
    assert latent.shape == (1, pipe.layout.channels, 1, pipe.layout.frames_to_width(38))


@pytest.mark.parametrize("kwargs, message", [
    (dict(prompt=[]), "prompt must be"),
    (dict(prompt=5), "prompt must be"),
    (dict(prompt="word " * 40), "longer than"),
    (dict(negative_prompt=["a", "b"]), "negative_prompt"),
    (dict(audio_length_in_s=0), "audio_length_in_s"),
    (dict(audio_length_in_s=1e6), "audio_length_in_s"),
    (dict(audio_length_in_s=float("nan")), "audio_length_in_s"),
    (dict(num_inference_steps=0), "num_inference_steps"),
    (dict(num_candidates=1.5), "num_candidates"),
    (dict(guidance_scale=-1), "guidance_scale"),
    (dict(output_type="wav"), "output_type"),
    (dict(strength=0.5), "need the input audio"),
    (dict(inpaint_start_s=0.1, inpaint_end_s=0.2), "need the input audio"),
    (dict(audio=np.full(SR, np.nan, np.float32), sampling_rate=SR), "NaN"),
    (dict(audio=np.zeros(SR, np.float32), sampling_rate=SR), "silent"),
    (dict(audio=tone(1.0)), "sampling_rate is required"),
    (dict(audio=tone(0.1), sampling_rate=SR), "at least"),
    (dict(audio=tone(1.0), sampling_rate=SR, inpaint_start_s=0.5, inpaint_end_s=0.2), "inpaint range"),
    (dict(audio=tone(1.0), sampling_rate=SR, inpaint_start_s=3.0, inpaint_end_s=4.0), "past the input"),
])
def test_bad_input_is_a_one_line_error(pipe, kwargs, message):
    kwargs = {"prompt": "a tune", "audio_length_in_s": 0.4, **FAST, **kwargs}
    with pytest.raises(GeneratorError, match=message) as info:
        pipe(**kwargs)
    assert "\n" not in str(info.value)
