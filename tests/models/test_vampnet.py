"""VampNetModel: shapes, a loss over the masked real tokens only, conditioning codebooks that are
always given, the optional global condition, input checks, save/load and the Auto classes."""

import math
import subprocess
import sys

import pytest
import torch

from hf_musiccodec.models.vampnet import VampNetConfig, VampNetModel

V = 16  # codebook size


def tiny(**kw):
    values = dict(codebook_size=V, num_codebooks=3, frame_rate=75.0, context_frames=20, hidden_size=32,
                  num_layers=2, num_heads=2, ffn_dim=64, dropout=0.0)
    values.update(kw)
    torch.manual_seed(0)
    return VampNetModel(VampNetConfig(**values)).eval()


def codes(b=2, k=3, t=12, seed=0):
    return torch.randint(0, V, (b, k, t), generator=torch.Generator().manual_seed(seed))


def half_mask(x, seed=1):
    return torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) < 0.5


@torch.no_grad()
def test_output_shapes_and_initial_loss_is_uniform():
    model = tiny(codebook_size=64, num_conditioning_codebooks=1)
    x = torch.randint(0, 64, (3, 3, 40), generator=torch.Generator().manual_seed(0))
    out = model(x, mask=torch.ones_like(x, dtype=torch.bool), labels=x)
    assert out.logits.shape == (3, 2, 40, 64)  # (batch, predicted codebooks, frames, codebook_size)
    assert out.loss.ndim == 0 and abs(float(out.loss) - math.log(64)) < 0.1
    assert model.config.mask_token_id == 64 and model.config.num_predicted_codebooks == 2
    assert model(x).loss is None


@torch.no_grad()
def test_loss_counts_only_masked_real_positions():
    model = tiny()
    x = codes()
    mask = half_mask(x)
    mask[:, :, -3:] = True  # padding frames, masked: still not scored
    padding = torch.ones(2, 12, dtype=torch.bool)
    padding[:, -3:] = False
    ref = model(x, mask=mask, padding_mask=padding, labels=x).loss
    # an unmasked label changes nothing
    labels = x.clone()
    b, k, t = torch.nonzero(~mask[:, :, :-3])[0].tolist()
    labels[b, k, t] = (labels[b, k, t] + 1) % V
    assert torch.equal(model(x, mask=mask, padding_mask=padding, labels=labels).loss, ref)
    # a label (and the input) in a padding frame changes nothing either: not scored, not attended to
    labels, inputs = x.clone(), x.clone()
    labels[:, :, -3:] = (labels[:, :, -3:] + 5) % V
    inputs[:, :, -2:] = (inputs[:, :, -2:] + 7) % V
    assert torch.allclose(model(inputs, mask=mask, padding_mask=padding, labels=labels).loss, ref, atol=1e-6)
    # but a masked real label does
    labels = x.clone()
    b, k, t = torch.nonzero(mask[:, :, :-3])[0].tolist()
    labels[b, k, t] = (labels[b, k, t] + 1) % V
    assert not torch.equal(model(x, mask=mask, padding_mask=padding, labels=labels).loss, ref)
    # the loss is the mean cross-entropy over exactly the masked real positions
    logits = model(x, mask=mask, padding_mask=padding).logits
    scored = mask & padding[:, None]
    expected = torch.nn.functional.cross_entropy(logits[scored], x[scored])
    assert torch.allclose(ref, expected, atol=1e-6)


@torch.no_grad()
def test_padding_frames_are_not_attended_to():
    model = tiny()
    x = codes()
    padding = torch.ones(2, 12, dtype=torch.bool)
    padding[:, 8:] = False
    ref = model(x, padding_mask=padding).logits[:, :, :8]
    other = x.clone()
    other[:, :, 8:] = (other[:, :, 8:] + 3) % V
    assert torch.allclose(model(other, padding_mask=padding).logits[:, :, :8], ref, atol=1e-5)
    assert not torch.allclose(model(other).logits[:, :, :8], model(x).logits[:, :, :8], atol=1e-5)


@torch.no_grad()
def test_conditioning_codebooks_are_never_masked_nor_predicted():
    model = tiny(num_conditioning_codebooks=2)
    x = codes()
    everything = torch.ones_like(x, dtype=torch.bool)
    upper_only = everything.clone()
    upper_only[:, :2] = False
    a = model(x, mask=everything, labels=x)
    b = model(x, mask=upper_only, labels=x)
    assert a.logits.shape == (2, 1, 12, V)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.loss, b.loss)
    # the given codebooks are read (a change there moves the logits) but never scored
    changed = x.clone()
    changed[:, 0] = (changed[:, 0] + 1) % V
    assert not torch.allclose(model(changed, mask=everything).logits, a.logits)
    labels = x.clone()
    labels[:, :2] = (labels[:, :2] + 1) % V
    assert torch.equal(model(x, mask=everything, labels=labels).loss, a.loss)
    assert not everything[:, :2].logical_not().any()  # the caller's mask is left alone


@torch.no_grad()
def test_mask_replaces_tokens_with_the_mask_token():
    model = tiny()
    x = codes()
    mask = half_mask(x)
    explicit = x.masked_fill(mask, model.config.mask_token_id)
    assert torch.equal(model(x, mask=mask).logits, model(explicit).logits)
    assert not torch.allclose(model(x).logits, model(explicit).logits)


@torch.no_grad()
def test_condition_changes_the_logits_and_condition_mask_turns_it_off():
    model = tiny(condition_dim=8)
    with torch.no_grad():  # a projection large enough to matter (the initial one is small)
        model.condition_projection.weight.normal_(0, 1.0)
    x = codes()
    condition = torch.randn(2, 8, generator=torch.Generator().manual_seed(3))
    none = model(x).logits
    on = model(x, condition_embeds=condition).logits
    assert not torch.allclose(on, none, atol=1e-4)
    off = model(x, condition_embeds=condition, condition_mask=torch.tensor([False, False])).logits
    assert torch.allclose(off, none, atol=1e-6)
    mixed = model(x, condition_embeds=condition, condition_mask=torch.tensor([True, False])).logits
    assert torch.allclose(mixed[0], on[0], atol=1e-6) and torch.allclose(mixed[1], none[1], atol=1e-6)
    # the condition token is not a frame: the logits still cover exactly the frames
    assert on.shape == (2, 3, 12, V)
    with pytest.raises(ValueError, match="no condition"):
        tiny()(x, condition_embeds=condition)


@torch.no_grad()
def test_bidirectional():
    model = tiny()
    x = codes(b=1, t=16)
    changed = x.clone()
    changed[:, :, -1] = (changed[:, :, -1] + 1) % V
    assert not torch.allclose(model(x).logits[:, :, 0], model(changed).logits[:, :, 0], atol=1e-6)
    changed = x.clone()
    changed[:, :, 0] = (changed[:, :, 0] + 1) % V
    assert not torch.allclose(model(x).logits[:, :, -1], model(changed).logits[:, :, -1], atol=1e-6)


@torch.no_grad()
def test_any_length_runs():
    model = tiny()
    for t in (1, 7, 50):  # longer than context_frames too (rotary positions)
        assert model(codes(t=t)).logits.shape == (2, 3, t, V)


@pytest.mark.parametrize("make, match", [
    (lambda: dict(input_ids=codes() + V + 1), "codes must be in"),
    (lambda: dict(input_ids=codes() - 1), "codes must be in"),
    (lambda: dict(input_ids=codes(k=2)), "input_ids must be"),
    (lambda: dict(input_ids=codes()[0]), "input_ids must be"),
    (lambda: dict(input_ids=codes(), mask=torch.ones(2, 3, 11, dtype=torch.bool)), "mask"),
    (lambda: dict(input_ids=codes(), labels=codes()), "labels need a mask"),
])  # fmt: skip
def test_bad_inputs_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        tiny()(**make())


def test_mask_token_in_the_input_is_allowed():
    x = codes()
    x[0, 1, 3] = V
    assert torch.isfinite(tiny()(x).logits).all()


@pytest.mark.parametrize("kw", [dict(num_conditioning_codebooks=3), dict(num_conditioning_codebooks=-1),
                                dict(hidden_size=30), dict(hidden_size=32, num_heads=32)])
def test_bad_config_raises_value_error(kw):
    with pytest.raises(ValueError):
        VampNetConfig(**{**dict(num_codebooks=3, hidden_size=32, num_heads=2), **kw})


@torch.no_grad()
def test_save_and_load_give_identical_logits(tmp_path):
    from transformers import AutoConfig, AutoModel

    model = tiny(condition_dim=8, num_conditioning_codebooks=1)
    model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").is_file()
    x, condition = codes(), torch.randn(2, 8)
    ref = model(x, mask=half_mask(x), condition_embeds=condition).logits
    loaded = VampNetModel.from_pretrained(tmp_path / "m").eval()
    assert torch.equal(loaded(x, mask=half_mask(x), condition_embeds=condition).logits, ref)
    auto = AutoModel.from_pretrained(tmp_path / "m").eval()
    assert type(auto) is VampNetModel and AutoConfig.from_pretrained(tmp_path / "m").model_type == "vampnet"
    assert torch.equal(auto(x, mask=half_mask(x), condition_embeds=condition).logits, ref)


@pytest.mark.parametrize("order", ["import hf_musiccodec; import transformers",
                                   "import transformers; import hf_musiccodec"])
def test_auto_model_loads_it_after_importing_the_package(order, tmp_path):
    tiny().save_pretrained(tmp_path / "m")
    script = order + f"""
from transformers import AutoModel
model = AutoModel.from_pretrained({str(tmp_path / 'm')!r})
assert type(model).__name__ == "VampNetModel", type(model)
assert model.config.model_type == "vampnet" and model.config.num_codebooks == 3
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
