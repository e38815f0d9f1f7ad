"""One weight-norm implementation for the package: codecs and discriminators."""

import copy

import pytest
import torch
from torch import nn

from hf_musiccodec.codecs.modules.weight_norm import weight_norm


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv1d(3, 4, 5, stride=2, padding=2), (2, 3, 40)),
    (lambda: nn.ConvTranspose1d(3, 4, 4, stride=2, padding=1), (2, 3, 40)),
    (lambda: nn.Conv2d(2, 4, (5, 3), stride=(2, 1), padding=(2, 1)), (2, 2, 20, 9)),
])
def test_same_function_as_torch_weight_norm(make, shape):
    torch.manual_seed(0)
    conv = make()
    ours, theirs = weight_norm(copy.deepcopy(conv)), nn.utils.parametrizations.weight_norm(copy.deepcopy(conv))
    assert {n for n, _ in ours.named_parameters()} == {"weight_g", "weight_v", "bias"}
    x = torch.randn(shape)
    torch.testing.assert_close(ours(x), theirs(x))
    with torch.no_grad():
        ours.weight_g.mul_(2)  # a trained g changes the output (and the inference cache follows)
        theirs.parametrizations.weight.original0.mul_(2)
        torch.testing.assert_close(ours(x), theirs(x))
    ours(x).sum().backward()
    assert ours.weight_g.grad.abs().sum() > 0 and ours.weight_v.grad.abs().sum() > 0


def test_discriminators_use_it():
    from hf_musiccodec.training.discriminators import MultiPeriodDiscriminator, MultiScaleSTFTDiscriminator

    for d in (MultiScaleSTFTDiscriminator(n_ffts=(64,), channels=4),
              MultiPeriodDiscriminator(periods=(2,), channels=(4, 8))):
        names = [n for n, _ in d.named_parameters()]
        assert any(n.endswith("weight_g") for n in names) and not any("parametrizations" in n for n in names)


def test_rejects_other_modules():
    with pytest.raises(TypeError):
        weight_norm(nn.Linear(2, 2))
