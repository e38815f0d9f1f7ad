"""Music ControlNet: melody, dynamics and rhythm controls over time for the latent diffusion pipeline."""

from .controls import (
    CONTROL_CHANNELS,
    CONTROL_NAMES,
    MusicControls,
    control_condition,
    extract_controls,
    reference_controls,
)
from .pipeline_music_controlnet import MusicControlNetPipeline

__all__ = ["CONTROL_CHANNELS", "CONTROL_NAMES", "MusicControls", "MusicControlNetPipeline", "control_condition",
           "extract_controls", "reference_controls"]
