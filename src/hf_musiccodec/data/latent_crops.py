"""Training examples for latent diffusion: random crops of a latent cache's continuous latents, with
their CLAP audio embedding and, optionally, MusicLDM's beat-synchronous mixup (:mod:`.beat_mixup`)
or the crop's Music ControlNet controls (:mod:`.control_cache`).

Every example is a ``crop_frames`` window of one cached item's latents ``(hidden, crop_frames)``,
drawn afresh each epoch from ``(seed, epoch, index)`` (a resumed run sees the same crops and the
same mixes), with the CLAP embedding of the condition cache's window nearest the crop. With
``mixup``, a share ``mixup_prob`` of the examples is mixed with a crop of another item of the same
tempo, aligned on a beat: ``"blm"`` mixes the cached latents, ``"bam"`` mixes the waveforms (read
from the items' files) and encodes the mixture with ``codec``. Latents are held in memory as
float16 (8 h of 75 Hz x 64-dimensional latents: 280 MB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .beat_mixup import MIXUP_KINDS, aligned_partner_start, item_tempo, mix_embeddings, tempo_partners
from .latent_cache import LatentCacheDataset

__all__ = ["LatentCrops"]


class LatentCrops(Dataset):
    """Args:
    cache_dir: a finished latent cache with latents, and its condition cache (CLAP, beats).
    crop_frames: frames per example.
    random_crops: False gives each item's first window, never mixed (validation).
    mixup: None, ``"blm"`` (latents) or ``"bam"`` (waveforms; needs ``codec``).
    mixup_prob: share of examples mixed (when a tempo partner exists).
    mixup_alpha: ``lambda ~ Beta(alpha, alpha)``.
    tempo_tolerance: partners' tempi differ by at most this share.
    codec: the cache's codec, to encode BAM's mixtures.
    controls: also give each crop's Music ControlNet controls (``controls.safetensors``; no mixup).
    """

    def __init__(self, cache_dir, crop_frames: int, seed: int = 0, random_crops: bool = True, mixup: str | None = None,
                 mixup_prob: float = 0.5, mixup_alpha: float = 5.0, tempo_tolerance: float = 0.05, codec=None,
                 controls: bool = False):
        from .condition_cache import ConditionCache

        cache = LatentCacheDataset(cache_dir)
        if not cache.index.get("has_latents"):
            raise ValueError(f"{cache_dir}: the cache has no latents (built with --no-latents, or by a codec "
                             f"whose latents are chunked)")
        if mixup not in (None, *MIXUP_KINDS):
            raise ValueError(f"mixup must be None, 'blm' or 'bam', got {mixup!r}")
        if mixup == "bam" and codec is None:
            raise ValueError("BAM (waveform mixup) encodes each mixture: pass the cache's codec")
        if not (Path(cache_dir) / "conditions.safetensors").is_file():
            raise ValueError(f"{cache_dir} has no conditions.safetensors: run scripts/cache_conditions.py --clap ...")
        self.conditions = ConditionCache(cache_dir)
        if not self.conditions.has_clap:
            raise ValueError(f"{cache_dir}: the condition cache has no CLAP embeddings (built without --clap)")
        self.frame_rate = float(cache.index["frame_rate"])
        self.items = cache.items
        self.latents = [cache[i]["latents"].to(torch.float16) for i in range(len(cache))]
        self.crop_frames, self.seed, self.epoch, self.random_crops = int(crop_frames), int(seed), 0, random_crops
        self.mixup, self.mixup_prob, self.mixup_alpha, self.codec = mixup, float(mixup_prob), float(mixup_alpha), codec
        tempos = [item_tempo(self.conditions.beats(i), self.frame_rate) for i in range(len(self.latents))]
        self.partners = tempo_partners(tempos, tempo_tolerance)
        if controls and mixup:
            raise ValueError("controls and mixup do not combine: a mixture has no single melody or rhythm")
        self.controls = None
        if controls:
            from .control_cache import ControlCache

            self.controls = ControlCache(cache_dir)

    @property
    def hidden_size(self) -> int:
        return int(self.latents[0].shape[0])

    @property
    def clap_dim(self) -> int:
        return int(self.conditions.clap_dim)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.latents)

    def _crop(self, index: int, start: int) -> tuple[torch.Tensor, int]:
        """``(hidden, crop_frames)`` float32 from ``start``, the last frame repeated past the item's end."""
        z = self.latents[index][:, start : start + self.crop_frames].float()
        real = z.shape[-1]
        if real < self.crop_frames:
            z = torch.cat([z, z[:, -1:].expand(-1, self.crop_frames - real)], dim=-1)
        return z, real

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        frames = self.latents[index].shape[-1]
        start = int(rng.integers(0, max(frames - self.crop_frames, 0) + 1)) if self.random_crops else 0
        latents, real = self._crop(index, start)
        clap = self.conditions.clap(index, start / self.frame_rate)
        out = {"latents": latents, "frames": real, "clap": clap, "mixed": False}
        if self.controls is not None:
            out.update({k: torch.from_numpy(v) for k, v in self.controls.crop(index, start, self.crop_frames).items()})
        if self.mixup and self.random_crops and real == self.crop_frames and self.partners[index].size \
                and rng.random() < self.mixup_prob:
            partner = int(self.partners[index][rng.integers(self.partners[index].size)])
            partner_start = aligned_partner_start(self.conditions.beats(index), start, self.conditions.beats(partner),
                                                  self.latents[partner].shape[-1], self.crop_frames, rng)
            if partner_start is not None:
                lam = float(rng.beta(self.mixup_alpha, self.mixup_alpha))
                if self.mixup == "blm":
                    out["latents"] = lam * latents + (1 - lam) * self._crop(partner, partner_start)[0]
                else:
                    out["latents"] = self._mixed_audio_latents(index, start, partner, partner_start, lam)
                out["clap"] = mix_embeddings(clap, self.conditions.clap(partner, partner_start / self.frame_rate), lam)
                out["mixed"] = True
        return out

    @torch.no_grad()
    def _mixed_audio_latents(self, a: int, start_a: int, b: int, start_b: int, lam: float) -> torch.Tensor:
        """BAM: the codec's latents of ``lam * crop_a + (1 - lam) * crop_b``, mixed as waveforms."""
        from ..audio.io import load_audio

        cfg = self.codec.config
        samples = self.crop_frames * cfg.hop_length
        clips = []
        for item, start in ((self.items[a], start_a), (self.items[b], start_b)):
            x, _ = load_audio(item["path"], sampling_rate=cfg.sampling_rate, channels=cfg.audio_channels,
                              offset=float(item.get("offset") or 0.0) + start / self.frame_rate,
                              duration=samples / cfg.sampling_rate)
            clips.append(np.pad(x[:, :samples], ((0, 0), (0, max(samples - x.shape[-1], 0)))))
        mixture = torch.from_numpy(lam * clips[0] + (1 - lam) * clips[1]).float()[None]
        z = self.codec.encode_latents(mixture.to(self.codec.device, self.codec.dtype))[0].float().cpu()
        return z[:, : self.crop_frames]
