"""Generator pipelines (one subpackage per pipeline) and their shared convention (:mod:`.pipeline_utils`)."""

from hf_musiccodec.pipelines.pipeline_utils import (
    GeneratorError,
    check_generator_output,
    check_sampling_rate,
    load_generator,
)

__all__ = ["GeneratorError", "check_generator_output", "check_sampling_rate", "load_generator"]
