"""TextToMusicPipeline follows the generator convention (save/load offline, seeds, .audios shape,
progress, callback) and adds continuation, melody, CLAP text conditioning and windows past the
trained context; bad input is a one-line GeneratorError."""

import numpy as np
import pytest
import torch

from hf_musiccodec import TextToMusicPipeline
from hf_musiccodec.pipelines import GeneratorError, check_generator_output, load_generator
from hf_musiccodec.testing.tiny import tiny_text_to_music_pipeline

SR = 24000


def tone(seconds, freq=440.0, sr=SR):
    return (0.3 * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


@pytest.fixture(scope="module")
def pipe():
    pipe = tiny_text_to_music_pipeline(context_seconds=1.0)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_convention_shapes_seeds_and_reload(pipe, tmp_path):
    out = pipe(["a waltz", "a march"], audio_length_in_s=0.5, num_waveforms_per_prompt=2, generator=seeded())
    audios = check_generator_output(out, 4, pipe.sampling_rate, 0.5)
    assert audios.shape == (4, 1, SR // 2)
    again = pipe(["a waltz", "a march"], audio_length_in_s=0.5, num_waveforms_per_prompt=2, generator=seeded())
    assert np.array_equal(audios, again.audios)
    other = pipe(["a waltz", "a march"], audio_length_in_s=0.5, num_waveforms_per_prompt=2, generator=seeded(1))
    assert not np.array_equal(audios, other.audios)
    pipe.save_pretrained(tmp_path / "p")
    loaded = load_generator(tmp_path / "p")
    assert isinstance(loaded, TextToMusicPipeline) and loaded.sampling_rate == SR
    loaded.set_progress_bar_config(disable=True)
    reloaded = loaded(["a waltz", "a march"], audio_length_in_s=0.5, num_waveforms_per_prompt=2, generator=seeded())
    assert np.array_equal(audios, reloaded.audios)
    assert isinstance(pipe("x", audio_length_in_s=0.2, output_type="pt", generator=seeded()).audios, torch.Tensor)


def test_guidance_changes_the_output_and_empty_prompt_is_unconditional(pipe):
    guided = pipe("a waltz", audio_length_in_s=0.4, guidance_scale=3.0, generator=seeded()).audios
    plain = pipe("a waltz", audio_length_in_s=0.4, guidance_scale=1.0, generator=seeded()).audios
    assert not np.array_equal(guided, plain)
    # the default is the folder's generation_config (3 here): a folder carries its tuned guidance
    assert np.array_equal(pipe("a waltz", audio_length_in_s=0.4, generator=seeded()).audios, guided)
    pipe.musicgen.generation_config.guidance_scale = 1.0
    try:
        assert np.array_equal(pipe("a waltz", audio_length_in_s=0.4, generator=seeded()).audios, plain)
    finally:
        pipe.musicgen.generation_config.guidance_scale = 3.0
    empty = pipe("", audio_length_in_s=0.4, generator=seeded()).audios
    none = pipe(None, audio_length_in_s=0.4, generator=seeded()).audios
    assert np.array_equal(empty, none)


def test_callback_sees_every_step_and_can_interrupt(pipe):
    steps = []

    def callback(p, step, t, kwargs):
        steps.append((step, kwargs["codes"].shape[-1]))
        if step == 9:
            p._interrupt = True
        return kwargs

    full = []
    pipe("a", audio_length_in_s=0.4, generator=seeded(), callback_on_step_end=lambda p, i, t, kw: full.append(i) or kw)
    assert full == list(range(30 + 1))  # 30 frames + the one-step delay of the second codebook
    out = pipe("a", audio_length_in_s=0.4, generator=seeded(), callback_on_step_end=callback)
    assert [s for s, _ in steps] == list(range(10)) and steps[-1][1] == 11  # start token + 10 steps
    assert out.audios.shape[0] == 1 and np.isfinite(out.audios).all()


def test_continuation_starts_with_the_prompt(pipe):
    prompt = tone(0.6)
    out = pipe("a", audio_length_in_s=1.0, audio_prompt=prompt, audio_prompt_sampling_rate=SR, generator=seeded())
    assert out.audios.shape == (1, 1, SR)
    codec = pipe.codec
    prompt_codes = codec.encode(torch.from_numpy(prompt)[None, None]).audio_codes[0]
    out_codes = codec.encode(torch.from_numpy(out.audios[:, :, : prompt.shape[-1]])).audio_codes[0]
    agree = (prompt_codes[..., 2:-2] == out_codes[..., 2:-2]).float().mean()
    assert agree > 0.9  # the output's first 0.6 s is the prompt, re-encoded (edges aside)
    # a prompt resampled from another rate and in stereo is accepted
    stereo = np.stack([tone(0.6, sr=16000)] * 2)
    assert pipe("a", audio_length_in_s=0.8, audio_prompt=stereo, audio_prompt_sampling_rate=16000,
                generator=seeded()).audios.shape == (1, 1, int(0.8 * SR))  # fmt: skip


def test_melody_and_clap_condition_the_tokens(pipe):
    plain = pipe("a", audio_length_in_s=0.4, generator=seeded(), do_sample=False).audios
    melody = pipe("a", audio_length_in_s=0.4, generator=seeded(), do_sample=False, melody=tone(1.0, 523.25),
                  melody_sampling_rate=SR).audios  # fmt: skip
    clap = pipe("a", audio_length_in_s=0.4, generator=seeded(), do_sample=False, use_clap=True).audios
    assert not np.array_equal(plain, melody) and not np.array_equal(plain, clap)
    # a melody shorter than the output is "no melody" past its end; an empty prompt has no CLAP token
    pipe(["a", ""], audio_length_in_s=0.8, melody=tone(0.5), melody_sampling_rate=SR, use_clap=True,
         generator=seeded())  # fmt: skip


def test_windows_past_the_trained_context(pipe):
    assert pipe.context_frames == 75  # 1 s
    steps = []
    out = pipe("a", audio_length_in_s=2.5, window_overlap_s=0.4, generator=seeded(),
               callback_on_step_end=lambda p, i, t, kw: steps.append(i) or kw)  # fmt: skip
    assert out.audios.shape == (1, 1, int(2.5 * SR)) and np.isfinite(out.audios).all()
    # windows: [0, 75) then [45, 120), [90, 165), [135, 188): 75 + 45 + 45 + 23 new frames, +1 delay step each
    assert len(steps) == pipe.num_timesteps == pipe._steps(188, 0, 75, 30, 2) == 188 + 4


@pytest.mark.parametrize("kwargs, message", [
    (dict(prompt=""), None),
    (dict(prompt=["ok", 3]), "prompt must be a string"),
    (dict(prompt=[]), "prompt must be a string"),
    (dict(prompt="word " * 80), "tokens; at most 64"),
    (dict(audio_length_in_s=0), "audio_length_in_s"),
    (dict(audio_length_in_s=float("nan")), "audio_length_in_s"),
    (dict(guidance_scale=-1), "guidance_scale"),
    (dict(num_waveforms_per_prompt=0), "num_waveforms_per_prompt"),
    (dict(audio_prompt=tone(0.5)), "audio_prompt_sampling_rate is required"),
    (dict(audio_prompt=np.zeros(SR, np.float32), audio_prompt_sampling_rate=SR), "silent"),
    (dict(audio_prompt=tone(0.1), audio_prompt_sampling_rate=SR), "at least 0.5 s"),
    (dict(audio_prompt=np.full(SR, np.nan, np.float32), audio_prompt_sampling_rate=SR), "NaN|finite"),
    (dict(melody=tone(0.2), melody_sampling_rate=SR), "at least 0.5 s"),
    (dict(output_type="latent"), "output_type"),
])  # fmt: skip
def test_bad_input_is_one_line(pipe, kwargs, message):
    kwargs = {"prompt": "a", "audio_length_in_s": 0.2, **kwargs}
    if message is None:
        pipe(**kwargs, generator=seeded())
        return
    with pytest.raises(GeneratorError, match=message) as info:
        pipe(**kwargs, generator=seeded())
    assert "\n" not in str(info.value)


def test_conditions_the_model_was_not_trained_with_are_refused(tmp_path):
    pipe = tiny_text_to_music_pipeline(with_clap=False, with_melody=False)
    pipe.set_progress_bar_config(disable=True)
    with pytest.raises(GeneratorError, match="melody"):
        pipe("a", audio_length_in_s=0.2, melody=tone(1.0), melody_sampling_rate=SR)
    with pytest.raises(GeneratorError, match="CLAP"):
        pipe("a", audio_length_in_s=0.2, use_clap=True)
    pipe.save_pretrained(tmp_path / "p")  # a text-only conditioner saves and loads too
    assert TextToMusicPipeline.from_pretrained(tmp_path / "p").conditioner.config.clap_dim == 0


@pytest.fixture(scope="module")
def attribute_pipe():
    pipe = tiny_text_to_music_pipeline(context_seconds=1.0, with_attributes=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_tempo_and_key_condition_the_tokens_from_arguments_or_the_prompt(attribute_pipe):
    pipe = attribute_pipe

    def greedy(prompt, **kw):
        return pipe(prompt, audio_length_in_s=1.6, generator=seeded(), do_sample=False, **kw).audios

    plain = greedy("a tune")
    fast, slow = greedy("a tune", bpm=150), greedy("a tune", bpm=70)
    minor = greedy("a tune", key="F# minor")
    assert not np.array_equal(plain, fast) and not np.array_equal(fast, slow) and not np.array_equal(plain, minor)
    # the prompt's own "150 BPM" / "in F# minor" are the same conditions (windows past the context included)
    assert np.array_equal(greedy("a tune 150 BPM", read_prompt_attributes=False, bpm=150), greedy("a tune 150 BPM"))
    assert np.array_equal(greedy("a tune in F# minor", key=18), greedy("a tune in F# minor"))
    assert not np.array_equal(greedy("a tune 150 BPM"), greedy("a tune 150 BPM", read_prompt_attributes=False))
    # a tempo word draws a tempo in its band, a bare mode a tonic: repeatable with the seed
    assert np.array_equal(greedy("a fast tune in a minor key"), greedy("a fast tune in a minor key"))
    inputs = pipe.prepare_attributes(["fast, minor key", "x"], 2, 300, None, None, True, seeded())
    assert inputs["rhythm_on"].tolist() == [True, True, False, False]
    assert inputs["key_on"].tolist() == [True, True, False, False] and (inputs["key"][:2] >= 12).all()
    for b in range(2):
        beat = np.flatnonzero(np.diff(inputs["rhythm"][b].numpy()) < 0)
        assert 120 <= 60 * 75 / np.median(np.diff(beat)) <= 161  # the "fast" band


def test_beat_phase_and_key_reach_the_decoder_input_of_every_frame(tmp_path):
    pipe = tiny_text_to_music_pipeline(context_seconds=1.0, with_attributes=True, decoder_inputs=True)
    pipe.set_progress_bar_config(disable=True)
    cond = pipe.conditioner
    text, mask = torch.zeros(2, 3, 384), torch.ones(2, 3, dtype=torch.long)
    rhythm = torch.randint(0, 8, (2, 20))
    with torch.no_grad():
        _, _, added = cond(text, mask, rhythm=rhythm, rhythm_on=torch.tensor([True, False]),
                           key=torch.tensor([3, -1]), key_on=torch.tensor([True, True]), frames=24)  # fmt: skip
        tonic = cond.key_input.weight[3]
        assert added.shape == (2, 24, 32)
        assert torch.allclose(added[0, :20], cond.rhythm_input(rhythm[0]) + tonic)
        assert torch.allclose(added[0, 20:], tonic.expand(4, -1))  # past the given phases: the key alone
        assert not added[1].any()  # rhythm off, key unknown
        assert len(cond(text, mask, rhythm=rhythm)) == 2  # without frames: the two outputs as before
        plain = tiny_text_to_music_pipeline(with_attributes=True).conditioner
        assert plain(text, mask, rhythm=rhythm, frames=20)[2] is None  # cross-attention tokens only

    def greedy(p, **kw):
        return p("a tune", audio_length_in_s=1.6, generator=seeded(), do_sample=False, **kw).audios

    fast = greedy(pipe, bpm=150)
    assert not np.array_equal(fast, greedy(pipe, bpm=70)) and not np.array_equal(fast, greedy(pipe))
    pipe.save_pretrained(tmp_path / "p")
    reloaded = TextToMusicPipeline.from_pretrained(tmp_path / "p")
    reloaded.set_progress_bar_config(disable=True)
    assert reloaded.conditioner.config.decoder_input_size == 32 and np.array_equal(greedy(reloaded, bpm=150), fast)
    with torch.no_grad():  # the decoder-input path is in use: zeroed, the tokens change
        reloaded.conditioner.rhythm_input.weight.zero_()
    assert not np.array_equal(greedy(reloaded, bpm=150), fast)


def test_key_guidance_scale_strengthens_a_set_key_only(attribute_pipe):
    def greedy(prompt, **kw):
        return attribute_pipe(prompt, audio_length_in_s=1.6, generator=seeded(), do_sample=False, **kw).audios

    minor = greedy("a tune", key="F# minor")
    assert np.array_equal(greedy("a tune", key="F# minor", key_guidance_scale=0.0), minor)
    assert not np.array_equal(greedy("a tune", key="F# minor", key_guidance_scale=4.0), minor)
    assert np.array_equal(greedy("a tune", key_guidance_scale=4.0), greedy("a tune"))  # no key: no term


@pytest.mark.parametrize("kwargs, message", [
    (dict(key_guidance_scale=-1), "key_guidance_scale must be a number >= 0"),
    (dict(bpm=10), "bpm must be 30-300"),
    (dict(bpm="fast"), "bpm must be"),
    (dict(key="H major"), "not a key name"),
    (dict(key=30), "key must be"),
    (dict(prompt="a march at 900 BPM"), "30-300 BPM"),
])  # fmt: skip
def test_bad_tempo_or_key_is_one_line(attribute_pipe, kwargs, message):
    kwargs = {"prompt": "a", "audio_length_in_s": 0.2, **kwargs}
    with pytest.raises(GeneratorError, match=message) as info:
        attribute_pipe(**kwargs, generator=seeded())
    assert "\n" not in str(info.value)


def test_tempo_and_key_need_a_model_trained_with_them(pipe):
    with pytest.raises(GeneratorError, match="rhythm condition"):
        pipe("a", audio_length_in_s=0.2, bpm=120)
    with pytest.raises(GeneratorError, match="key condition"):
        pipe("a", audio_length_in_s=0.2, key="C major")
    pipe("a tune at 120 BPM in C major", audio_length_in_s=0.2)  # stated in the prompt: the text still reads it
