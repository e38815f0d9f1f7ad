import pytest
import torch

from hf_musiccodec.training.discriminators import (
    CombinedDiscriminator,
    MultiBandMultiScaleSTFTDiscriminator,
    MultiPeriodDiscriminator,
    MultiScaleSTFTDiscriminator,
    build_discriminator,
)



def _tiny(kind, **kw):
    if kind == "mpd":
        return MultiPeriodDiscriminator(periods=(2, 3), channels=(4, 8, 8), **kw)
    if kind == "msstftd":
        return MultiScaleSTFTDiscriminator(n_ffts=(128, 64), channels=4, **kw)
    return MultiBandMultiScaleSTFTDiscriminator(window_lengths=(128, 64), channels=4, **kw)


# number of sub-discriminators and feature maps per sub-discriminator
EXPECTED = {"mpd": (2, 3), "msstftd": (2, 5), "mrd": (2, 25)}


@pytest.mark.parametrize("kind", ["mpd", "msstftd", "mrd"])
def test_output_structure(kind):
    torch.manual_seed(0)
    d = _tiny(kind)
    out = d(torch.randn(2, 1, 1001))
    n_sub, n_maps = EXPECTED[kind]
    assert len(out) == n_sub
    for logits, fmaps in out:
        assert logits.shape[0] == 2 and logits.shape[1] == 1
        assert len(fmaps) == n_maps
        assert all(f.shape[0] == 2 and torch.isfinite(f).all() for f in fmaps)


@pytest.mark.parametrize("kind", ["mpd", "msstftd", "mrd"])
def test_gradients_reach_input_and_all_parameters(kind):
    torch.manual_seed(0)
    d = _tiny(kind)
    x = torch.randn(1, 1, 800, requires_grad=True)
    out = d(x)
    loss = sum(l.mean() + sum(f.mean() for f in fm) for l, fm in out)
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in d.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("kind", ["mpd", "msstftd", "mrd"])
def test_stereo_folded_or_joint(kind):
    x = torch.randn(2, 2, 700)
    folded = _tiny(kind)(x)
    assert all(l.shape[0] == 4 for l, _ in folded)
    joint = _tiny(kind, in_channels=2)(x)
    assert all(l.shape[0] == 2 for l, _ in joint)


def test_weight_norm_is_used():
    d = _tiny("msstftd")
    # the package's one weight norm (weight_g / weight_v, as the codecs and their checkpoints)
    assert any(n.endswith("weight_g") for n, _ in d.named_parameters())
    plain = MultiScaleSTFTDiscriminator(n_ffts=(64,), channels=4, norm="none")
    assert not any(n.endswith(("weight_g", "weight_v")) for n, _ in plain.named_parameters())


def test_mpd_default_widths_match_hifigan():
    convs = MultiPeriodDiscriminator(periods=(2,)).discriminators[0].convs
    assert [c.out_channels for c in convs] == [32, 128, 512, 1024, 1024]


def test_build_discriminator_names_presets_and_lists():
    x = torch.randn(1, 1, 600)
    tiny = dict(channels=4)
    d = build_discriminator("ms-stft", n_ffts=(64,), **tiny)
    assert isinstance(d, MultiScaleSTFTDiscriminator) and len(d(x)) == 1

    dac = build_discriminator("dac", periods=(2, 3), window_lengths=(64,), channels=2)
    assert isinstance(dac, CombinedDiscriminator) and dac.normalize_input
    assert len(dac(x)) == 3  # 2 periods + 1 MRD scale

    combo = build_discriminator(
        [("mpd", {"periods": (5,)}), {"name": "mrd", "window_lengths": (64, 32)}, _tiny("msstftd")],
        channels=2,
    )
    assert isinstance(combo, CombinedDiscriminator)
    assert len(combo(x)) == 1 + 2 + 2
    with pytest.raises(ValueError):
        build_discriminator("nope")


def test_dac_input_normalisation_makes_it_gain_invariant():
    torch.manual_seed(0)
    d = build_discriminator("dac", periods=(2,), window_lengths=(64,), channels=2)
    x = torch.randn(1, 1, 500)
    a, b = d(x), d(0.1 * x + 0.05)
    for (la, _), (lb, _) in zip(a, b):
        torch.testing.assert_close(la, lb, atol=1e-4, rtol=1e-4)
