"""VampNet: masked acoustic token modeling with the paper's prompts (:mod:`.masks`), MaskGIT sampling
(:mod:`.sampling`) and looping, as a diffusers pipeline."""

from .pipeline_vampnet import VampNetPipeline, VampNetPipelineOutput

__all__ = ["VampNetPipeline", "VampNetPipelineOutput"]
