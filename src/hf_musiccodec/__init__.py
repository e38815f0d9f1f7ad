"""hf-musiccodec: neural audio codecs and music generators for the Hugging Face ecosystem."""

__version__ = "0.1.0"
__all__ = ["MusicCodecConfig", "MusicCodecModel", "__version__"]


def __getattr__(name):
    # Lazy: importing torch and transformers takes seconds, which the command line's --help
    # and the audio/data helpers should not pay for.
    if name in ("MusicCodecConfig", "MusicCodecModel"):
        from . import codecs

        return getattr(codecs, name)
    raise AttributeError(f"module 'hf_musiccodec' has no attribute {name!r}")
