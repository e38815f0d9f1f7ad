"""The parts of a codec that run in float32 under autocast (mixed-precision training and inference).

bf16 / fp16 keep 8 / 11 significant bits. That is enough for convolutions, but not for:

* nearest-code search: the squared distances ``||x||^2 - 2 x.e + ||e||^2`` subtract numbers of
  similar size, so the low-precision matmul's rounding decides between close codes (with the
  distances built in place in the bf16 matmul's output, 4-46 % of EnCodec's codes survived bf16
  autocast, against 74-84 % for transformers' EncodecModel; in float32, 89-100 %);
* codebook statistics (EMA counts and sums, k-means, dead-code restarts), which accumulate many
  small updates into float32 buffers;
* the inverse STFT of the Fourier decoder (complex exponentials, FFTs, overlap-add envelopes).
"""

from __future__ import annotations

import contextlib

import torch


def autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:  # a device type autocast does not know (meta): no autocast there
        return False


def float32_region(x: torch.Tensor):
    """A context with autocast off on ``x``'s device: ops inside run in their inputs' dtype, so
    inputs passed through ``upcast`` compute in (at least) float32."""
    device = x.device.type
    if not autocast_enabled(device):  # nothing to turn off (saves ~3 us per call)
        return contextlib.nullcontext()
    return torch.autocast(device, enabled=False)


def upcast(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 if it is in a 16-bit float type; float32 and float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
