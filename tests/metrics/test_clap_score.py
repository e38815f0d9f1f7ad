import numpy as np
import pytest
import torch

from hf_musiccodec.metrics import clap_score, novelty


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_clap_score_known_angles():
    text = np.eye(3)
    angles = np.array([0.0, np.pi / 3, np.pi / 2])
    audio = np.stack([np.cos(angles), np.sin(angles), np.zeros(3)], axis=1)  # row i at angle_i from e_0
    text = np.repeat(text[:1], 3, axis=0)
    np.testing.assert_allclose(clap_score(text, audio, reduction="none"), [1.0, 0.5, 0.0], atol=1e-12)
    assert clap_score(text, audio) == pytest.approx(0.5)
    # scale does not matter, torch tensors work
    assert clap_score(torch.as_tensor(3 * text), torch.as_tensor(0.1 * audio)) == pytest.approx(0.5)


def test_clap_score_matched_pairs_beat_shuffled_pairs():
    rng = np.random.default_rng(0)
    text = rng.normal(size=(32, 16))
    audio = text + 0.5 * rng.normal(size=text.shape)
    assert clap_score(text, audio) > clap_score(text, np.roll(audio, 1, axis=0)) + 0.5


@pytest.mark.parametrize(
    "text, audio, match",
    [
        (np.ones((2, 4)), np.ones((3, 4)), "pair up"),
        (np.zeros((2, 4)), np.ones((2, 4)), "all-zero"),
        (np.full((2, 4), np.nan), np.ones((2, 4)), "NaN"),
        (np.ones((0, 4)), np.ones((0, 4)), "at least 1"),
    ],
)
def test_clap_score_bad_input(text, audio, match):
    with pytest.raises(ValueError, match=match):
        clap_score(text, audio)


def test_novelty_counts_near_copies():
    rng = np.random.default_rng(0)
    train = _unit(rng.normal(size=(50, 32)))
    copies = _unit(train[:3] + 0.05 * rng.normal(size=(3, 32)))  # cosine ~0.96 with their source
    fresh = _unit(rng.normal(size=(7, 32)))  # random directions in 32-D: cosine < 0.7
    result = novelty(np.concatenate([copies, fresh]), train, threshold=0.9)
    assert result.share_above == pytest.approx(0.3)
    assert result.nearest_index[:3].tolist() == [0, 1, 2]
    assert (result.nearest_similarity[:3] > 0.9).all() and (result.nearest_similarity[3:] < 0.7).all()
    assert result.summary["max"] == pytest.approx(result.nearest_similarity.max())
    assert result.summary["min"] <= result.summary["median"] <= result.summary["p95"] <= result.summary["max"]
    assert novelty(train[:5], train).share_above == 1.0  # exact copies
    assert novelty(-train[:5], train, threshold=0.95).share_above == 0.0


def test_novelty_bad_input():
    with pytest.raises(ValueError, match="threshold"):
        novelty(np.ones((2, 3)), np.ones((2, 3)), threshold=1.5)
    with pytest.raises(ValueError, match="sizes differ"):
        novelty(np.ones((2, 3)), np.ones((2, 4)))
