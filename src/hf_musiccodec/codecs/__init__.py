"""The codec family: autoencoder, VQ-VAE, SoundStream, EnCodec and DAC presets of one model."""

from transformers import AutoConfig, AutoModel

from .configuration_music_codec import MusicCodecConfig
from .modeling_music_codec import MusicCodecModel, MusicCodecPreTrainedModel
from .outputs import MusicCodecDecoderOutput, MusicCodecEncoderOutput, MusicCodecOutput, MusicCodecStreamOutput
from .presets import PRESETS

DEFAULT_CODEC = "musiccodec-24khz"


def default_model_path():
    """The bundled default codec: ``$HF_MUSICCODEC_DEFAULT_CODEC``, else ``pipelines/musiccodec-24khz``
    of this source tree (trained here; see its model card)."""
    import os
    from pathlib import Path

    override = os.environ.get("HF_MUSICCODEC_DEFAULT_CODEC")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "pipelines" / DEFAULT_CODEC

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
