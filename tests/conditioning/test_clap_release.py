"""The released pipelines/music-clap artifact: loads offline through the Auto classes, small, sane outputs."""

from pathlib import Path

import numpy as np
import pytest
import torch

FOLDER = Path(__file__).resolve().parents[2] / "pipelines" / "music-clap"

pytestmark = pytest.mark.skipif(not (FOLDER / "config.json").is_file(), reason="no released MusicClap artifact")


def test_release_loads_with_auto_classes_and_embeds():
    import hf_musiccodec.conditioning  # noqa: F401  registers the Auto classes
    from transformers import AutoModel, AutoProcessor

    weights = sum(f.stat().st_size for f in FOLDER.glob("*.safetensors"))
    assert 0 < weights < 30_000_000 and max(f.stat().st_size for f in FOLDER.glob("*.safetensors")) < 16_000_000
    model = AutoModel.from_pretrained(FOLDER).eval()
    processor = AutoProcessor.from_pretrained(FOLDER)
    t = np.arange(int(12.5 * 22050)) / 22050
    clip = (0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
    with torch.no_grad():
        out = model(**processor(text=["a fast piece played on a marimba", "a slow choir"], audio=[clip, clip[:40000]],
                                sampling_rate=22050), return_loss=True)
    assert out.logits_per_audio.shape == (2, 2) and torch.isfinite(out.loss)
    torch.testing.assert_close(out.audio_embeds.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(out.text_embeds.norm(dim=-1), torch.ones(2))
