"""Conditioning shared by the generators: the MiniLM text encoder and the CLAP-style MusicClap model.

Importing this package registers MusicClap (and FrozenMiniLM, MusicGen's text encoder) with transformers' ``AutoConfig``, ``AutoModel``,
``AutoFeatureExtractor`` and ``AutoProcessor`` (model type ``music_clap``).
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForTextEncoding, AutoProcessor

from hf_musiccodec.conditioning.frozen_minilm import FrozenMiniLMConfig, FrozenMiniLMModel

from hf_musiccodec.conditioning.configuration_music_clap import MusicClapConfig
from hf_musiccodec.conditioning.modeling_music_clap import MusicClapModel, MusicClapPreTrainedModel
from hf_musiccodec.conditioning.processing_music_clap import MusicClapFeatureExtractor, MusicClapProcessor
from hf_musiccodec.conditioning.text_encoder import (
    MINILM_PACKAGE,
    TextEncoder,
    TextEncoderOutput,
    load_text_encoder,
    minilm_path,
)

AutoConfig.register(MusicClapConfig.model_type, MusicClapConfig, exist_ok=True)
AutoModel.register(MusicClapConfig, MusicClapModel, exist_ok=True)
AutoFeatureExtractor.register(MusicClapConfig, MusicClapFeatureExtractor, exist_ok=True)
AutoProcessor.register(MusicClapConfig, MusicClapProcessor, exist_ok=True)
# MusicGen builds its text encoder through AutoModelForTextEncoding.
AutoConfig.register(FrozenMiniLMConfig.model_type, FrozenMiniLMConfig, exist_ok=True)
AutoModel.register(FrozenMiniLMConfig, FrozenMiniLMModel, exist_ok=True)
AutoModelForTextEncoding.register(FrozenMiniLMConfig, FrozenMiniLMModel, exist_ok=True)


def build_music_clap_processor(config: MusicClapConfig) -> MusicClapProcessor:
    """A fresh processor for ``config``: its feature extractor + MiniLM's tokenizer (offline)."""
    from pathlib import Path

    from transformers import AutoTokenizer

    folder = Path(config.text_encoder_path) if config.text_encoder_path else minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return MusicClapProcessor(MusicClapFeatureExtractor.from_model_config(config), tokenizer,
                              max_length=config.text_max_length)


__all__ = [
    "FrozenMiniLMConfig",
    "FrozenMiniLMModel",
    "MINILM_PACKAGE",
    "MusicClapConfig",
    "MusicClapFeatureExtractor",
    "MusicClapModel",
    "MusicClapPreTrainedModel",
    "MusicClapProcessor",
    "TextEncoder",
    "TextEncoderOutput",
    "build_music_clap_processor",
    "load_text_encoder",
    "minilm_path",
]
