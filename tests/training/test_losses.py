import math

import pytest
import torch

from hf_musiccodec.training.discriminators import MultiScaleSTFTDiscriminator
from hf_musiccodec.training.losses import (
    LossBalancer,
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)

SR = 16_000



def _wave(b=2, c=1, t=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    time = torch.arange(t) / SR
    x = 0.3 * torch.sin(2 * math.pi * 440 * time) + 0.05 * torch.randn(b, c, t, generator=g)
    return x


# ----------------------------------------------------------------------------- spectral losses


@pytest.mark.parametrize(
    "loss",
    [
        MultiScaleMelLoss(SR),
        MultiScaleMelLoss(SR, window_lengths=(2048, 512), n_mels=(150, 80), mag_weight=1.0, pow=2.0),
        MultiResolutionSTFTLoss(),
    ],
    ids=["mel_dac44k", "mel_dac_default", "mrstft"],
)
def test_spectral_losses_zero_on_identical_positive_otherwise_with_gradients(loss):
    x = _wave()
    assert float(loss(x, x.clone())) == pytest.approx(0.0, abs=1e-6)
    y = (x + 0.05 * torch.randn_like(x)).requires_grad_(True)
    value = loss(y, x)
    assert value.dim() == 0 and value > 0
    value.backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_spectral_losses_grow_with_distortion():
    x = _wave(b=1)
    noise = torch.randn_like(x)
    for loss in (MultiScaleMelLoss(SR), MultiResolutionSTFTLoss()):
        vals = [float(loss(x + s * noise, x)) for s in (0.001, 0.01, 0.1)]
        assert vals[0] < vals[1] < vals[2], vals


def test_mrstft_components():
    x = _wave(b=1)
    total, parts = MultiResolutionSTFTLoss()(x + 0.01 * torch.randn_like(x), x, return_components=True)
    assert set(parts) == {"spectral_convergence", "log_magnitude"}
    torch.testing.assert_close(total, parts["spectral_convergence"] + parts["log_magnitude"])


# ----------------------------------------------------------------------------- adversarial


def _outputs(logit_values, fmap_scale=1.0):
    return [(torch.full((2, 1, 3), v), [fmap_scale * torch.ones(2, 4), fmap_scale * torch.ones(2, 2)]) for v in logit_values]


def test_discriminator_loss_signs():
    confident = (_outputs([1.0, 1.1]), _outputs([-1.0, -0.1]))  # real high, fake low
    fooled = (_outputs([-1.0, 0.0]), _outputs([1.0, 0.5]))
    for kind in ("hinge", "lsgan"):
        assert discriminator_loss(*confident, kind=kind) < discriminator_loss(*fooled, kind=kind)
    assert float(hinge_discriminator_loss(_outputs([2.0, 3.0]), _outputs([-2.0, -1.5]))) == 0.0  # margins met
    assert float(lsgan_discriminator_loss(_outputs([1.0]), _outputs([0.0]))) == 0.0


def test_generator_loss_signs_and_gradient_direction():
    for fn in (hinge_generator_loss, lsgan_generator_loss):
        assert fn(_outputs([0.8])) < fn(_outputs([-1.0]))
        logits = torch.zeros(2, 1, 3, requires_grad=True)
        fn([(logits, [])]).backward()
        assert (logits.grad < 0).all()  # gradient descent raises D(G(z))
    assert float(generator_adversarial_loss(_outputs([1.0]), kind="lsgan")) == 0.0
    assert float(generator_adversarial_loss(_outputs([1.0]), kind="hinge")) == 0.0
    # sum over sub-discriminators (DAC) vs mean (EnCodec)
    two = _outputs([0.0, 0.0])
    assert float(lsgan_generator_loss(two)) == 2 * float(lsgan_generator_loss(two, reduction="mean"))
    with pytest.raises(ValueError):
        discriminator_loss(two, two, kind="wasserstein")


def test_feature_matching():
    real = _outputs([0.0, 0.0])
    assert float(feature_matching_loss(real, _outputs([5.0, 1.0]))) == 0.0  # logits are not features
    fake = [(l, [f.clone().requires_grad_(True) for f in fm]) for l, fm in _outputs([0.0, 0.0], 1.5)]
    real = [(l, [f.requires_grad_(True) for f in fm]) for l, fm in real]
    loss = feature_matching_loss(real, fake)
    assert float(loss.detach()) == pytest.approx(4 * 0.5)  # 2 sub-discs x 2 maps, L1 of 0.5 each
    relative = feature_matching_loss(real, fake, relative=True, reduction="mean")
    assert float(relative.detach()) == pytest.approx(0.5)
    loss.backward()
    assert all(f.grad is not None for _, fm in fake for f in fm)
    assert all(f.grad is None for _, fm in real for f in fm)  # real features are detached


def test_discriminator_learns_with_its_loss():
    torch.manual_seed(0)
    d = MultiScaleSTFTDiscriminator(n_ffts=(64,), channels=4)
    opt = torch.optim.Adam(d.parameters(), lr=3e-3)
    real = _wave(b=4, t=600)
    fake = 0.3 * torch.randn(4, 1, 600)
    losses = []
    for _ in range(15):
        loss = discriminator_loss(d(real), d(fake), kind="hinge")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    real_logit = d(real)[0][0].mean()
    fake_logit = d(fake)[0][0].mean()
    assert real_logit > fake_logit


# ----------------------------------------------------------------------------- balancer


def _toy_generator():
    torch.manual_seed(0)
    model = torch.nn.Conv1d(1, 1, 9, padding=4)
    x = torch.randn(2, 1, 256)
    target = torch.randn(2, 1, 256)
    return model, x, target


def _two_losses(out, target):
    return {
        "big": 1000.0 * (out - target).square().mean(),  # huge natural scale
        "small": 0.01 * (out - target).abs().mean(),  # tiny natural scale
    }


@pytest.mark.parametrize("per_batch_item", [False, True])
def test_balancer_weights_set_gradient_ratio(per_batch_item):
    model, x, target = _toy_generator()
    out = model(x)
    losses = _two_losses(out, target)
    raw = {k: torch.autograd.grad(v, out, retain_graph=True)[0] for k, v in losses.items()}
    balancer = LossBalancer({"big": 1.0, "small": 3.0}, total_norm=2.0, per_batch_item=per_batch_item)
    effective = balancer.backward(losses, out)

    def norm(g):
        return g.flatten(1).norm(dim=1).mean() if per_batch_item else g.norm()

    contrib = {k: norm(balancer.scales[k] * raw[k]) for k in raw}
    assert float(contrib["small"] / contrib["big"]) == pytest.approx(3.0, rel=1e-4)
    assert float(contrib["big"]) == pytest.approx(2.0 * 1 / 4, rel=1e-4)  # total_norm * w / sum(w)
    assert float(contrib["small"]) == pytest.approx(2.0 * 3 / 4, rel=1e-4)
    # the gradient that reached the model is the chain rule of the balanced output gradient
    out2 = model(x)
    (ref_grad,) = torch.autograd.grad(out2, model.weight, grad_outputs=sum(balancer.scales[k] * raw[k] for k in raw))
    torch.testing.assert_close(model.weight.grad, ref_grad)
    assert effective.dim() == 0 and not effective.requires_grad


def test_balancer_ema_and_plain_weighted_mode():
    model, x, target = _toy_generator()
    balancer = LossBalancer({"big": 1.0, "small": 1.0}, ema_decay=0.5)
    for scale in (1.0, 3.0):
        out = model(x) * scale
        balancer.backward(_two_losses(out, target), out)
    assert balancer.state_dict()["ema_weight"]["big"] == pytest.approx(1.5)

    plain = LossBalancer({"big": 2.0, "small": 0.5}, balance_grads=False)
    model.zero_grad()
    out = model(x)
    plain.backward(_two_losses(out, target), out)
    got = model.weight.grad.clone()
    model.zero_grad()
    ls = _two_losses(model(x), target)
    (2.0 * ls["big"] + 0.5 * ls["small"]).backward()
    torch.testing.assert_close(got, model.weight.grad)

    with pytest.raises(ValueError, match="no weight"):
        plain.backward({"other": model(x).sum()}, model(x))


def test_spectral_caches_filled_in_inference_mode_still_train():
    """A metric computed under inference_mode must not leave inference tensors in the caches."""
    from hf_musiccodec.audio.spectral import _cached_mel, _cached_window

    _cached_window.cache_clear()
    _cached_mel.cache_clear()
    loss = MultiScaleMelLoss(SR, window_lengths=(64,), n_mels=(8,))
    with torch.inference_mode():
        loss(torch.randn(1, 1, 800), torch.randn(1, 1, 800))
    estimate = torch.randn(1, 1, 800, requires_grad=True)
    loss(estimate, torch.randn(1, 1, 800)).backward()
    assert estimate.grad is not None
