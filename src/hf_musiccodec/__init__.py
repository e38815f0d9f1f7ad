"""hf-musiccodec: neural audio codecs and music generators for the Hugging Face ecosystem.

Public classes are importable from here, lazily (as in diffusers): importing torch and
transformers takes seconds, which the command line's ``--help`` and the audio/data helpers should
not pay for. transformers' Auto classes still learn our models whenever transformers is imported
(see ``_auto_registration``).
"""

import importlib

from ._auto_registration import register_when_transformers_is_imported

__version__ = "0.1.0"

# public name -> subpackage that defines it
_LAZY = {
    "MusicCodecConfig": "codecs",
    "MusicCodecModel": "codecs",
    "MusicClapConfig": "conditioning",
    "MusicClapModel": "conditioning",
    "MusicClapFeatureExtractor": "conditioning",
    "MusicClapProcessor": "conditioning",
    "TextEncoder": "conditioning",
    "FrozenMiniLMConfig": "conditioning",
    "FrozenMiniLMModel": "conditioning",
    "MusicConditionerConfig": "pipelines.text_to_music",
    "MusicConditioner": "pipelines.text_to_music",
    "TextToMusicPipeline": "pipelines.text_to_music",
    "VampNetConfig": "models.vampnet",
    "VampNetModel": "models.vampnet",
    "VampNetPipeline": "pipelines.vampnet",
    "MusicDiffusionPipeline": "pipelines.latent_diffusion",
    "DittoPipeline": "pipelines.ditto",
    "MusicControlNetPipeline": "pipelines.controlnet",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'hf_musiccodec' has no attribute {name!r}")


register_when_transformers_is_imported()
