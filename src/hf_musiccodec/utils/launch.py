"""An ``accelerate.Accelerator`` that is really distributed when launched on CPUs."""

from __future__ import annotations

import torch
from accelerate import Accelerator


def new_accelerator(**kwargs) -> Accelerator:
    """``Accelerator(**kwargs)``, told to use the CPU where there is no CUDA device.

    Accelerate treats ``accelerate launch --multi_gpu --num_processes N`` on a machine without
    GPUs as distributed (gloo) CPU work only when told to use the CPU; otherwise each of the N
    processes thinks it is alone and they all do, and write, the same work.
    """
    kwargs.setdefault("cpu", not torch.cuda.is_available())
    return Accelerator(**kwargs)
