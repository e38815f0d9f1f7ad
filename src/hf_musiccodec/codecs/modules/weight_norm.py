"""Weight-normalised convolutions (Salimans & Kingma, 2016) that fold themselves at inference.

The weight is ``g * v / ||v||``, with the norm over every dimension but the first, as in
``torch.nn.utils.weight_norm`` and the original EnCodec and DAC checkpoints (``weight_g`` /
``weight_v``). While gradients are needed the weight is recomputed on every call, as
training requires. Without gradients (inference) the folded weight is cached and reused
until ``g`` or ``v`` change (tracked by their in-place version counters, storage and dtype),
so inference pays for weight norm once, not on every forward.

The inference fast paths of the codec blocks run 1-D convolutions as 2-D convolutions over
``(batch, channels, 1, time)`` tensors in channels-last memory format (time-major), which is
oneDNN's native layout on CPU and avoids a reorder of the activations around every conv;
``folded_weight("cl")`` returns the cached weight in that layout. Those paths run on CPU only
(``fast_ops.use_fast_path``); oneDNN's pre-packed weights (``folded_weight("mkldnn")``) only where
``fast_ops`` found its private kernels working.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .fast_ops import mkldnn_fused_ok


def _norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


def to_channels_last_1d(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (B, C, 1, T) in channels-last (time-major) memory format."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


def from_channels_last_1d(x: torch.Tensor) -> torch.Tensor:
    """(B, C, 1, T) channels-last -> contiguous (B, C, T)."""
    return x.squeeze(2).contiguous()


def _mkldnn_ok(x: torch.Tensor) -> bool:
    # oneDNN's fused kernels are private torch ops: used only where they were tried and agree
    # with the public ones (``fast_ops``), and only for CPU float32.
    return x.device.type == "cpu" and x.dtype == torch.float32 and mkldnn_fused_ok()


# Inputs at most this long (streaming chunks) use the plain channels-last weight: a weight
# pre-packed for long inputs can be slower than the reorder on tiny ones.
_SMALL = 64


class _WeightNormMixin:
    """Replaces a conv's ``weight`` parameter by ``weight_g`` and ``weight_v``."""

    def _init_weight_norm(self) -> None:
        weight = self.weight.detach()
        del self.weight
        self.weight_g = nn.Parameter(_norm_except_dim0(weight).clone())
        self.weight_v = nn.Parameter(weight.clone())
        # Inference cache: layout -> folded weight. Setting ``_folded = None`` drops it.
        self._folded: dict | None = None
        self._folded_key: tuple | None = None
        self._pack_size: list | None = None

    def __getstate__(self):
        # The inference cache (which may hold oneDNN tensors, which cannot be copied or pickled)
        # is rebuilt on demand: copies and pickles leave it out.
        state = super().__getstate__()
        state["_folded"], state["_folded_key"] = None, None
        return state

    def _weight_key(self) -> tuple:
        g, v = self.weight_g, self.weight_v
        return (g._version, v._version, g.data_ptr(), v.data_ptr(), g.dtype, g.device)

    def normalized_weight(self) -> torch.Tensor:
        return self.folded_weight("ncw")

    def folded_weight(self, layout: str = "ncw") -> torch.Tensor:
        """``g * v / ||v||``: recomputed while gradients are needed, else cached.

        ``layout``: ``"ncw"`` the conv's own weight; ``"cl"`` the (out, in, 1, kernel) channels-last
        weight of the 2-D convolution that computes this 1-D one on (B, C, 1, T) channels-last
        activations; ``"mkldnn"`` that weight pre-packed in oneDNN's blocked format (so it is not
        reordered on every call).
        """
        g, v = self.weight_g, self.weight_v
        if torch.is_grad_enabled() and (g.requires_grad or v.requires_grad):
            weight = g * v / _norm_except_dim0(v)
            return weight if layout == "ncw" else weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        key = self._weight_key()
        if self._folded is None or self._folded_key != key:
            self._folded, self._folded_key = {}, key
        cache = self._folded
        if layout not in cache:
            with torch.no_grad():
                if layout == "ncw":
                    cache[layout] = g * v / _norm_except_dim0(v)
                else:
                    # Only one inference layout is kept: the 2-D one replaces the 1-D one.
                    weight = cache.pop("ncw", None)
                    weight = g * v / _norm_except_dim0(v) if weight is None else weight
                    weight = weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
                    cache[layout] = weight if layout == "cl" else self._pack(weight)
        return cache[layout]

    def _pack(self, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Accept every layout published checkpoints use: plain ``weight`` (weight norm already
        # removed, as in the transformers DAC files) and torch's parametrization names.
        aliases = {
            "parametrizations.weight.original0": "weight_g",
            "parametrizations.weight.original1": "weight_v",
        }
        for old, new in aliases.items():
            if prefix + old in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)
        if prefix + "weight" in state_dict:
            weight = state_dict.pop(prefix + "weight")
            state_dict[prefix + "weight_g"] = _norm_except_dim0(weight)
            state_dict[prefix + "weight_v"] = weight
        self._folded = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class WeightNormConv1d(_WeightNormMixin, nn.Conv1d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normalized_weight(), self.bias)

    def _pack(self, weight: torch.Tensor) -> torch.Tensor:
        # oneDNN picks the blocked format from the input size: pack for the first size seen.
        return torch.ops.mkldnn._reorder_convolution_weight(
            weight, [0, self.padding[0]], [1, self.stride[0]], [1, self.dilation[0]], self.groups, self._pack_size)

    def conv_into(self, x: torch.Tensor, out: torch.Tensor, accumulate: bool = False) -> torch.Tensor:
        """``out = conv(x)`` (or ``out += conv(x)`` with ``accumulate``) on channels-last (B, C, 1, T)
        tensors, written into the caller's buffer so that no new activation is allocated
        (a fresh large tensor costs page faults that can exceed the work of a 1x1 conv)."""
        if _mkldnn_ok(x) and x.shape[-1] > _SMALL:
            self._pack_size = list(x.shape)
            if not accumulate:
                out.zero_()
            return torch.ops.mkldnn._convolution_pointwise_.binary(
                out, x, self.folded_weight("mkldnn"), self.bias, [0, self.padding[0]], [1, self.stride[0]],
                [1, self.dilation[0]], self.groups, "add", None, None, [], None)
        y = self.forward_cl(x)
        return out.add_(y) if accumulate else out.copy_(y)

    def forward_cl(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """The same convolution on (B, C, 1, T) channels-last activations (inference only),
        optionally ``+ residual`` (same shape as the output; a fused oneDNN post-op)."""
        if _mkldnn_ok(x) and x.shape[-1] > _SMALL:
            self._pack_size = list(x.shape)
            args = ([0, self.padding[0]], [1, self.stride[0]], [1, self.dilation[0]], self.groups)
            weight = self.folded_weight("mkldnn")
            if residual is None:
                return torch.ops.mkldnn._convolution_pointwise(x, weight, self.bias, *args, "none", [], None)
            return torch.ops.mkldnn._convolution_pointwise.binary(
                x, residual, weight, self.bias, *args, "add", None, None, [], None)
        y = F.conv2d(x, self.folded_weight("cl"), self.bias, (1, self.stride[0]), (0, self.padding[0]),
                     (1, self.dilation[0]), self.groups)
        return y if residual is None else y.add_(residual)


class WeightNormConvTranspose1d(_WeightNormMixin, nn.ConvTranspose1d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(
            x, self.normalized_weight(), self.bias, self.stride, self.padding,
            self.output_padding, self.groups, self.dilation,
        )

    def _pack(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._reorder_convolution_transpose_weight(
            weight, [0, self.padding[0]], [0, self.output_padding[0]], [1, self.stride[0]], [1, self.dilation[0]],
            self.groups, self._pack_size)

    def forward_cl(self, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
        """The same transposed convolution on (B, C, 1, T) channels-last activations (inference only)."""
        b = self.bias if bias else None
        if _mkldnn_ok(x) and x.shape[-1] > _SMALL:
            self._pack_size = list(x.shape)
            return torch.ops.mkldnn._convolution_transpose_pointwise(
                x, self.folded_weight("mkldnn"), b, [0, self.padding[0]], [0, self.output_padding[0]],
                [1, self.stride[0]], [1, self.dilation[0]], self.groups, "none", [], None)
        return F.conv_transpose2d(x, self.folded_weight("cl"), b, (1, self.stride[0]), (0, self.padding[0]),
                                  (0, self.output_padding[0]), self.groups, (1, self.dilation[0]))


class WeightNormConv2d(_WeightNormMixin, nn.Conv2d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normalized_weight(), self.bias)


_WEIGHT_NORM_CLASSES = {nn.Conv1d: WeightNormConv1d, nn.ConvTranspose1d: WeightNormConvTranspose1d,
                        nn.Conv2d: WeightNormConv2d}


def weight_norm(conv: nn.Module) -> nn.Module:
    """Weight-normalise an existing ``nn.Conv1d``, ``nn.ConvTranspose1d`` or ``nn.Conv2d`` in place
    and return it: the same function as ``torch.nn.utils.parametrizations.weight_norm`` (norm over
    every dimension but the first, ``g`` initialised to ``||weight||``), stored as this package's
    ``weight_g`` / ``weight_v`` with the inference cache, so every weight-normed conv of the
    package (codecs and discriminators) is one implementation."""
    cls = _WEIGHT_NORM_CLASSES.get(type(conv))
    if cls is None:
        raise TypeError(f"weight_norm takes an nn.Conv1d, nn.ConvTranspose1d or nn.Conv2d, got {type(conv).__name__}")
    # The subclass adds methods only, so the module keeps every setting it was built with.
    conv.__class__ = cls
    conv._init_weight_norm()
    return conv
