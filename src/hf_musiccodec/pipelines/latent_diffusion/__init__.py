"""Latent diffusion over a codec's continuous latents (MusicLDM's recipe) as a diffusers pipeline."""

from .latent_layout import LatentLayout
from .pipeline_music_diffusion import MusicDiffusionPipeline, MusicDiffusionPipelineOutput
from .unet import build_music_unet

__all__ = ["LatentLayout", "MusicDiffusionPipeline", "MusicDiffusionPipelineOutput", "build_music_unet"]
