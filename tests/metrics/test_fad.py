import numpy as np
import pytest
import torch

from hf_musiccodec.metrics import (
    ClapAudioEmbedding,
    MelStatsEmbedding,
    embed_audio,
    embedding_statistics,
    frechet_audio_distance,
    frechet_distance,
    gaussian_frechet_distance,
)

SR = 16_000


def _gaussian(n, mean, std, seed):
    return np.random.default_rng(seed).normal(mean, std, size=(n, len(std)))


def test_closed_form_for_diagonal_gaussians():
    # For diagonal covariances FD = |mu_a - mu_b|² + sum (std_a - std_b)².
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    std_a, std_b = np.array([1.0, 2.0, 0.5]), np.array([2.0, 1.0, 0.5])
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((std_a - std_b) ** 2)
    got = gaussian_frechet_distance(mu_a, np.diag(std_a**2), mu_b, np.diag(std_b**2))
    assert got == pytest.approx(expected, rel=1e-9)
    # ... and the sample estimate converges to it.
    sampled = frechet_distance(_gaussian(20_000, mu_a, std_a, 0), _gaussian(20_000, mu_b, std_b, 1))
    assert sampled == pytest.approx(expected, rel=0.03)


def test_closed_form_for_full_covariance():
    # Rotating both covariances by the same orthogonal matrix keeps the distance.
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
    var_a, var_b = np.array([1.0, 4.0, 9.0, 0.25]), np.array([4.0, 1.0, 1.0, 1.0])
    sig_a, sig_b = rot @ np.diag(var_a) @ rot.T, rot @ np.diag(var_b) @ rot.T
    expected = 1.0 + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert gaussian_frechet_distance(np.zeros(4), sig_a, np.eye(4)[0], sig_b) == pytest.approx(expected, rel=1e-6)


def test_identical_sets_give_zero_and_mean_shift_grows():
    x = _gaussian(500, np.zeros(8), np.ones(8), 0)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    shifts = [0.5, 1.0, 2.0]
    values = [frechet_distance(x, x + s) for s in shifts]
    # a pure shift changes only the mean term: 8 dimensions * s²
    np.testing.assert_allclose(values, [8 * s**2 for s in shifts], rtol=1e-6)


def test_singular_covariance_is_regularised():
    # fewer samples than dimensions: rank-deficient covariances, still a finite distance
    a, b = _gaussian(5, np.zeros(32), np.ones(32), 0), _gaussian(5, np.ones(32), np.ones(32), 1)
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value > 0


@pytest.mark.parametrize(
    "a, match",
    [(np.zeros((1, 3)), "at least 2"), (np.full((4, 3), np.nan), "NaN"), (np.zeros((4, 3, 1)), "shape")],
)
def test_bad_embeddings(a, match):
    with pytest.raises(ValueError, match=match):
        frechet_distance(a, np.zeros((4, 3)))


def _clips(n, noise, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(SR * 2) / SR
    clips = []
    for _ in range(n):
        f0 = rng.uniform(200, 400)
        tone = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(2 * np.pi * 2 * f0 * t)
        clips.append((tone + noise * rng.standard_normal(t.size)).astype(np.float32))
    return clips


def test_mel_stats_embedding_shape_and_rate_independence():
    emb = MelStatsEmbedding()
    clip = _clips(1, 0.01, 0)[0]
    rows = emb(clip, SR)
    assert emb.name == "mel-stats" and rows.shape == (3, 128)  # 1 s windows, 0.5 s hop over 2 s
    import soxr

    resampled = soxr.resample(clip, SR, 44_100)
    # the same features at any input rate (the top band sits in soxr's transition band: skipped)
    keep = np.r_[0:63, 64:127]
    np.testing.assert_allclose(emb(resampled, 44_100)[:, keep], rows[:, keep], atol=0.1)
    assert emb(clip[: SR // 4], SR).shape == (1, 128)  # shorter than a window: one row


def test_fad_on_audio_grows_with_degradation():
    reference = _clips(6, 0.001, 0)
    same_kind = _clips(6, 0.001, 1)
    scores = [frechet_audio_distance(reference, _clips(6, n, 1), SR) for n in (0.001, 0.01, 0.05)]
    assert frechet_audio_distance(reference, reference, SR) == pytest.approx(0.0, abs=1e-6)
    assert scores[0] == pytest.approx(frechet_audio_distance(reference, same_kind, SR))
    assert scores[0] < scores[1] < scores[2], scores


def test_fad_bad_audio():
    with pytest.raises(ValueError, match="NaN"):
        frechet_audio_distance(_clips(2, 0.01, 0), [np.full(SR, np.nan, dtype=np.float32)] * 2, SR)
    with pytest.raises(ValueError, match="empty"):
        frechet_audio_distance(_clips(2, 0.01, 0), [np.zeros(0, dtype=np.float32)] * 2, SR)
    with pytest.raises(ValueError, match="positive integer rate"):
        frechet_audio_distance(_clips(2, 0.01, 0), _clips(2, 0.01, 1), 0)
    with pytest.raises(ValueError, match="no audio"):
        frechet_audio_distance([], _clips(2, 0.01, 1), SR)


class TinyFeatureExtractor:
    """Stand-in for ClapFeatureExtractor: log-power spectrum frames at 8 kHz."""

    sampling_rate = 8_000

    def __call__(self, audios, sampling_rate, return_tensors):
        assert sampling_rate == self.sampling_rate and return_tensors == "pt"
        x = torch.as_tensor(np.stack(audios))
        frames = x.unfold(-1, 256, 128)
        return {"input_features": torch.log1p(torch.fft.rfft(frames).abs().square())}


class TinyClap(torch.nn.Module):
    """A real (tiny) audio tower: projection of mean spectral frames, unit-normalised like CLAP."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(129, 16)

    def get_audio_features(self, input_features):
        return torch.nn.functional.normalize(self.proj(input_features.mean(1)), dim=-1)


class TinyClapProcessor:
    def __init__(self):
        self.feature_extractor = TinyFeatureExtractor()


def test_clap_adapter_with_a_small_model():
    emb = ClapAudioEmbedding(TinyClap().eval(), TinyClapProcessor())
    clip = _clips(1, 0.01, 0)[0]
    vec = emb(clip, SR)  # resampled 16 kHz -> 8 kHz inside
    assert emb.name == "clap" and vec.shape == (16,)
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(emb(np.stack([clip, clip]), SR), vec, atol=1e-6)  # stereo -> mono
    rows = embed_audio(_clips(3, 0.01, 0), SR, emb)
    assert rows.shape == (3, 16)
    # plugs into FAD like any embedding
    assert frechet_audio_distance(_clips(4, 0.001, 0), _clips(4, 0.001, 0), SR, emb) == pytest.approx(0, abs=1e-8)


def test_clap_adapter_rejects_non_clap_models():
    with pytest.raises(ValueError, match="get_audio_features"):
        ClapAudioEmbedding(torch.nn.Linear(2, 2), TinyClapProcessor())
    with pytest.warns(UserWarning, match="training mode"):
        ClapAudioEmbedding(TinyClap().train(), TinyClapProcessor())


def test_embed_audio_checks_the_embedding_output():
    with pytest.raises(ValueError, match="different sizes"):
        clips = [np.ones(SR, dtype=np.float32), np.ones(SR + 1, dtype=np.float32)]
        embed_audio(clips, SR, lambda a, sr: np.zeros(a.size % 2 + 1))
    with pytest.raises(ValueError, match="NaN"):
        embed_audio(_clips(1, 0.01, 0), SR, lambda a, sr: np.full(4, np.nan))


def test_statistics_shapes():
    mu, sigma = embedding_statistics(np.random.default_rng(0).normal(size=(10, 3)))
    assert mu.shape == (3,) and sigma.shape == (3, 3)


def test_clap_adapter_with_transformers_clap_model():
    # transformers >= 5 returns an output object from get_audio_features: the adapter reads pooler_output
    from transformers import ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, ClapTextConfig

    audio = ClapAudioConfig(
        depths=[1, 1], num_attention_heads=[2, 2], hidden_size=32, patch_embeds_hidden_size=16,
        spec_size=128, num_mel_bins=64, window_size=8, patch_stride=4, patch_size=4,
    )
    text = ClapTextConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=1, intermediate_size=16
    )
    torch.manual_seed(0)
    model = ClapModel(ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16))
    extractor = ClapFeatureExtractor(feature_size=64, max_length_s=1, truncation="rand_trunc")
    emb = ClapAudioEmbedding(model.eval(), extractor)
    assert emb.sampling_rate == 48_000
    vec = emb(_clips(1, 0.01, 0)[0][: SR // 2], SR)
    assert vec.shape == (16,) and np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
