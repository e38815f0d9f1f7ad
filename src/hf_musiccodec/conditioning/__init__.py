"""Conditioning shared by the generators: the MiniLM text encoder (later: the CLAP-style model)."""

from hf_musiccodec.conditioning.text_encoder import (
    MINILM_PACKAGE,
    TextEncoder,
    TextEncoderOutput,
    load_text_encoder,
    minilm_path,
)

__all__ = ["MINILM_PACKAGE", "TextEncoder", "TextEncoderOutput", "load_text_encoder", "minilm_path"]
