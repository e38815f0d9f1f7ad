"""Training examples for the token LMs: random crops of a latent cache's codes with their conditions.

Every example is a ``crop_frames`` window of one cached item's first ``num_codebooks`` codebooks,
drawn afresh each epoch from ``(seed, epoch, index)`` (a resumed run sees the same crops), with
one of the item's caption phrasings and, when the cache has a condition cache
(:mod:`hf_musiccodec.data.condition_cache`), the melody tokens of the same frames, the CLAP
audio embedding of the window nearest to the crop, the beat-phase tokens of the same frames
(``rhythm``, with ``rhythm_valid`` False for an item without beats) and the item's ``key``
(-1: unknown). Items shorter than a crop are padded with
``pad_code`` (the LM's pad token, whose labels the loss ignores). All codes are held in memory as
int16: an hour of 75 Hz audio at 2 codebooks is 1 MB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .latent_cache import LatentCacheDataset

__all__ = ["TokenCrops"]


class TokenCrops(Dataset):
    """Args:
    cache_dir: a finished latent cache with codes (:func:`build_latent_cache`).
    num_codebooks: codebooks kept (the LM's; at most the cache's).
    crop_frames: frames per example.
    pad_code: code for frames past an item's end.
    conditions: load ``conditions.safetensors`` (melody, CLAP) when the cache has one.
    random_crops: False gives each item's first window (validation).
    rhythm_vocab: beat phases per beat of the rhythm tokens (0: none).
    """

    def __init__(self, cache_dir, num_codebooks: int, crop_frames: int, pad_code: int, seed: int = 0,
                 conditions: bool = True, random_crops: bool = True, rhythm_vocab: int = 0):
        cache = LatentCacheDataset(cache_dir)
        if not cache.index.get("has_codes"):
            raise ValueError(f"{cache_dir}: the cache has no codes (made by a codec without a quantizer)")
        available = cache.index["settings"]["num_quantizers"]
        if num_codebooks > available:
            raise ValueError(f"{cache_dir} holds {available} codebooks, the LM needs {num_codebooks}")
        self.frame_rate = float(cache.index["frame_rate"])
        self.items = cache.items
        self.codes = [cache[i]["codes"][:num_codebooks].to(torch.int16) for i in range(len(cache))]
        self.crop_frames, self.pad_code = int(crop_frames), int(pad_code)
        self.seed, self.epoch, self.random_crops = int(seed), 0, random_crops
        self.rhythm_vocab = int(rhythm_vocab)
        self.conditions = None
        if conditions and (Path(cache_dir) / "conditions.safetensors").is_file():
            from .condition_cache import ConditionCache

            self.conditions = ConditionCache(cache_dir)

    @property
    def has_melody(self) -> bool:
        return self.conditions is not None

    @property
    def has_clap(self) -> bool:
        return self.conditions is not None and self.conditions.has_clap

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        codes = self.codes[index]
        frames = codes.shape[-1]
        start = int(rng.integers(0, max(frames - self.crop_frames, 0) + 1)) if self.random_crops else 0
        crop = torch.full((codes.shape[0], self.crop_frames), self.pad_code, dtype=torch.long)
        real = codes[:, start : start + self.crop_frames].long()
        crop[:, : real.shape[-1]] = real
        item = self.items[index]
        captions = item.get("captions") or [item.get("caption") or ""]
        caption = captions[int(rng.integers(len(captions)))] if self.random_crops else captions[0]
        out = {"codes": crop, "caption": caption or "", "frames": real.shape[-1]}
        if self.has_melody:
            out["melody"] = self.conditions.melody(index, start, self.crop_frames)
        if self.has_clap:
            out["clap"] = self.conditions.clap(index, start / self.frame_rate)
        if self.has_melody:
            out["key"] = self.conditions.key(index)
            if self.rhythm_vocab:
                rhythm = self.conditions.rhythm(index, start, self.crop_frames, self.rhythm_vocab)
                out["rhythm_valid"] = rhythm is not None
                out["rhythm"] = rhythm if rhythm is not None else torch.zeros(self.crop_frames, dtype=torch.long)
        return out
