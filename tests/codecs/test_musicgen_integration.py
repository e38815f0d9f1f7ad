"""MusicCodecModel as the audio encoder of transformers' MusicGen, in MusicGen's 32 kHz EnCodec
layout (facebook/encodec_32khz, shrunk): same tokens and audio as transformers' EncodecModel with
the same weights, and a saved pipeline reloads offline through the Auto classes."""

import copy

import pytest
import torch
from transformers import (
    EncodecModel,
    MusicgenDecoderConfig,
    MusicgenForCausalLM,
    MusicgenForConditionalGeneration,
    T5Config,
    T5EncoderModel,
)

import hf_musiccodec.codecs  # noqa: F401 - registers MusicCodecConfig / MusicCodecModel with the Auto classes
from hf_musiccodec import MusicCodecModel
from hf_musiccodec.testing.parity import (
    OFFICIAL_CONFIGS,
    build_reference,
    convert_through_hub_layout,
    musicgen_generate_with_codes,
)

CODEBOOK_SIZE = 64   # 2048 in facebook/encodec_32khz
NUM_CODEBOOKS = 4    # 2.2 kbps there; 1.2 kbps of 6-bit codes at 50 Hz here


def _encodec_32khz():
    _, kwargs = OFFICIAL_CONFIGS["encodec_32khz"]
    shrunk = dict(kwargs, num_filters=4, hidden_size=16, num_lstm_layers=1, codebook_size=CODEBOOK_SIZE,
                  target_bandwidths=[1.2])
    reference = build_reference("encodec", **shrunk)
    assert isinstance(reference, EncodecModel) and reference.config.num_quantizers == NUM_CODEBOOKS
    return reference


def _musicgen(audio_encoder, text_encoder, decoder):
    model = MusicgenForConditionalGeneration(text_encoder=copy.deepcopy(text_encoder), audio_encoder=audio_encoder,
                                             decoder=copy.deepcopy(decoder)).eval()
    model.generation_config.update(pad_token_id=CODEBOOK_SIZE, decoder_start_token_id=CODEBOOK_SIZE)
    return model


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(T5Config(vocab_size=50, d_model=16, d_kv=8, num_heads=2, num_layers=1, d_ff=32))
    decoder = MusicgenForCausalLM(MusicgenDecoderConfig(
        vocab_size=CODEBOOK_SIZE, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32,
        num_codebooks=NUM_CODEBOOKS, max_position_embeddings=64, pad_token_id=CODEBOOK_SIZE,
        bos_token_id=CODEBOOK_SIZE, audio_channels=1))
    reference = _encodec_32khz()
    ours = convert_through_hub_layout(reference)  # our conversion of the transformers checkpoint
    assert isinstance(ours, MusicCodecModel) and ours.num_codebooks == NUM_CODEBOOKS
    return _musicgen(reference, text_encoder, decoder), _musicgen(ours, text_encoder, decoder)


def _generate(model, **inputs):
    """Greedy generation; returns (codes given to the codec's decode, audio)."""
    return musicgen_generate_with_codes(model, **inputs, do_sample=False, max_new_tokens=12, guidance_scale=None)


INPUTS = {
    "text": lambda: dict(input_ids=torch.tensor([[5, 7, 9, 1], [3, 4, 1, 0]]),
                         attention_mask=torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])),
    # an audio prompt: its codes come from the codec's encode and steer the tokens
    "audio_prompt": lambda: dict(input_ids=torch.tensor([[5, 7, 1], [3, 4, 1]]),
                                 input_values=0.3 * torch.randn(2, 1, 3 * 640,
                                                                generator=torch.Generator().manual_seed(0))),
}


@pytest.mark.parametrize("prompt", list(INPUTS))
def test_same_tokens_and_audio_as_transformers_encodec(pair, prompt):
    theirs, ours = pair
    codes_ref, audio_ref = _generate(theirs, **INPUTS[prompt]())
    codes, audio = _generate(ours, **INPUTS[prompt]())
    assert codes.shape == (1, 2, NUM_CODEBOOKS, codes.shape[-1]) and codes.shape[-1] > 3
    assert torch.equal(codes, codes_ref)
    assert audio.shape == audio_ref.shape == (2, 1, codes.shape[-1] * 640)
    torch.testing.assert_close(audio, audio_ref, rtol=1e-5, atol=1e-5)


def test_saved_pipeline_reloads_offline_and_generates_the_same(pair, tmp_path):
    _, ours = pair
    ours.save_pretrained(tmp_path)
    reloaded = MusicgenForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded.audio_encoder, MusicCodecModel)
    for prompt in INPUTS:
        codes, audio = _generate(ours, **INPUTS[prompt]())
        codes_again, audio_again = _generate(reloaded, **INPUTS[prompt]())
        assert torch.equal(codes, codes_again)
        torch.testing.assert_close(audio, audio_again, rtol=1e-5, atol=1e-5)
