"""Load the published EnCodec and DAC checkpoints into ``MusicCodecModel``."""

from .hub_layout import config_from_dac, config_from_encodec, load_foreign_checkpoint
from .original_checkpoints import convert_dac_checkpoint, convert_encodec_checkpoint

__all__ = [
    "config_from_dac",
    "config_from_encodec",
    "convert_dac_checkpoint",
    "convert_encodec_checkpoint",
    "load_foreign_checkpoint",
]
