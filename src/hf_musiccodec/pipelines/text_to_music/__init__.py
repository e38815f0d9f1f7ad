"""Text-to-music with a token LM (MusicGen through transformers): model builder, conditioner, pipeline."""

from .conditioner import MusicConditioner, MusicConditionerConfig
from .modeling import build_text_to_music_model, codec_at_bandwidth, load_lm_tokenizer
from .pipeline_text_to_music import TextToMusicPipeline, load_musicgen_parts

__all__ = ["MusicConditioner", "MusicConditionerConfig", "TextToMusicPipeline", "build_text_to_music_model",
           "codec_at_bandwidth", "load_lm_tokenizer", "load_musicgen_parts"]
