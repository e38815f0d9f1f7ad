"""hf-musiccodec: neural audio codecs and music generators for the Hugging Face ecosystem."""

from .codecs import MusicCodecConfig, MusicCodecModel

__version__ = "0.1.0"
__all__ = ["MusicCodecConfig", "MusicCodecModel", "__version__"]
