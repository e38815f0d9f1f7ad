"""DITTO: inference-time optimisation of a latent diffusion model's initial noise towards a target."""

from .objectives import (
    OBJECTIVES,
    DittoObjective,
    InpaintingObjective,
    IntensityObjective,
    LoopObjective,
    MelodyObjective,
    OutpaintingObjective,
    StructureObjective,
    make_objective,
)
from .pipeline_ditto import DittoPipeline, DittoPipelineOutput

__all__ = ["OBJECTIVES", "DittoObjective", "DittoPipeline", "DittoPipelineOutput", "InpaintingObjective",
           "IntensityObjective", "LoopObjective", "MelodyObjective", "OutpaintingObjective", "StructureObjective",
           "make_objective"]
