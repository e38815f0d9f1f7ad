"""The codec family: autoencoder, VQ-VAE, SoundStream, EnCodec and DAC presets of one model."""

from transformers import AutoConfig, AutoModel

from .configuration_music_codec import MusicCodecConfig
from .modeling_music_codec import (
    MusicCodecDecoderOutput,
    MusicCodecEncoderOutput,
    MusicCodecModel,
    MusicCodecOutput,
    MusicCodecPreTrainedModel,
)
from .presets import PRESETS

AutoConfig.register(MusicCodecConfig.model_type, MusicCodecConfig, exist_ok=True)
AutoModel.register(MusicCodecConfig, MusicCodecModel, exist_ok=True)

__all__ = [
    "PRESETS",
    "MusicCodecConfig",
    "MusicCodecDecoderOutput",
    "MusicCodecEncoderOutput",
    "MusicCodecModel",
    "MusicCodecOutput",
    "MusicCodecPreTrainedModel",
]
