"""The conditions of the text-to-music LM as one sequence of tokens for MusicGen's cross-attention.

transformers' MusicGen attends to one "encoder" sequence: the text encoder's token states. This
module appends two optional conditions to it, each as tokens of the text encoder's width (so
MusicGen's own ``enc_to_dec_proj`` maps all of them to the decoder):

* **CLAP** (MusicLM's MuLan idea): one token, a projection of a joint text-audio embedding. In
  training it is the *audio* embedding of the clip, so uncaptioned music can train the model; at
  inference the *text* embedding of the prompt takes its place.
* **melody** (MusicGen-melody's chroma): the argmax pitch class per codec frame (13 values, 12 =
  unpitched), one token per ``melody_stride`` frames, each with a sinusoidal code of the decoder
  position it belongs to, so cross-attention can find the token of the frame being generated.
* **rhythm**: the beat phase per codec frame (``musical_attributes.beat_phase_tokens``), tokens
  made as the melody's (one per ``melody_stride`` frames, positioned): a beat grid at the tempo
  asked for.
* **key**: three tokens, the key's tonic triad as pitch classes of the melody's embedding table
  (so a key reuses what the melody condition taught about each pitch class), each with a role.

With ``decoder_input_size`` set, the beat phase and the key also reach the decoder *at every
frame*: an embedding of the frame's beat phase and of the key, added to the decoder's input at
that frame's position (:func:`~.modeling.frame_inputs_added`). Through cross-attention alone the
decoder has to learn to look up the token of its own frame before it can use it; three fine-tunes
of that design (2,900 steps) left the tempo of the output unchanged. Added to the input, "a beat
starts here" is a local fact of the frame being predicted.

Each condition has an on/off flag per example; off means absent (masked out), which is also how
classifier-free guidance's unconditional half is made (every flag off, as transformers does).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PretrainedConfig, PreTrainedModel
from transformers.models.musicgen.modeling_musicgen import MusicgenSinusoidalPositionalEmbedding

from ...conditioning.musical_attributes import NUM_KEYS, key_triad

__all__ = ["MusicConditionerConfig", "MusicConditioner"]

_TRIADS = [key_triad(k) for k in range(NUM_KEYS)]

# The rhythm tokens' content is added to the decoder's position sinusoids (values in [-1, 1], std
# ~0.7); at the usual 0.02 init a beat phase was invisible beside them: after a 600-step fine-tune,
# bpm=70 and bpm=150 gave bit-identical audio. Drawn at the sinusoids' scale, each phase is distinct
# from the first step.
FRAMEWISE_EMBEDDING_STD = 0.5
# The per-frame decoder inputs start at the scale of the trained codebook embeddings they are added
# to (norms 0.35-0.8 over 256 dims in the bundled model): visible from the first step, not disruptive.
DECODER_INPUT_STD = 0.05


class MusicConditionerConfig(PretrainedConfig):
    """Args:
    hidden_size: width of the condition tokens: the text encoder's hidden size (MiniLM: 384).
    clap_dim: size of the CLAP embedding (0: no CLAP condition).
    melody_vocab: pitch-class tokens incl. "unpitched" (0: no melody condition).
    melody_stride: codec frames per melody token (75 Hz / 3 = 25 melody tokens per second); also
        per rhythm token.
    rhythm_vocab: beat phases a beat is divided into (0: no rhythm condition).
    key_condition: a key condition (needs the melody's pitch-class table).
    decoder_input_size: the decoder's hidden size, to add the beat phase and the key to its input
        at every frame as well (0: cross-attention tokens only).
    """

    model_type = "music_conditioner"

    def __init__(self, hidden_size: int = 384, clap_dim: int = 256, melody_vocab: int = 13, melody_stride: int = 3,
                 rhythm_vocab: int = 0, key_condition: bool = False, decoder_input_size: int = 0, **kwargs):
        self.hidden_size = int(hidden_size)
        self.clap_dim = int(clap_dim)
        self.melody_vocab = int(melody_vocab)
        self.melody_stride = int(melody_stride)
        self.rhythm_vocab = int(rhythm_vocab)
        self.key_condition = bool(key_condition)
        self.decoder_input_size = int(decoder_input_size)
        if self.key_condition and self.melody_vocab < 12:
            raise ValueError("key_condition needs the melody's pitch-class table (melody_vocab >= 12)")
        super().__init__(**kwargs)


class MusicConditioner(PreTrainedModel):
    config_class = MusicConditionerConfig
    base_model_prefix = "conditioner"

    def __init__(self, config: MusicConditionerConfig):
        super().__init__(config)
        h = config.hidden_size
        if config.clap_dim:
            self.clap_projection = nn.Sequential(nn.Linear(config.clap_dim, h), nn.GELU(), nn.Linear(h, h))
            self.clap_type = nn.Parameter(torch.zeros(h))
        if config.melody_vocab:
            self.melody_embedding = nn.Embedding(config.melody_vocab, h)
            self.melody_type = nn.Parameter(torch.zeros(h))
        if config.rhythm_vocab:
            self.rhythm_embedding = nn.Embedding(config.rhythm_vocab, h)
            self.rhythm_type = nn.Parameter(torch.zeros(h))
        if config.key_condition:
            self.key_roles = nn.Parameter(torch.zeros(3, h))  # tonic, third, fifth
        if config.decoder_input_size and config.rhythm_vocab:
            self.rhythm_input = nn.Embedding(config.rhythm_vocab, config.decoder_input_size)
        if config.decoder_input_size and config.key_condition:
            self.key_input = nn.Embedding(NUM_KEYS, config.decoder_input_size)
        # A text-only conditioner has no parameters: this buffer follows .to() so device/dtype still
        # answer, and is saved so its folder still has a weights file for from_pretrained.
        self.register_buffer("anchor", torch.zeros(()))
        self.post_init()

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    @property
    def dtype(self) -> torch.dtype:
        return self.anchor.dtype

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif module is getattr(self, "rhythm_embedding", None):
            nn.init.normal_(module.weight, std=FRAMEWISE_EMBEDDING_STD)
        elif module is getattr(self, "rhythm_input", None) or module is getattr(self, "key_input", None):
            nn.init.normal_(module.weight, std=DECODER_INPUT_STD)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def melody_tokens_per(self, frames: int) -> int:
        return math.ceil(frames / self.config.melody_stride)

    def _framewise(self, tokens: torch.Tensor, embedding: nn.Embedding, type_vector: torch.Tensor, start_frame: int):
        """Tokens per codec frame (B, frames) -> one state per ``melody_stride`` frames (the middle
        frame's token), plus the sinusoids of the decoder's own position table (transformers'
        MusicGen) at that frame's decoder position."""
        stride = self.config.melody_stride
        picked = tokens[:, stride // 2 :: stride]
        frames = torch.arange(picked.shape[1], device=tokens.device) * stride + stride // 2
        # frame f of the window is codebook 0's decoder position f + 1 (after the start token)
        positions = frames + 1 + start_frame
        size = int(positions.max()) + 1 if positions.numel() else 1
        table = MusicgenSinusoidalPositionalEmbedding.get_embedding(size, self.config.hidden_size)
        dtype = type_vector.dtype
        return embedding(picked.long()) + type_vector + table.to(tokens.device, dtype)[positions]

    def forward(self, text_states: torch.Tensor, text_mask: torch.Tensor, clap: torch.Tensor | None = None,
                clap_on: torch.Tensor | None = None, melody: torch.Tensor | None = None,
                melody_on: torch.Tensor | None = None, melody_start_frame: int = 0,
                rhythm: torch.Tensor | None = None, rhythm_on: torch.Tensor | None = None,
                key: torch.Tensor | None = None, key_on: torch.Tensor | None = None, frames: int | None = None):
        """``(states (B, M, hidden), mask (B, M))`` for MusicGen's ``encoder_outputs`` / ``attention_mask``;
        with ``frames``, ``(states, mask, frame_inputs)``: the decoder-input additions of the
        window's first ``frames`` frames (B, frames, decoder hidden), or None (no such condition
        on this model, or none given).

        text_states, text_mask: text encoder output (B, L, hidden) and its mask (all 0 = no text).
        clap: (B, clap_dim) embedding; clap_on: (B,) bool (default all on).
        melody: (B, frames) pitch classes per codec frame of the window; melody_on: (B,) bool.
            ``melody_start_frame`` shifts the frames (melody and rhythm) when the window's decoder
            positions do not start at its first frame.
        rhythm: (B, frames) beat-phase tokens per codec frame; rhythm_on: (B,) bool.
        key: (B,) key indices (0-23; anything else counts as off); key_on: (B,) bool.
        """
        states, masks = [text_states], [text_mask.to(text_states.dtype)]
        batch, dtype, device = text_states.shape[0], text_states.dtype, text_states.device

        def flags(on):
            return torch.ones(batch, dtype=torch.bool, device=device) if on is None else on.bool()

        if clap is not None:
            if not self.config.clap_dim:
                raise ValueError("this model was built without a CLAP condition (clap_dim=0)")
            token = self.clap_projection(clap.to(dtype)) + self.clap_type
            states.append(token[:, None])
            masks.append(flags(clap_on).to(dtype)[:, None])
        for name, tokens, on, vocab in (("melody", melody, melody_on, self.config.melody_vocab),
                                        ("rhythm", rhythm, rhythm_on, self.config.rhythm_vocab)):
            if tokens is None:
                continue
            if not vocab:
                raise ValueError(f"this model was built without a {name} condition ({name}_vocab=0)")
            framewise = self._framewise(tokens, getattr(self, f"{name}_embedding"), getattr(self, f"{name}_type"),
                                        melody_start_frame)  # fmt: skip
            states.append(framewise.to(dtype))
            masks.append(flags(on).to(dtype)[:, None].expand(-1, framewise.shape[1]))
        if key is not None:
            if not self.config.key_condition:
                raise ValueError("this model was built without a key condition (key_condition=False)")
            key = key.long().to(device)
            valid = (key >= 0) & (key < NUM_KEYS)
            triad = torch.tensor(_TRIADS, device=device)[key.clamp(0, NUM_KEYS - 1)]  # (B, 3) pitch classes
            states.append((self.melody_embedding(triad) + self.key_roles).to(dtype))
            masks.append((flags(key_on) & valid).to(dtype)[:, None].expand(-1, 3))
        states = torch.cat(states, dim=1)
        mask = torch.cat(masks, dim=1)
        if frames is None:
            return states * mask[..., None], mask.long()
        return states * mask[..., None], mask.long(), self._frame_inputs(frames, flags, rhythm, rhythm_on, key, key_on)

    def _frame_inputs(self, frames: int, flags, rhythm, rhythm_on, key, key_on) -> torch.Tensor | None:
        """Sum of the beat-phase embedding of each frame and the key's, each where on (else 0)."""
        out = None
        if rhythm is not None and hasattr(self, "rhythm_input"):
            phase = self.rhythm_input(rhythm[:, :frames].long().to(self.device))
            phase = F.pad(phase, (0, 0, 0, frames - phase.shape[1]))  # past the given phases: nothing
            out = phase * flags(rhythm_on).to(phase.dtype)[:, None, None]
        if key is not None and hasattr(self, "key_input"):
            key = key.long().to(self.device)
            on = flags(key_on) & (key >= 0) & (key < NUM_KEYS)
            tonal = (self.key_input(key.clamp(0, NUM_KEYS - 1)) * on.to(self.key_input.weight.dtype)[:, None])
            tonal = tonal[:, None].expand(-1, frames, -1)
            out = tonal if out is None else out + tonal
        return out
