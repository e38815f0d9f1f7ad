"""What the token-model solver tests share: a tiny codec, CLAP and token cache with conditions,
built from real (synthetic) audio files, and a solver that dies after a given step."""

import numpy as np
import soundfile as sf
import torch

from hf_musiccodec.codecs import MusicCodecModel
from hf_musiccodec.conditioning import MusicClapModel, build_music_clap_processor
from hf_musiccodec.data import condition_cache as cc
from hf_musiccodec.data import latent_cache as lc
from hf_musiccodec.testing.tiny import tiny_clap_config, tiny_codec_config

SR = 24000


def write_tone_clips(folder, captions: list[str], seconds=1.5) -> list[dict]:
    """One pulsed tone per caption (a semitone apart, pulsing at i + 1 Hz), as manifest rows."""
    rows = []
    for i, caption in enumerate(captions):
        t = np.arange(int(seconds * SR)) / SR
        x = 0.3 * np.sin(2 * np.pi * (220 * 2 ** (i / 12)) * t) * (1 + np.sign(np.sin(2 * np.pi * (i + 1) * t))) / 2
        path = folder / f"clip{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), x.astype(np.float32), SR)
        rows.append({"path": str(path), "duration": seconds, "caption": caption})
    return rows


def build_token_workspace(root, rows: list[dict]):
    """``root/codec`` (tiny codec), ``root/cache`` (its tokens of ``rows`` with melody and CLAP
    conditions) and ``root/clap`` (tiny CLAP with its processor)."""
    torch.manual_seed(0)
    codec = MusicCodecModel(tiny_codec_config("encodec_24khz", kmeans_init=False)).eval()
    codec.save_pretrained(root / "codec")
    lc.build_latent_cache(codec, rows, root / "cache", shard_size=4, progress=False)
    clap_config = tiny_clap_config()
    clap = MusicClapModel(clap_config).eval()
    processor = build_music_clap_processor(clap_config)
    clap.save_pretrained(root / "clap")
    processor.save_pretrained(root / "clap")
    cc.build_condition_cache(root / "cache", clap, processor.feature_extractor, clap_hop_seconds=0.5, progress=False)
    return root


class Killed(Exception):
    """Raised where a killed process would have stopped."""


def dies_after_step(solver_class, step: int):
    """``solver_class``, dying right after step ``step``'s checkpoint as a killed process would."""

    class _Dies(solver_class):
        def _after_step(self, *args):
            super()._after_step(*args)
            if self.state.step == step:
                raise Killed

    return _Dies
