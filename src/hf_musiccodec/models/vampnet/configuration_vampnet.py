"""Configuration of :class:`~hf_musiccodec.models.vampnet.VampNetModel` (model type ``vampnet``)."""

from __future__ import annotations

from transformers import PretrainedConfig

__all__ = ["VampNetConfig"]


class VampNetConfig(PretrainedConfig):
    """A bidirectional transformer that predicts masked codec tokens (VampNet, MaskGIT-style).

    Tokens:
        codebook_size: entries per codebook of the codec; id ``codebook_size`` is the mask token.
        num_codebooks: codebooks the model reads (the codec's lowest ones).
        num_conditioning_codebooks: the lowest of those are always given, never predicted: 0 for
            VampNet's coarse model, e.g. 4 for a coarse-to-fine model over 8 codebooks.
        frame_rate: the codec's frames per second (the pipeline's time <-> frame conversions).
        context_frames: frames of the training crops; the pipeline vamps longer audio window by window.

    Network (pre-norm transformer encoder with rotary positions, so any length runs):
        hidden_size, num_layers, num_heads, ffn_dim, dropout.

    Conditioning (optional):
        condition_dim: size of a global embedding (the CLAP audio embedding in training, CLAP text
            or audio embedding at inference) added as one extra token; 0 = unconditional.
    """

    model_type = "vampnet"

    def __init__(
        self,
        codebook_size: int = 1024,
        num_codebooks: int = 4,
        num_conditioning_codebooks: int = 0,
        frame_rate: float = 75.0,
        context_frames: int = 450,
        hidden_size: int = 256,
        num_layers: int = 6,
        num_heads: int = 4,
        ffn_dim: int = 1024,
        dropout: float = 0.1,
        condition_dim: int = 0,
        rope_theta: float = 10_000.0,
        **kwargs,
    ):
        if not 0 <= num_conditioning_codebooks < num_codebooks:
            raise ValueError(f"num_conditioning_codebooks must be in [0, num_codebooks={num_codebooks}), "
                             f"got {num_conditioning_codebooks}")
        if hidden_size % num_heads or (hidden_size // num_heads) % 2:
            raise ValueError(f"hidden_size {hidden_size} must split into {num_heads} heads of even size")
        self.codebook_size = codebook_size
        self.num_codebooks = num_codebooks
        self.num_conditioning_codebooks = num_conditioning_codebooks
        self.frame_rate = frame_rate
        self.context_frames = context_frames
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.ffn_dim = ffn_dim
        self.dropout = dropout
        self.condition_dim = condition_dim
        self.rope_theta = rope_theta
        super().__init__(**kwargs)

    @property
    def mask_token_id(self) -> int:
        return self.codebook_size

    @property
    def num_predicted_codebooks(self) -> int:
        return self.num_codebooks - self.num_conditioning_codebooks
