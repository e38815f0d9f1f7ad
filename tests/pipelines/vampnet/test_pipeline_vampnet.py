"""VampNetPipeline: every prompt keyword makes the mask it names and keeps the input's tokens there,
the generator convention (shapes, seeds, save/load offline, callback, one-line errors), CLAP
conditions, windows past the trained context, coarse-to-fine and unlooping."""

import json

import numpy as np
import pytest
import torch

from hf_musiccodec.pipelines import GeneratorError, check_generator_output, load_generator
from hf_musiccodec.pipelines.vampnet import VampNetPipeline
from hf_musiccodec.pipelines.vampnet import masks as M
from hf_musiccodec.pipelines.vampnet.rhythm import beat_times, onset_times
from hf_musiccodec.testing.tiny import tiny_vampnet_pipeline

SR = 24000
FAST = dict(num_inference_steps=4, coarse_to_fine_steps=2)


def tone(seconds, freq=440.0, sr=SR):
    t = np.arange(int(round(seconds * sr))) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * np.sin(2 * np.pi * 3.3 * freq * t)).astype(np.float32)


def clicks(seconds, bpm=120.0, sr=SR):
    """Decaying noise bursts on a beat grid (something for the beat and onset detectors)."""
    x = np.zeros(int(seconds * sr), np.float32)
    burst = (np.random.default_rng(0).standard_normal(2400) * np.exp(-np.arange(2400) / 300)).astype(np.float32)
    for start in np.arange(0.25, seconds - 0.1, 60.0 / bpm):
        i = int(start * sr)
        x[i:i + 2400] += 0.5 * burst[: len(x) - i]
    return x + tone(seconds, 220) * 0.1


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def pipe():
    pipe = tiny_vampnet_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def plain():
    """No CLAP, no coarse-to-fine."""
    pipe = tiny_vampnet_pipeline(with_clap=False, with_coarse_to_fine=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def input_codes(pipe, audio):
    return pipe.encode_audio(audio, SR)


def assert_kept(pipe, out, audio):
    """The coarse tokens the mask keeps are the input's codes."""
    codes = input_codes(pipe, audio).expand(out.codes.shape[0], -1, -1)
    k = pipe.vampnet.config.num_codebooks
    assert out.mask.shape == (out.codes.shape[0], k, codes.shape[-1])
    assert torch.equal(out.codes[:, :k][~out.mask], codes[:, :k][~out.mask])
    assert (out.codes < pipe.vampnet.config.codebook_size).all()


def test_output_shape_and_codes(pipe):
    audio = tone(0.77)  # not a whole number of codec frames
    out = pipe(audio, sampling_rate=SR, periodic_prompt=4, generator=seeded(), **FAST)
    assert isinstance(out.audios, np.ndarray) and out.audios.shape == (1, 1, len(audio))
    assert np.isfinite(out.audios).all()
    assert out.codes.shape == (1, 4, input_codes(pipe, audio).shape[-1])  # coarse + fine codebooks
    assert_kept(pipe, out, audio)
    stereo = np.stack([tone(0.5, sr=16000), tone(0.5, 330, sr=16000)])  # another rate, two channels
    out = pipe(stereo, sampling_rate=16000, generator=seeded(), output_type="pt", **FAST)
    assert isinstance(out.audios, torch.Tensor) and out.audios.shape == (1, 1, SR // 2)
    assert isinstance(pipe(audio, sampling_rate=SR, return_dict=False, **FAST)[0], np.ndarray)


@pytest.mark.parametrize("recipe, expected", [
    (dict(), lambda c: M.full_mask(c)),
    (dict(prefix_s=0.2), lambda c: M.prefix_suffix_mask(c, 15, 0)),
    (dict(suffix_s=0.1), lambda c: M.prefix_suffix_mask(c, 0, 8)),
    (dict(prefix_s=0.2, suffix_s=0.2), lambda c: M.prefix_suffix_mask(c, 15, 15)),
    (dict(periodic_prompt=5), lambda c: M.periodic_mask(c, 5)),
    (dict(periodic_prompt=7, periodic_width=3), lambda c: M.periodic_mask(c, 7, 3)),
    (dict(upper_codebook_mask=1, periodic_prompt=3), lambda c: M.codebook_mask(M.periodic_mask(c, 3), 1)),
    (dict(upper_codebook_mask=0, prefix_s=0.5), lambda c: M.full_mask(c)),
    (dict(keep_lower_codebooks=1), lambda c: M.keep_lower_codebooks(M.full_mask(c), 1)),
    (dict(keep_lower_codebooks=2), lambda c: M.empty_mask(c)),
    (dict(prefix_s=0.1, periodic_prompt=4, keep_lower_codebooks=1),
     lambda c: M.keep_lower_codebooks(M.mask_and(M.prefix_suffix_mask(c, 8), M.periodic_mask(c, 4)), 1)),
])  # fmt: skip
def test_prompt_keywords_make_their_mask_and_keep_the_input(pipe, recipe, expected):
    audio = tone(1.0)
    out = pipe(audio, sampling_rate=SR, generator=seeded(), **recipe, **FAST)
    coarse = input_codes(pipe, audio)[:, :2]
    assert torch.equal(out.mask, expected(coarse))
    assert_kept(pipe, out, audio)
    assert out.bits_per_second == pytest.approx(M.bits_per_second(out.mask, 16, 75.0))
    assert torch.equal(pipe.build_mask(input_codes(pipe, audio), **recipe), out.mask)


def test_periodic_random_roll_and_dropout_are_seeded(pipe):
    audio = tone(1.0)
    kw = dict(periodic_prompt=6, periodic_random_roll=True, dropout=0.3, num_waveforms_per_prompt=4, **FAST)
    a = pipe(audio, sampling_rate=SR, generator=seeded(3), **kw)
    b = pipe(audio, sampling_rate=SR, generator=seeded(3), **kw)
    assert torch.equal(a.mask, b.mask) and np.array_equal(a.audios, b.audios)
    assert_kept(pipe, a, audio)
    periodic = M.periodic_mask(input_codes(pipe, audio)[:, :2], 6)
    # every example keeps at most its rolled grid's frames, some fewer (dropout), each its own draw
    kept_frames = (~a.mask).any(dim=1)
    assert (kept_frames.sum(1) <= (~periodic[0, 0]).sum()).all()
    assert len({tuple(m.flatten().tolist()) for m in a.mask}) == 4


def test_dropout_only_adds_generated_tokens(pipe):
    audio = tone(1.0)
    out = pipe(audio, sampling_rate=SR, periodic_prompt=2, dropout=0.5, generator=seeded(), **FAST)
    periodic = M.periodic_mask(input_codes(pipe, audio)[:, :2], 2)
    assert (out.mask | periodic).equal(out.mask) and not out.mask.equal(periodic)
    assert_kept(pipe, out, audio)


def test_beat_and_onset_prompts(pipe):
    audio = clicks(2.0)
    codes = input_codes(pipe, audio)[:, :2]
    beats, onsets = beat_times(audio, SR), onset_times(audio, SR)
    assert len(beats) > 0 and len(onsets) > 0
    out = pipe(audio, sampling_rate=SR, beat_mask_width_ms=40, generator=seeded(), **FAST)
    assert torch.equal(out.mask, M.beat_mask(codes, beats, 75.0, 0.04))
    assert out.mask.any() and not out.mask.all()
    assert_kept(pipe, out, audio)
    out = pipe(audio, sampling_rate=SR, onset_mask_width_ms=30, generator=seeded(), **FAST)
    assert torch.equal(out.mask, M.onset_mask(codes, onsets, 75.0, 0.03))
    assert out.mask.any() and not out.mask.all()
    assert_kept(pipe, out, audio)
    both = pipe(audio, sampling_rate=SR, beat_mask_width_ms=40, onset_mask_width_ms=30, generator=seeded(), **FAST)
    assert torch.equal(both.mask, M.mask_and(M.beat_mask(codes, beats, 75.0, 0.04),
                                             M.onset_mask(codes, onsets, 75.0, 0.03)))  # fmt: skip


def test_explicit_mask(pipe):
    audio = tone(1.0)
    t = input_codes(pipe, audio).shape[-1]
    mask = torch.rand(2, t, generator=seeded(9)) < 0.5  # (codebooks, frames): one for the batch
    out = pipe(audio, sampling_rate=SR, mask=mask, num_waveforms_per_prompt=2, generator=seeded(), **FAST)
    assert torch.equal(out.mask, mask.expand(2, -1, -1))
    assert_kept(pipe, out, audio)
    # a (batch, codebooks, frames) mask and a numpy one work too; the recipe keywords are then ignored
    out = pipe(audio, sampling_rate=SR, mask=mask[None].numpy(), prefix_s=0.5, generator=seeded(), **FAST)
    assert torch.equal(out.mask, mask[None])


def test_empty_mask_is_the_codec_reconstruction(pipe):
    audio = tone(1.0)
    t = input_codes(pipe, audio).shape[-1]
    steps = []
    out = pipe(audio, sampling_rate=SR, mask=torch.zeros(2, t, dtype=torch.bool), generator=seeded(),
               callback_on_step_end=lambda p, i, s, kw: steps.append(i) or kw, **FAST)  # fmt: skip
    assert torch.equal(out.codes, input_codes(pipe, audio))  # the fine codebooks too: nothing changed
    assert out.bits_per_second == pytest.approx(4 * 2 * 75)
    assert steps == list(range(pipe.num_timesteps)) and pipe.num_timesteps == 4 + 2
    reconstruction = pipe.codec.decode(input_codes(pipe, audio)[None], [None]).audio_values[..., :SR]
    assert np.allclose(out.audios, reconstruction.numpy(), atol=1e-5)


def test_num_waveforms_per_prompt_and_seeds(pipe):
    audio = tone(1.0)
    out = pipe(audio, sampling_rate=SR, periodic_prompt=3, num_waveforms_per_prompt=3, generator=seeded(), **FAST)
    audios = check_generator_output(out, 3, SR, 1.0)
    assert audios.shape == (3, 1, SR)
    assert len({tuple(c.flatten().tolist()) for c in out.codes}) == 3  # three different variations
    assert_kept(pipe, out, audio)
    again = pipe(audio, sampling_rate=SR, periodic_prompt=3, num_waveforms_per_prompt=3, generator=seeded(), **FAST)
    assert torch.equal(out.codes, again.codes) and np.array_equal(out.audios, again.audios)
    other = pipe(audio, sampling_rate=SR, periodic_prompt=3, num_waveforms_per_prompt=3, generator=seeded(1), **FAST)
    assert not torch.equal(out.codes, other.codes)


def test_save_and_load_offline(pipe, tmp_path, monkeypatch):
    pipe.save_pretrained(tmp_path / "p")
    folder = tmp_path / "p"
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "VampNetPipeline"
    assert {"codec", "vampnet", "coarse_to_fine", "clap", "clap_processor"} <= set(index)
    weights = [p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".safetensors")]
    assert weights and all(p.suffix == ".safetensors" for p in weights)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = VampNetPipeline.from_pretrained(folder)
    loaded.set_progress_bar_config(disable=True)
    audio = tone(1.0)
    kw = dict(sampling_rate=SR, periodic_prompt=3, prompt="a waltz", **FAST)
    a = pipe(audio, generator=seeded(), **kw)
    b = loaded(audio, generator=seeded(), **kw)
    assert torch.equal(a.codes, b.codes) and np.allclose(a.audios, b.audios, atol=1e-6)
    generic = load_generator(folder)
    assert isinstance(generic, VampNetPipeline) and generic.sampling_rate == SR

    from hf_musiccodec import VampNetPipeline as Lazy  # exported lazily from the package root

    assert Lazy is VampNetPipeline


def test_unconditional_generation(pipe, plain):
    for p in (pipe, plain):
        out = p(audio_length_in_s=0.5, generator=seeded(), **FAST)
        assert out.audios.shape == (1, 1, SR // 2) and np.isfinite(out.audios).all()
        assert out.mask.all() and out.bits_per_second == 0.0
        assert out.codes.shape[1] == p.num_codebooks
    assert plain.num_codebooks == 2 and pipe.num_codebooks == 4
    a = pipe(audio_length_in_s=0.5, generator=seeded(), **FAST)
    assert torch.equal(a.codes, pipe(audio_length_in_s=0.5, generator=seeded(), **FAST).codes)
    assert not torch.equal(a.codes, pipe(audio_length_in_s=0.5, generator=seeded(1), **FAST).codes)


def test_text_and_audio_conditions(pipe, plain):
    audio = tone(1.0)
    kw = dict(sampling_rate=SR, periodic_prompt=4, typical_mass=None, **FAST)
    none = pipe(audio, generator=seeded(), **kw).codes
    # the random tiny model hears its one condition token only faintly: guidance makes it count
    text = pipe(audio, prompt="a fast drum beat", guidance_scale=10.0, generator=seeded(), **kw).codes
    reference = pipe(audio, condition_audio=clicks(1.0), condition_audio_sampling_rate=SR, guidance_scale=10.0,
                     generator=seeded(), **kw).codes  # fmt: skip
    assert not torch.equal(none, text) and not torch.equal(none, reference) and not torch.equal(text, reference)
    unguided = pipe(audio, prompt="a fast drum beat", generator=seeded(), **kw).codes
    assert not torch.equal(unguided, text)
    for out in (text, reference, unguided):
        assert (out < 16).all()
    # without a condition guidance has nothing to mix; an empty prompt is no condition
    assert torch.equal(pipe(audio, guidance_scale=10.0, generator=seeded(), **kw).codes, none)
    assert torch.equal(pipe(audio, prompt="  ", guidance_scale=10.0, generator=seeded(), **kw).codes, none)
    for call in (dict(prompt="a waltz"), dict(condition_audio=tone(1.0), condition_audio_sampling_rate=SR)):
        with pytest.raises(GeneratorError, match="without a condition") as info:
            plain(audio, generator=seeded(), **kw, **call)
        assert "\n" not in str(info.value)


def test_audio_longer_than_the_context_is_vamped_in_windows(pipe):
    assert pipe.vampnet.config.context_frames == 75
    audio = tone(2.5)
    shapes = []
    out = pipe(audio, sampling_rate=SR, generator=seeded(),
               callback_on_step_end=lambda p, i, s, kw: shapes.append(tuple(kw["codes"].shape)) or kw, **FAST)
    assert out.audios.shape == (1, 1, len(audio)) and np.isfinite(out.audios).all()
    assert out.codes.shape[-1] == 188
    # windows of 75, 75 and 38 frames, 4 coarse passes each, then 2 coarse-to-fine passes each
    assert pipe.num_timesteps == len(shapes) == 3 * 4 + 3 * 2
    assert [s[-1] for s in shapes] == [75] * 4 + [75] * 4 + [38] * 4 + [75] * 2 + [75] * 2 + [38] * 2
    assert [s[1] for s in shapes] == [2] * 12 + [4] * 6
    out = pipe(audio, sampling_rate=SR, periodic_prompt=5, generator=seeded(), **FAST)
    assert torch.equal(out.mask, M.periodic_mask(input_codes(pipe, audio)[:, :2], 5))
    assert_kept(pipe, out, audio)
    # a window with nothing to generate (the prefix covers it) still counts its passes
    steps = []
    out = pipe(audio, sampling_rate=SR, prefix_s=1.0, generator=seeded(),
               callback_on_step_end=lambda p, i, s, kw: steps.append(i) or kw, **FAST)  # fmt: skip
    assert steps == list(range(pipe.num_timesteps)) and pipe.num_timesteps == 18
    assert torch.equal(out.codes[..., :75], input_codes(pipe, audio)[..., :75])


def test_coarse_to_fine_only_changes_fine_codebooks_where_the_coarse_changed(pipe, plain):
    audio = tone(1.0)
    codes = input_codes(pipe, audio)
    out = pipe(audio, sampling_rate=SR, prefix_s=0.5, generator=seeded(), **FAST)
    kept = ~out.mask.any(dim=1)[0]  # frames whose coarse tokens were all kept
    assert kept.sum() == 38 and kept[:38].all()
    assert torch.equal(out.codes[0, :, kept], codes[0, :, kept])  # every codebook of those frames
    assert not torch.equal(out.codes[0, 2:, ~kept], codes[0, 2:, ~kept])  # the fine ones changed elsewhere
    out = pipe(audio, sampling_rate=SR, keep_lower_codebooks=1, generator=seeded(), **FAST)
    assert torch.equal(out.codes[:, 0], codes[:, 0]) and not torch.equal(out.codes[:, 2:], codes[:, 2:])
    # without a coarse-to-fine model the output has the coarse codebooks only
    out = plain(audio, sampling_rate=SR, prefix_s=0.5, generator=seeded(), **FAST)
    assert out.codes.shape == (1, 2, codes.shape[-1]) and out.audios.shape == (1, 1, SR)
    assert torch.equal(out.codes[0, :, :38], input_codes(plain, audio)[0, :, :38])


def test_callback_and_interrupt(pipe):
    audio = tone(1.0)
    steps = []

    def callback(p, i, t, kw):
        steps.append(i)
        assert set(kw) == {"codes", "mask"}
        return kw

    pipe(audio, sampling_rate=SR, generator=seeded(), callback_on_step_end=callback, **FAST)
    assert steps == list(range(pipe.num_timesteps)) and pipe.num_timesteps == 4 + 2

    stopped = []

    def interrupt(p, i, t, kw):
        stopped.append(i)
        if i == 1:
            p._interrupt = True
        return kw

    out = pipe(audio, sampling_rate=SR, generator=seeded(), callback_on_step_end=interrupt, num_inference_steps=12)
    assert stopped == [0, 1]
    assert out.audios.shape == (1, 1, SR) and np.isfinite(out.audios).all() and (out.codes < 16).all()
    assert pipe(audio, sampling_rate=SR, generator=seeded(), **FAST).audios.shape == (1, 1, SR)  # reset next call


def test_loop(pipe):
    audio = tone(0.5)
    t = input_codes(pipe, audio).shape[-1]
    out = pipe.loop(audio, sampling_rate=SR, num_loops=3, feedback=0.5, periodic_prompt=3, generator=seeded(), **FAST)
    assert out.audios.shape == (1, 1, 3 * len(audio)) and np.isfinite(out.audios).all()
    assert out.codes.shape == (1, 4, 3 * t) and out.mask.shape == (1, 2, 3 * t)
    assert pipe.num_timesteps == 3 * (4 + 2)
    passes = out.codes.split(t, dim=-1)
    assert len({tuple(p.flatten().tolist()) for p in passes}) == 3  # each pass a new variation
    again = pipe.loop(audio, sampling_rate=SR, num_loops=3, feedback=0.5, periodic_prompt=3, generator=seeded(),
                      **FAST)  # fmt: skip
    assert torch.equal(out.codes, again.codes)


def test_loop_passes_follow_each_other_at_the_input_period(pipe):
    """Nothing generated and no feedback: every pass is the input's codes, and pass i starts at
    exactly i x the input's length (the padding of the input's last frame is not repeated)."""
    audio = tone(0.5)  # 12000 samples: 37.5 frames of 320, encoded as 38
    n = len(audio)
    original = input_codes(pipe, audio)
    t = original.shape[-1]
    assert t * 320 != n
    keep_all = torch.zeros(2, t, dtype=torch.bool)
    out = pipe.loop(audio, sampling_rate=SR, num_loops=4, feedback=0.0, mask=keep_all, generator=seeded(), **FAST)
    assert all(torch.equal(p, original) for p in out.codes.split(t, dim=-1))
    assert out.audios.shape == (1, 1, 4 * n)
    x = out.audios[0, 0]
    reconstruction = pipe.codec.decode(original[None], [None]).audio_values[0, 0, :n].numpy()
    assert np.allclose(x[:n], reconstruction, atol=1e-5)
    for i in (1, 2):  # once the decoder's state has settled, the passes repeat with the input's period
        assert np.allclose(x[i * n:(i + 1) * n], x[(i + 1) * n:(i + 2) * n], atol=1e-4)


@pytest.mark.parametrize("feedback", [0.0, 0.5, 1.0])
def test_loop_feedback(pipe, feedback):
    """Each pass vamps the last one's tokens; after the first, it also keeps each token the last
    pass generated with probability ``feedback`` (1: the passes repeat the first one)."""
    audio = tone(0.5)
    original = input_codes(pipe, audio)
    t = original.shape[-1]
    out = pipe.loop(audio, sampling_rate=SR, num_loops=3, feedback=feedback, periodic_prompt=3,
                    periodic_random_roll=True, generator=seeded(0), **FAST)  # fmt: skip
    passes, masks = out.codes.split(t, dim=-1), out.mask.split(t, dim=-1)
    starts = [original, *passes[:-1]]
    for i in range(3):  # kept tokens come from the pass before (the input for the first)
        kept = ~masks[i]
        assert torch.equal(passes[i][:, :2][kept], starts[i][:, :2][kept])
    generated = [float(m.float().mean()) for m in masks]
    if feedback == 1.0:
        assert generated[1] == generated[2] == 0.0
        assert torch.equal(passes[1], passes[0]) and torch.equal(passes[2], passes[0])
    elif feedback == 0.0:  # the recipe alone: a third of the frames kept
        assert all(0.55 < g < 0.75 for g in generated)
    else:  # about half of what the recipe would generate
        assert all(0.2 < g < 0.5 for g in generated[1:])


def _bad(**kw):
    return kw


@pytest.mark.parametrize("kwargs, message", [
    (_bad(audio=np.full(SR, np.nan, np.float32), sampling_rate=SR), "NaN|finite"),
    (_bad(audio=np.zeros(SR, np.float32), sampling_rate=SR), "silent"),
    (_bad(audio=tone(0.1), sampling_rate=SR), "at least 0.25 s"),
    (_bad(audio=tone(1.0)), "sampling_rate is required"),
    (_bad(audio=tone(1.0), sampling_rate=0), "sampling_rate must be a positive integer"),
    (_bad(audio=np.stack([tone(1.0)] * 3), sampling_rate=SR), "channels"),
    (_bad(audio=tone(1.0), sampling_rate=SR, prefix_s=-1), "prefix_s"),
    (_bad(audio=tone(1.0), sampling_rate=SR, suffix_s=float("nan")), "suffix_s"),
    (_bad(audio=tone(1.0), sampling_rate=SR, upper_codebook_mask=3), "upper_codebook_mask"),
    (_bad(audio=tone(1.0), sampling_rate=SR, keep_lower_codebooks=-1), "keep_lower_codebooks"),
    (_bad(audio=tone(1.0), sampling_rate=SR, periodic_prompt=2.5), "periodic_prompt"),
    (_bad(audio=tone(1.0), sampling_rate=SR, periodic_prompt=4, periodic_width=0), "periodic_width"),
    (_bad(audio=tone(1.0), sampling_rate=SR, dropout=1.5), "dropout"),
    (_bad(audio=tone(1.0), sampling_rate=SR, mask=torch.ones(2, 10, dtype=torch.bool)), "mask must be"),
    (_bad(audio=tone(1.0), sampling_rate=SR, mask=torch.ones(4, 75, dtype=torch.bool)), "mask must be"),
    (_bad(audio=tone(1.0), sampling_rate=SR, num_inference_steps=0), "num_inference_steps"),
    (_bad(audio=tone(1.0), sampling_rate=SR, temperature=0), "temperature"),
    (_bad(audio=tone(1.0), sampling_rate=SR, output_type="latent"), "output_type"),
    (_bad(audio=tone(1.0), sampling_rate=SR, num_waveforms_per_prompt=0), "num_waveforms_per_prompt"),
    (_bad(audio=tone(1.0), sampling_rate=SR, prompt=["a"]), "prompt must be a string"),
    (_bad(audio=tone(1.0), sampling_rate=SR, prompt="word " * 40), "tokens"),
    (_bad(audio=tone(1.0), sampling_rate=SR, condition_audio=tone(1.0)), "condition_audio_sampling_rate"),
    (_bad(), "audio_length_in_s"),
    (_bad(audio_length_in_s=0), "audio_length_in_s"),
    (_bad(audio_length_in_s=float("nan")), "audio_length_in_s"),
    (_bad(audio_length_in_s=1.0, prefix_s=0.5, periodic_prompt=3), "periodic_prompt, prefix_s need input audio"),
])  # fmt: skip
def test_bad_input_is_a_one_line_generator_error(pipe, kwargs, message):
    with pytest.raises(GeneratorError, match=message) as info:
        pipe(**{**FAST, **kwargs}, generator=seeded())
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_loops=0), "num_loops"),
    (dict(num_loops=True), "num_loops"),
    (dict(feedback=2), "feedback"),
    (dict(feedback=-0.1), "feedback"),
    (dict(periodic_promt=3), "unknown loop arguments: periodic_promt"),
    (dict(prefix_s=-1), "prefix_s"),
    (dict(output_type="latent"), "output_type"),
])  # fmt: skip
def test_bad_loop_input_is_a_one_line_generator_error(pipe, kwargs, message):
    with pytest.raises(GeneratorError, match=message) as info:
        pipe.loop(tone(0.5), sampling_rate=SR, generator=seeded(), **{**FAST, **kwargs})
    assert "\n" not in str(info.value)
    with pytest.raises(GeneratorError, match="sampling_rate is required"):
        pipe.loop(tone(0.5), **FAST)
