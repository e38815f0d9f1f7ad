"""VampNet's MaskGIT sampler: kept tokens stay, every masked one is filled, the share still masked
follows the cosine schedule, seeds reproduce, early stops are complete, guidance runs."""

import math

import pytest
import torch

from hf_musiccodec.models.vampnet import VampNetConfig, VampNetModel
from hf_musiccodec.pipelines.vampnet import masks as M
from hf_musiccodec.pipelines.vampnet.sampling import VampSamplingOptions, vamp

V = 16


def model_of(**kw):
    values = dict(codebook_size=V, num_codebooks=3, frame_rate=75.0, context_frames=40, hidden_size=32,
                  num_layers=1, num_heads=2, ffn_dim=64, dropout=0.0)
    values.update(kw)
    torch.manual_seed(0)
    model = VampNetModel(VampNetConfig(**values)).eval()
    with torch.no_grad():  # large random weights: confident, input-dependent predictions
        for p in model.parameters():
            if p.ndim >= 1:
                p.normal_(0.0, 0.3)
    return model


@pytest.fixture(scope="module")
def model():
    return model_of()


def codes_and_mask(b=2, k=3, t=30, seed=0):
    codes = torch.randint(0, V, (b, k, t), generator=torch.Generator().manual_seed(seed))
    mask = M.mask_and(M.full_mask(codes), M.periodic_mask(codes, 3))  # keep every third frame
    if b > 1:
        mask[1, :, :10] = False  # example 1 also keeps a prefix: fewer tokens to fill
    return codes, mask


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_kept_tokens_stay_and_every_masked_token_is_filled(model):
    codes, mask = codes_and_mask()
    out = vamp(model, codes, mask, VampSamplingOptions(num_steps=6), generator=seeded())
    assert out.shape == codes.shape and out.dtype == codes.dtype
    assert torch.equal(out[~mask], codes[~mask])
    assert (out < V).all() and (out >= 0).all()  # no mask token left
    assert not torch.equal(out[mask], codes[mask])  # and something was generated
    assert torch.equal(codes, codes_and_mask()[0])  # the input is left alone


def test_masked_count_follows_the_cosine_schedule(model):
    codes, mask = codes_and_mask()
    n = 8
    counts = []
    vamp(model, codes, mask, VampSamplingOptions(num_steps=n), generator=seeded(),
         on_step=lambda i, z: counts.append((i, (z == model.config.mask_token_id).flatten(1).sum(1).tolist())))
    assert [i for i, _ in counts] == list(range(n))
    start = mask.flatten(1).sum(1).tolist()
    previous = start
    for i, still in counts:
        for example in range(2):
            expected = math.floor(start[example] * math.cos(math.pi / 2 * (i + 1) / n))
            expected = max(min(expected, previous[example] - 1), 0)
            assert abs(still[example] - expected) <= 1, (i, example, still, expected)
            assert still[example] < previous[example] or previous[example] == 0  # strictly fewer each pass
        previous = still
    assert counts[-1][1] == [0, 0]


def test_at_least_one_token_per_pass_even_with_many_passes(model):
    codes, mask = codes_and_mask(b=1, t=6)
    mask[:] = False
    mask[0, 1, 2:5] = True  # 3 tokens, 10 passes: one per pass, then nothing left to do
    counts = []
    out = vamp(model, codes, mask, VampSamplingOptions(num_steps=10), generator=seeded(),
               on_step=lambda i, z: counts.append(int((z == V).sum())))
    assert counts == [2, 1, 0] + [0] * 7 and (out < V).all()  # on_step still sees every pass
    assert torch.equal(out[~mask], codes[~mask])


def test_seeds(model):
    codes, mask = codes_and_mask()
    options = VampSamplingOptions(num_steps=4)
    a = vamp(model, codes, mask, options, generator=seeded(0))
    assert torch.equal(a, vamp(model, codes, mask, options, generator=seeded(0)))
    assert not torch.equal(a, vamp(model, codes, mask, options, generator=seeded(1)))


def test_on_step_true_stops_early_and_fills_everything(model):
    codes, mask = codes_and_mask()
    calls = []

    def stop_after_two(i, z):
        calls.append(int((z == V).sum()))
        return i == 1

    out = vamp(model, codes, mask, VampSamplingOptions(num_steps=12), generator=seeded(), on_step=stop_after_two)
    assert len(calls) == 2 and calls[-1] > 0  # stopped while tokens were still masked
    assert (out < V).all() and torch.equal(out[~mask], codes[~mask])


def test_a_strong_preference_is_sampled():
    model = model_of()
    with torch.no_grad():
        model.heads.bias.view(3, V)[:, 7] += 50.0  # every codebook strongly prefers token 7
    codes, mask = codes_and_mask()
    options = VampSamplingOptions(num_steps=4, temperature=0.1, typical_mass=None)
    out = vamp(model, codes, mask, options, generator=seeded())
    assert (out[mask] == 7).all()
    assert torch.equal(out[~mask], codes[~mask])
    # top-p keeps only the preferred token too
    out = vamp(model, codes, mask, VampSamplingOptions(num_steps=4, typical_mass=None, top_p=0.5), generator=seeded())
    assert (out[mask] == 7).all()


def test_typical_filtering_and_temperature_change_the_samples(model):
    codes, mask = codes_and_mask()
    plain = vamp(model, codes, mask, VampSamplingOptions(num_steps=4, typical_mass=None), generator=seeded())
    typical = vamp(model, codes, mask, VampSamplingOptions(num_steps=4, typical_mass=0.2, typical_min_tokens=1),
                   generator=seeded())  # fmt: skip
    assert not torch.equal(plain, typical)
    for out in (plain, typical):
        assert (out < V).all() and torch.equal(out[~mask], codes[~mask])


def test_guidance_runs_and_changes_the_samples():
    model = model_of(condition_dim=8)
    with torch.no_grad():  # a condition that matters
        model.condition_projection.weight.normal_(0.0, 2.0)
    codes, mask = codes_and_mask()
    condition = torch.randn(2, 8, generator=seeded(5))
    options = dict(num_steps=4, typical_mass=None)
    plain = vamp(model, codes, mask, VampSamplingOptions(**options), generator=seeded(), condition_embeds=condition)
    guided = vamp(model, codes, mask, VampSamplingOptions(**options, guidance_scale=3.0), generator=seeded(),
                  condition_embeds=condition)  # fmt: skip
    none = vamp(model, codes, mask, VampSamplingOptions(**options), generator=seeded())
    assert not torch.equal(plain, guided) and not torch.equal(plain, none)
    for out in (plain, guided, none):
        assert (out < V).all() and torch.equal(out[~mask], codes[~mask])
    # guidance without a condition is plain sampling
    assert torch.equal(vamp(model, codes, mask, VampSamplingOptions(**options, guidance_scale=3.0),
                            generator=seeded()), none)  # fmt: skip


def test_conditioning_codebooks_are_never_changed():
    model = model_of(num_conditioning_codebooks=2)
    codes = torch.randint(0, V, (2, 3, 20), generator=seeded())
    mask = torch.ones_like(codes, dtype=torch.bool)  # asks for everything, the given codebooks included
    out = vamp(model, codes, mask, VampSamplingOptions(num_steps=4), generator=seeded())
    assert torch.equal(out[:, :2], codes[:, :2])
    assert (out < V).all() and not torch.equal(out[:, 2], codes[:, 2])
    assert mask.all()  # the caller's mask is left alone


def test_nothing_masked_is_a_no_op(model):
    codes, _ = codes_and_mask()
    calls = []
    out = vamp(model, codes, torch.zeros_like(codes, dtype=torch.bool), generator=seeded(),
               on_step=lambda i, z: calls.append(i))
    assert torch.equal(out, codes) and calls == list(range(24))  # every pass, none of them calling the model
    calls = []
    vamp(model, codes, torch.zeros_like(codes, dtype=torch.bool), on_step=lambda i, z: calls.append(i) or i == 2)
    assert calls == [0, 1, 2]  # and on_step can still stop


@pytest.mark.parametrize("options", [
    dict(num_steps=0), dict(num_steps=2.0), dict(num_steps=300), dict(temperature=0), dict(mask_temperature=-1),
    dict(typical_mass=1.0), dict(typical_mass=0.0), dict(top_p=0.0), dict(top_p=1.5), dict(guidance_scale=-1),
])  # fmt: skip
def test_bad_options_raise_value_error(model, options):
    codes, mask = codes_and_mask()
    with pytest.raises(ValueError):
        vamp(model, codes, mask, VampSamplingOptions(**options))


def test_bad_shapes_raise_value_error(model):
    codes, mask = codes_and_mask()
    with pytest.raises(ValueError, match="must both be"):
        vamp(model, codes, mask[:, :, :-1])
    with pytest.raises(ValueError, match="must both be"):
        vamp(model, codes[:, :2], mask[:, :2])
