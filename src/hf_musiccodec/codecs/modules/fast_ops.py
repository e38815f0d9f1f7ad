"""When the CPU inference fast paths run, and which kernels they may use.

The fast paths (channels-last activations, in-place ops, cached folded weights; see
``weight_norm``, ``seanet``, ``dac_blocks``) are CPU float kernels for inference: they run only on
CPU tensors, outside autocast, when no autograd graph is wanted. On CUDA, under autocast and
while training, the modules run their plain differentiable ``forward``.

A few of their kernels are private torch operators that may change or vanish between torch
releases: oneDNN's fused convolutions with pre-packed weights
(``torch.ops.mkldnn._convolution_pointwise`` and friends) and ``torch.ops.aten.elu.out``. Each
family is tried once, on a tiny input, against the public ops (``F.conv2d``,
``F.conv_transpose2d``, ``F.elu``); if a call fails or disagrees, the public ops are used
instead. ``HF_MUSICCODEC_PUBLIC_OPS=1`` in the environment, or ``set_private_ops(False)``, forces
the public ops (the outputs agree to float rounding).
"""

from __future__ import annotations

import os

import torch
from torch.nn import functional as F

from .precision import autocast_enabled

_private_ops = os.environ.get("HF_MUSICCODEC_PUBLIC_OPS", "").lower() not in ("1", "true", "yes")
_probed: dict[str, bool] = {}


def set_private_ops(enabled: bool) -> None:
    """Allow (``True``, the default) or forbid the private torch operators in the fast paths."""
    global _private_ops
    _private_ops = bool(enabled)


def private_ops_enabled() -> bool:
    return _private_ops


def use_fast_path(x: torch.Tensor, parameters=()) -> bool:
    """True when the CPU inference kernels may run on ``x``: a CPU tensor, no autocast, and no
    gradient wanted (grad mode off, or neither ``x`` nor a parameter requires grad)."""
    if x.device.type != "cpu" or autocast_enabled("cpu"):
        return False
    return not torch.is_grad_enabled() or not (x.requires_grad or any(p.requires_grad for p in parameters))


def _probe(name: str, fn) -> bool:
    if name not in _probed:
        try:
            with torch.no_grad():
                _probed[name] = bool(fn())
        except Exception:  # noqa: BLE001 - any failure of a private op means: do not use it
            _probed[name] = False
    return _probed[name]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def _try_mkldnn() -> bool:
    if not torch.backends.mkldnn.is_available():
        return False
    mkldnn = torch.ops.mkldnn
    g = torch.Generator().manual_seed(0)
    cl = torch.channels_last
    x = torch.randn(1, 3, 1, 80, generator=g).contiguous(memory_format=cl)
    weight = torch.randn(4, 3, 1, 3, generator=g).contiguous(memory_format=cl)
    bias = torch.randn(4, generator=g)
    args = ([0, 1], [1, 2], [1, 1], 1)  # padding, stride, dilation, groups
    ref = F.conv2d(x, weight, bias, (1, 2), (0, 1))
    packed = mkldnn._reorder_convolution_weight(weight, *args, list(x.shape))
    y = mkldnn._convolution_pointwise(x, packed, bias, *args, "none", [], None)
    residual = torch.randn_like(ref).contiguous(memory_format=cl)
    y_add = mkldnn._convolution_pointwise.binary(x, residual, packed, bias, *args, "add", None, None, [], None)
    out = residual.clone(memory_format=cl)
    mkldnn._convolution_pointwise_.binary(out, x, packed, bias, *args, "add", None, None, [], None)
    # transposed: (in, out, 1, kernel) weight, output padding 0
    weight_t = torch.randn(3, 4, 1, 4, generator=g).contiguous(memory_format=cl)
    ref_t = F.conv_transpose2d(x, weight_t, bias, (1, 2), (0, 1))
    targs = ([0, 1], [0, 0], [1, 2], [1, 1], 1)  # padding, output padding, stride, dilation, groups
    packed_t = mkldnn._reorder_convolution_transpose_weight(weight_t, *targs, list(x.shape))
    y_t = mkldnn._convolution_transpose_pointwise(x, packed_t, bias, *targs, "none", [], None)
    return (_close(y, ref) and _close(y_add, ref + residual) and _close(out, ref + residual)
            and _close(y_t, ref_t))


def mkldnn_fused_ok() -> bool:
    """oneDNN's fused, pre-packed convolutions work here (and are allowed)."""
    return _private_ops and _probe("mkldnn", _try_mkldnn)


def _try_elu_out() -> bool:
    x = torch.linspace(-3, 3, 50)
    out = torch.empty(1, 50)[0]
    torch.ops.aten.elu.out(x, 1.0, 1, 1, out=out)
    return torch.equal(out, F.elu(x))


def elu_into(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = elu(x)`` written into ``out`` (a view into a padded buffer) without a temporary."""
    if _private_ops and _probe("elu_out", _try_elu_out):
        return torch.ops.aten.elu.out(x, 1.0, 1, 1, out=out)
    return F.elu(out.copy_(x), inplace=True)  # public: two passes instead of one, same values
