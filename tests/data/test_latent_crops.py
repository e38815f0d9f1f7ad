"""Latent crops for diffusion training and MusicLDM's beat-synchronous mixup: tempo partners, a
partner beat on the anchor's first beat, the same crops and mixes for the same epoch, BLM as the
weighted sum of the two cached crops, BAM as the codec's latents of the mixed waveforms."""

import numpy as np
import pytest
import torch

from hf_musiccodec.codecs import MusicCodecModel
from hf_musiccodec.data.beat_mixup import aligned_partner_start, item_tempo, mix_embeddings, tempo_partners
from hf_musiccodec.data.latent_crops import LatentCrops
from tests.training.diffusion_workspace import build_diffusion_workspace

CROP = 30  # frames (0.4 s at 75 Hz)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return build_diffusion_workspace(tmp_path_factory.mktemp("latent-crops"))


def test_item_tempo_and_partners():
    beats = np.arange(0, 600, 37.5)  # 120 BPM at 75 frames a second
    assert item_tempo(beats, 75.0) == pytest.approx(120.0)
    assert item_tempo(beats[:2], 75.0) is None
    partners = tempo_partners([120.0, 121.0, 90.0, None, 125.0], tolerance=0.05)
    assert [p.tolist() for p in partners] == [[1, 4], [0, 4], [], [], [0, 1]]


def test_partner_crop_puts_a_beat_on_the_anchors_first_beat():
    rng = np.random.default_rng(0)
    anchor = np.arange(5.0, 600, 37.5)
    partner = np.arange(11.0, 600, 37.5)
    for start in (0, 40, 100, 333):
        first = anchor[anchor >= start][0] - start
        s = aligned_partner_start(anchor, start, partner, 600, 100, rng)
        assert 0 <= s <= 500
        assert np.min(np.abs(partner - s - first)) <= 0.5  # a partner beat at the same offset
    assert aligned_partner_start(np.array([]), 0, partner, 600, 100, rng) is None
    assert aligned_partner_start(anchor, 0, partner, 90, 100, rng) is None  # partner shorter than a crop


def test_mixed_embedding_keeps_unit_length():
    a, b = torch.nn.functional.normalize(torch.randn(2, 16), dim=-1)
    mixed = mix_embeddings(a, b, 0.7)
    assert float(mixed.norm()) == pytest.approx(1.0, abs=1e-6)
    assert float(torch.dot(mixed, a)) > float(torch.dot(mixed, b))


def test_crops_are_a_function_of_seed_epoch_and_index(workspace):
    crops = LatentCrops(workspace / "cache", CROP, seed=3, mixup="blm", mixup_prob=0.5)
    first = [crops[i]["latents"] for i in range(len(crops))]
    again = LatentCrops(workspace / "cache", CROP, seed=3, mixup="blm", mixup_prob=0.5)
    for i, z in enumerate(first):
        torch.testing.assert_close(again[i]["latents"], z)
    crops.set_epoch(1)
    assert any(not torch.equal(crops[i]["latents"], z) for i, z in enumerate(first))
    item = crops[0]
    assert item["latents"].shape == (crops.hidden_size, CROP) and item["clap"].shape == (crops.clap_dim,)


def test_blm_mixes_two_cached_crops_of_the_same_tempo(workspace):
    crops = LatentCrops(workspace / "cache", CROP, mixup="blm", mixup_prob=1.0)
    plain = LatentCrops(workspace / "cache", CROP)
    mixed = [i for i in range(len(crops)) if crops[i]["mixed"]]
    # clips 0, 1, 2 and 4 have partners (120-121 BPM), 3 and 5 (90 BPM) each other
    assert len(mixed) >= 4
    for i in mixed:
        item, own = crops[i], plain[i]
        # the mix is lambda * own crop + (1 - lambda) * some crop of a partner: its residual is a partner's crop
        residuals = []
        for j in crops.partners[i]:
            z = crops.latents[j].float()
            for s in range(z.shape[-1] - CROP + 1):
                other = z[:, s:s + CROP]
                lam = float(((item["latents"] - other) * (own["latents"] - other)).sum()
                            / ((own["latents"] - other) ** 2).sum())
                residuals.append(float((item["latents"] - lam * own["latents"] - (1 - lam) * other).abs().max()))
        assert min(residuals) < 1e-3
        assert not torch.allclose(item["clap"], own["clap"])
    validation = LatentCrops(workspace / "cache", CROP, random_crops=False, mixup="blm", mixup_prob=1.0)
    assert not any(validation[i]["mixed"] for i in range(len(validation)))  # validation is never mixed


def test_bam_encodes_the_mixed_waveforms(workspace):
    codec = MusicCodecModel.from_pretrained(workspace / "codec").eval()
    crops = LatentCrops(workspace / "cache", CROP, mixup="bam", mixup_prob=1.0, codec=codec)
    blm = LatentCrops(workspace / "cache", CROP, mixup="blm", mixup_prob=1.0)
    i = next(i for i in range(len(crops)) if crops[i]["mixed"])
    bam_item, blm_item = crops[i], blm[i]
    assert bam_item["latents"].shape == (codec.config.hidden_size, CROP) and torch.isfinite(bam_item["latents"]).all()
    assert not torch.allclose(bam_item["latents"], blm_item["latents"])  # the codec is not linear
    torch.testing.assert_close(bam_item["clap"], blm_item["clap"])       # same partner, same lambda


def test_bad_settings_are_errors(workspace, tmp_path):
    with pytest.raises(ValueError, match="mixup must be"):
        LatentCrops(workspace / "cache", CROP, mixup="cutmix")
    with pytest.raises(ValueError, match="pass the cache's codec"):
        LatentCrops(workspace / "cache", CROP, mixup="bam")
