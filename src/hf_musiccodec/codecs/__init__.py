"""The codec family: autoencoder, VQ-VAE, SoundStream, EnCodec and DAC presets of one model."""

from transformers import AutoConfig, AutoModel

from .configuration_music_codec import MusicCodecConfig
from .modeling_music_codec import MusicCodecModel, MusicCodecPreTrainedModel
from .outputs import MusicCodecDecoderOutput, MusicCodecEncoderOutput, MusicCodecOutput, MusicCodecStreamOutput
from .presets import PRESETS

DEFAULT_CODEC = "musiccodec-24khz"


def default_model_path():
    """The bundled default codec (trained here; see its model card): ``$HF_MUSICCODEC_DEFAULT_CODEC``,
    else the copy installed with the package (``codecs/bundled/``, which wheels carry; in a source
    tree a symlink to ``pipelines/``), else ``pipelines/musiccodec-24khz`` of this source tree."""
    import os
    from pathlib import Path

    override = os.environ.get("HF_MUSICCODEC_DEFAULT_CODEC")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    candidates = (here / "bundled" / DEFAULT_CODEC, here.parents[2] / "pipelines" / DEFAULT_CODEC)
    # A checkout without symlink support (Windows) has no usable package copy: use pipelines/.
    return next((c for c in candidates if (c / "config.json").is_file()), candidates[-1])


AutoConfig.register(MusicCodecConfig.model_type, MusicCodecConfig, exist_ok=True)
AutoModel.register(MusicCodecConfig, MusicCodecModel, exist_ok=True)

__all__ = [
    "DEFAULT_CODEC",
    "PRESETS",
    "default_model_path",
    "MusicCodecConfig",
    "MusicCodecDecoderOutput",
    "MusicCodecEncoderOutput",
    "MusicCodecModel",
    "MusicCodecOutput",
    "MusicCodecPreTrainedModel",
    "MusicCodecStreamOutput",
]
