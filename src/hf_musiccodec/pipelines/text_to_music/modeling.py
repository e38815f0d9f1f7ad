"""The text-to-music LM: transformers' ``MusicgenForConditionalGeneration`` with our parts.

Reused from transformers: the whole model (decoder, delay pattern, per-codebook heads and loss,
text projection, ``generate`` with classifier-free guidance, ``pipeline("text-to-audio")``).
Ours: the audio encoder is any :class:`MusicCodecModel` (registered with the Auto classes) and the
text encoder is :class:`FrozenMiniLMModel` (MiniLM whose weights stay in their package), so a
saved folder loads offline once ``hf_musiccodec`` is imported.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
from torch.nn import functional as F
from transformers import MusicgenDecoderConfig, MusicgenForCausalLM, MusicgenForConditionalGeneration

from ...conditioning.frozen_minilm import FrozenMiniLMConfig, FrozenMiniLMModel
from ...conditioning.text_encoder import minilm_path

__all__ = ["build_text_to_music_model", "codec_at_bandwidth", "frame_inputs_added", "load_lm_tokenizer",
           "replace_codec_decoder", "TOKENIZER_INPUTS"]

# MusicGen's generate passes every tokenizer output to the model; BERT's token_type_ids are not an input.
TOKENIZER_INPUTS = ["input_ids", "attention_mask"]


def codec_at_bandwidth(codec, bandwidth: float | None):
    """A copy of ``codec`` whose only (so default) bandwidth is ``bandwidth``: MusicGen calls
    ``encode`` without one, and the LM is trained on that many codebooks."""
    if bandwidth is None:
        return codec
    codec.num_quantizers_for_bandwidth(bandwidth)  # one-line error if unsupported
    codec = copy.deepcopy(codec)
    codec.config.target_bandwidths = [float(bandwidth)]
    return codec


def build_text_to_music_model(codec, bandwidth: float | None = None, *, hidden_size: int = 256, num_layers: int = 6,
                              num_heads: int = 4, ffn_dim: int = 1024, max_position_embeddings: int = 2048,
                              dropout: float = 0.1, text_encoder=None) -> MusicgenForConditionalGeneration:
    """A fresh (randomly initialised decoder) MusicGen over ``codec`` at ``bandwidth`` kbps.

    The decoder predicts ``codec.num_quantizers_for_bandwidth(bandwidth)`` codebooks of
    ``codebook_size`` entries; its start/pad token is ``codebook_size`` (as in MusicGen).
    """
    codec = codec_at_bandwidth(codec, bandwidth)
    num_codebooks = codec.num_quantizers_for_bandwidth(None)
    vocab = codec.config.codebook_size
    decoder = MusicgenForCausalLM(MusicgenDecoderConfig(
        vocab_size=vocab, hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
        ffn_dim=ffn_dim, num_codebooks=num_codebooks, max_position_embeddings=max_position_embeddings,
        dropout=dropout, pad_token_id=vocab, bos_token_id=vocab, decoder_start_token_id=vocab, audio_channels=1,
    ))  # fmt: skip
    text_encoder = text_encoder or FrozenMiniLMModel(FrozenMiniLMConfig())
    model = MusicgenForConditionalGeneration(text_encoder=text_encoder, audio_encoder=codec, decoder=decoder)
    # Composed from built parts, the decoder has no attention implementation set: transformers then
    # builds no cross-attention mask and attends to masked condition tokens (a loaded model masks them).
    model.decoder.set_attn_implementation("sdpa")
    # audiocraft's sampling defaults for MusicGen: top-k 250, guidance 3.
    model.generation_config.update(pad_token_id=vocab, decoder_start_token_id=vocab, bos_token_id=vocab,
                                   do_sample=True, top_k=250, guidance_scale=3.0,
                                   max_length=max_position_embeddings)  # fmt: skip
    return model


def replace_codec_decoder(musicgen, codec) -> None:
    """Give the LM ``codec``'s decoder, in place: a decoder fine-tuned on frozen codes (see
    ``CodecTrainingConfig.frozen``) changes how the LM's tokens sound, not which tokens it learned.
    Refuses a codec whose encoder or codebooks differ in any weight (its codes would not be the
    LM's) or whose architecture differs."""
    own = musicgen.audio_encoder
    ours, theirs = own.state_dict(), codec.state_dict()
    if set(ours) != set(theirs) or any(ours[k].shape != theirs[k].shape for k in ours):
        raise ValueError("the codec's architecture differs from the LM's codec")
    changed = sorted({k.split(".")[0] for k in ours if not torch.equal(ours[k], theirs[k])})
    if set(changed) - {"decoder"}:
        raise ValueError(f"the codec's {' and '.join(p for p in changed if p != 'decoder')} differ from the "
                         "LM's: its codes are not the ones the LM was trained on")
    own.decoder.load_state_dict(codec.decoder.state_dict())


def load_lm_tokenizer(folder=None):
    """MiniLM's tokenizer (offline), returning only the inputs MusicGen's text encoder takes."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder or minilm_path(), local_files_only=True,
                                         model_input_names=TOKENIZER_INPUTS)


@contextmanager
def frame_inputs_added(musicgen, frame_inputs: torch.Tensor | None):
    """Within the block, the decoder's input at position p gets ``frame_inputs[:, p]`` added
    (``(B, P, hidden)``; positions from P on get nothing), as if it were part of the token embeddings.

    Why not ``decoder_inputs_embeds``: transformers' MusicGen decoder then reads its length from the
    wrong axis (``inputs_embeds[:, :, -1:]`` has length 1), and every position gets position 0's
    sinusoid. The additions join instead at the position table's output, which the decoder adds to
    the token embeddings at the same point (``inputs_embeds + positions``), offset by the cache's
    length as the positions are, so a cached decode step gets its own position's addition.
    """
    if frame_inputs is None:
        yield
        return

    def add(module, args, kwargs, positions):
        start = kwargs.get("cache_length", args[1] if len(args) > 1 else 0)
        part = frame_inputs[:, start : start + positions.shape[0]]
        part = F.pad(part, (0, 0, 0, positions.shape[0] - part.shape[1]))
        return positions.to(part.dtype) + part

    handle = musicgen.decoder.model.decoder.embed_positions.register_forward_hook(add, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
