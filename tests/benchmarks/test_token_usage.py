"""benchmarks/token_usage.py: per-codebook token statistics of a latent cache."""


import numpy as np
import pytest
import torch
from tests.benchmarks.load import benchmark_fixture

from hf_musiccodec.codecs import MusicCodecModel
from hf_musiccodec.data import latent_cache as lc
from hf_musiccodec.testing.tiny import tiny_codec_config


tu = benchmark_fixture("token_usage")


def test_shares_and_perplexity(tu):
    one_token = np.zeros((1, 100), np.int64)
    even = np.arange(100)[None] % 4
    skewed = np.array([[0] * 70 + [1, 2, 3, 4, 5, 6] * 5])
    rows = tu.token_usage([np.concatenate([one_token, even]), np.concatenate([skewed, even])], 8)
    assert rows[0]["top_token"] == 0 and rows[0]["top1_share"] == pytest.approx(170 / 200)
    assert rows[0]["top5_share"] == pytest.approx(190 / 200) and rows[0]["codes_used"] == 7
    assert rows[1]["top1_share"] == pytest.approx(0.25) and rows[1]["perplexity"] == pytest.approx(4.0)
    assert rows[1]["frames"] == 200


def test_command_on_a_tiny_cache_and_bad_input(tu, tmp_path, capsys):
    import soundfile as sf

    rng = np.random.default_rng(0)
    rows = []
    for i in range(2):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, (0.2 * rng.standard_normal(24000)).astype(np.float32), 24000)
        rows.append({"path": str(path), "duration": 1.0, "split": "train"})
    torch.manual_seed(0)
    codec = MusicCodecModel(tiny_codec_config("encodec_24khz", kmeans_init=False)).eval()
    lc.build_latent_cache(codec, rows, tmp_path / "cache", progress=False)
    assert tu.main(["--cache", str(tmp_path / "cache"), "--codebooks", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 items" in out and len([line for line in out.splitlines() if line.strip()[:1].isdigit()]) == 2
    assert tu.main(["--cache", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("token_usage: error:") and err.count("\n") == 1
