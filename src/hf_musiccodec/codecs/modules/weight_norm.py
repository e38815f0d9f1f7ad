"""Weight-normalised convolutions (Salimans & Kingma, 2016) that fold themselves at inference.

The weight is ``g * v / ||v||``, with the norm over every dimension but the first, as in
``torch.nn.utils.weight_norm`` and the original EnCodec and DAC checkpoints (``weight_g`` /
``weight_v``). While gradients are needed the weight is recomputed on every call, as
training requires. Without gradients (inference) the folded weight is cached and reused
until ``g`` or ``v`` change (tracked by their in-place version counters), so inference pays
for weight norm once, not on every forward.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


class _WeightNormMixin:
    """Replaces a conv's ``weight`` parameter by ``weight_g`` and ``weight_v``."""

    def _init_weight_norm(self) -> None:
        weight = self.weight.detach()
        del self.weight
        self.weight_g = nn.Parameter(_norm_except_dim0(weight).clone())
        self.weight_v = nn.Parameter(weight.clone())
        self._folded: torch.Tensor | None = None
        self._folded_key: tuple | None = None

    def normalized_weight(self) -> torch.Tensor:
        g, v = self.weight_g, self.weight_v
        if torch.is_grad_enabled() and (g.requires_grad or v.requires_grad):
            return g * v / _norm_except_dim0(v)
        key = (g._version, v._version, g.data_ptr(), v.data_ptr(), g.dtype, g.device)
        if self._folded is None or self._folded_key != key:
            self._folded = g * v / _norm_except_dim0(v)
            self._folded_key = key
        return self._folded

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


class WeightNormConvTranspose1d(_WeightNormMixin, nn.ConvTranspose1d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(
            x, self.normalized_weight(), self.bias, self.stride, self.padding,
            self.output_padding, self.groups, self.dilation,
        )


class WeightNormConv2d(_WeightNormMixin, nn.Conv2d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normalized_weight(), self.bias)
