"""The text-to-music LM is transformers' MusicGen with our codec and the frozen MiniLM: it saves and
reloads offline as one folder without MiniLM's weights, runs in pipeline("text-to-audio"), and our
sampling loop draws exactly the tokens transformers' generate draws (greedy, with and without
guidance), while training sees the delay pattern generation uses."""

import json

import pytest
import torch
from transformers import MusicgenForConditionalGeneration, pipeline

from hf_musiccodec.pipelines.text_to_music import load_lm_tokenizer
from hf_musiccodec.pipelines.text_to_music.delay_pattern import delayed_sequence, training_inputs
from hf_musiccodec.pipelines.text_to_music.modeling import frame_inputs_added
from hf_musiccodec.pipelines.text_to_music.sampling import (
    ConditionGuidance,
    SamplingOptions,
    filter_logits,
    sample_window,
    undelay,
)
from hf_musiccodec.testing.parity import musicgen_generate_with_codes
from hf_musiccodec.testing.tiny import tiny_text_to_music_pipeline


@pytest.fixture(scope="module")
def pipe():
    pipe = tiny_text_to_music_pipeline(context_seconds=2.0)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_saved_folder_has_no_minilm_weights_and_reloads_offline(pipe, tmp_path):
    musicgen = pipe.musicgen
    assert not any(k.startswith("text_encoder.") for k in musicgen.state_dict())
    musicgen.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["text_encoder"]["model_type"] == "frozen_minilm"
    assert config["audio_encoder"]["model_type"] == "music_codec"
    size = sum(p.stat().st_size for p in (tmp_path / "m").glob("*.safetensors"))
    assert size < 5_000_000  # MiniLM alone is 90 MB
    again = MusicgenForConditionalGeneration.from_pretrained(tmp_path / "m").eval()
    for (k, a), (_, b) in zip(musicgen.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k
    tokens = load_lm_tokenizer()(["a slow waltz"], return_tensors="pt")
    assert torch.equal(musicgen.text_encoder(**tokens).last_hidden_state,
                       again.text_encoder(**tokens).last_hidden_state)  # fmt: skip


def test_transformers_text_to_audio_pipeline_runs_the_saved_folder(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "p")
    tta = pipeline("text-to-audio", model=str(tmp_path / "p" / "musicgen"))
    assert tta.sampling_rate == 24000
    out = tta("a fast jig on the fiddle", forward_params={"max_new_tokens": 20, "do_sample": False})
    assert out["audio"].shape[-1] == (20 - 1) * 320  # the delay pattern costs K - 1 = 1 step


def test_training_inputs_follow_the_delay_pattern_of_generate(pipe):
    decoder = pipe.musicgen.decoder
    codes = torch.randint(0, 16, (2, 2, 5))
    seq = delayed_sequence(decoder, codes)
    pad = decoder.config.pad_token_id
    assert seq.shape == (2, 2, 7)
    assert torch.equal(seq[:, 0, 1:6], codes[:, 0]) and torch.equal(seq[:, 1, 2:7], codes[:, 1])
    assert (seq[:, 0, [0, 6]] == pad).all() and (seq[:, 1, :2] == pad).all()
    inputs, labels = training_inputs(decoder, codes)
    assert torch.equal(inputs.reshape(2, 2, 6), seq[..., :-1]) and torch.equal(labels, seq[..., 1:].transpose(1, 2))
    assert torch.equal(undelay(seq.reshape(4, 7), 2, 5), codes)


def _text_inputs(texts):
    return load_lm_tokenizer()(texts, padding=True, return_tensors="pt")


@pytest.mark.parametrize("guidance", [None, 3.0])
def test_sampling_loop_draws_the_tokens_of_transformers_generate(pipe, guidance):
    musicgen = pipe.musicgen
    inputs = _text_inputs(["a slow chorale for strings", "fast"])
    frames = 12
    codes, _ = musicgen_generate_with_codes(musicgen, **inputs, do_sample=False, max_new_tokens=frames + 1,
                                            guidance_scale=guidance)  # fmt: skip
    states = musicgen.text_encoder(**inputs).last_hidden_state
    ours = sample_window(musicgen, states, inputs["attention_mask"], frames,
                         SamplingOptions(guidance_scale=guidance, do_sample=False))  # fmt: skip
    assert torch.equal(ours, codes[0])


def test_continuation_keeps_the_prompt_codes(pipe):
    musicgen = pipe.musicgen
    inputs = _text_inputs(["a march"])
    states = musicgen.text_encoder(**inputs).last_hidden_state
    prompt = torch.randint(0, 16, (1, 2, 7))
    codes = sample_window(musicgen, states, inputs["attention_mask"], 15, SamplingOptions(do_sample=False), prompt)
    assert codes.shape == (1, 2, 15) and torch.equal(codes[..., :7], prompt)


def test_frame_inputs_reach_only_their_own_position_and_later():
    """frame_inputs_added adds frame p's vector to decoder input p (causal: earlier logits unchanged),
    and keeps the position sinusoids (transformers' decoder_inputs_embeds would lose them)."""
    musicgen = tiny_text_to_music_pipeline(context_seconds=1.0, decoder_inputs=True).musicgen
    states, mask = torch.randn(1, 4, 384), torch.ones(1, 4, dtype=torch.long)
    ids = torch.randint(0, 16, (2, 10))
    frame_inputs = torch.zeros(1, 10, 32)

    def logits(added):
        with torch.no_grad(), frame_inputs_added(musicgen, added):
            return musicgen(encoder_outputs=(states,), attention_mask=mask, decoder_input_ids=ids).logits

    plain = logits(None)
    assert torch.equal(logits(frame_inputs), plain)  # zeros add nothing, and the hook is gone after the block
    frame_inputs[0, 6] = 1.0
    moved = logits(frame_inputs)
    assert torch.equal(moved[:, :6], plain[:, :6]) and not torch.allclose(moved[:, 6], plain[:, 6])
    assert torch.equal(logits(None), plain)
    # shorter than the sequence: the positions past it get nothing
    assert torch.equal(logits(frame_inputs[:, :3]), plain)


@pytest.mark.parametrize("guidance", [None, 3.0])
def test_sampling_with_frame_inputs_fast_path_draws_the_tokens_of_transformers_forward(guidance):
    musicgen = tiny_text_to_music_pipeline(context_seconds=1.0, decoder_inputs=True).musicgen
    states, mask = torch.randn(2, 5, 384), torch.ones(2, 5, dtype=torch.long)
    frame_inputs = torch.randn(2, 40, 32)
    options = SamplingOptions(guidance_scale=guidance)

    def draw(**kw):
        return sample_window(musicgen, states, mask, 40, options, generator=torch.Generator().manual_seed(0), **kw)

    fast = draw(frame_inputs=frame_inputs)
    assert torch.equal(fast, draw(frame_inputs=frame_inputs, fast=False))
    assert not torch.equal(fast, draw())
    assert torch.equal(draw(), draw(frame_inputs=torch.zeros_like(frame_inputs)))
    prompt = fast[..., :9]  # a continuation keeps the prompt and sees the same additions
    assert torch.equal(sample_window(musicgen, states, mask, 40, options, prompt, frame_inputs=frame_inputs,
                                     generator=torch.Generator().manual_seed(1))[..., :9], prompt)  # fmt: skip


@pytest.mark.parametrize("guidance", [None, 3.0])
def test_a_conditions_own_guidance_term(guidance):
    """ConditionGuidance adds s * (cond - without) to the logits: scale 0 draws the tokens of no term,
    a scale changes them, and the fast path draws the tokens of transformers' forward with it."""
    musicgen = tiny_text_to_music_pipeline(context_seconds=1.0, decoder_inputs=True).musicgen
    states, mask = torch.randn(2, 5, 384), torch.ones(2, 5, dtype=torch.long)
    frame_inputs = torch.randn(2, 30, 32)
    without = (states.clone(), torch.tensor([[1, 1, 1, 0, 0]] * 2), None)  # two tokens and the inputs off
    options = SamplingOptions(guidance_scale=guidance)

    def draw(scale=None, **kw):
        terms = [] if scale is None else [ConditionGuidance(*without, scale=scale)]
        return sample_window(musicgen, states, mask, 30, options, generator=torch.Generator().manual_seed(0),
                             frame_inputs=frame_inputs, condition_guidance=terms, **kw)  # fmt: skip

    plain = draw()
    assert torch.equal(draw(0.0), plain)
    steered = draw(4.0)
    assert not torch.equal(steered, plain) and torch.equal(draw(4.0, fast=False), steered)


def test_filter_logits_top_k_and_top_p():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
    assert torch.isinf(filter_logits(logits, SamplingOptions(top_k=2))[0, 2:]).all()
    kept = filter_logits(logits, SamplingOptions(top_k=0, top_p=0.7))
    assert torch.isfinite(kept[0, :2]).all() and torch.isinf(kept[0, 2:]).all()


def test_masked_condition_tokens_are_ignored_when_built_and_when_loaded(pipe, tmp_path):
    """Training (a built model) and inference (a loaded one) see the same conditions: a masked token
    changes nothing, and an all-masked (unconditional) row stays finite."""
    pipe.musicgen.save_pretrained(tmp_path / "m")
    loaded = MusicgenForConditionalGeneration.from_pretrained(tmp_path / "m").eval()
    states, ids = torch.randn(1, 5, 384), torch.full((2, 3), 16)
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    for model in (pipe.musicgen, loaded):
        with torch.no_grad():
            full = model(encoder_outputs=(states,), attention_mask=mask, decoder_input_ids=ids).logits
            cut = model(encoder_outputs=(states[:, :3],), attention_mask=mask[:, :3], decoder_input_ids=ids).logits
            none = model(encoder_outputs=(states,), attention_mask=0 * mask, decoder_input_ids=ids).logits
        assert torch.allclose(full, cut, atol=1e-5) and torch.isfinite(none).all()


def test_replacing_the_codec_decoder_keeps_the_codes_and_refuses_other_codes(pipe):
    import copy

    from hf_musiccodec.pipelines.text_to_music.modeling import replace_codec_decoder

    musicgen = copy.deepcopy(pipe.musicgen)
    tuned = copy.deepcopy(musicgen.audio_encoder)
    with torch.no_grad():
        for p in tuned.decoder.parameters():
            p.add_(0.01)
    codes = torch.randint(0, musicgen.decoder.config.vocab_size, (1, 1, musicgen.decoder.num_codebooks, 8))
    replace_codec_decoder(musicgen, tuned)
    assert torch.equal(musicgen.audio_encoder.decode(codes, [None]).audio_values,
                       tuned.decode(codes, [None]).audio_values)
    other = copy.deepcopy(tuned)
    with torch.no_grad():
        next(other.encoder.parameters()).add_(0.01)
    with pytest.raises(ValueError, match="encoder differ"):
        replace_codec_decoder(musicgen, other)


def test_replace_codec_decoder_script_writes_a_new_pipeline_and_refuses_other_codes(pipe, tmp_path, capsys):
    import copy
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("replace", root / "scripts" / "replace_lm_codec_decoder.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    pipe.save_pretrained(tmp_path / "lm")
    tuned = copy.deepcopy(pipe.musicgen.audio_encoder)
    with torch.no_grad():
        for p in tuned.decoder.parameters():
            p.mul_(0.5)
    tuned.save_pretrained(tmp_path / "codec")
    argv = ["--model", str(tmp_path / "lm"), "--codec", str(tmp_path / "codec"), "--out", str(tmp_path / "new")]
    assert script.main(argv) == 0
    from hf_musiccodec.pipelines.text_to_music import TextToMusicPipeline

    new = TextToMusicPipeline.from_pretrained(tmp_path / "new").musicgen.audio_encoder.state_dict()
    assert all(torch.equal(v, new[f"decoder.{k}"]) for k, v in tuned.decoder.state_dict().items())
    assert script.main(argv) == 2 and "exists" in capsys.readouterr().err
    state = tuned.state_dict()  # the codebooks are EMA buffers; the state dict shares their memory
    next(v for k, v in state.items() if k.startswith("quantizer.") and v.is_floating_point()).add_(1.0)
    tuned.save_pretrained(tmp_path / "other")
    argv = ["--model", str(tmp_path / "lm"), "--codec", str(tmp_path / "other"), "--out", str(tmp_path / "bad")]
    assert script.main(argv) == 2 and "quantizer differ" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
