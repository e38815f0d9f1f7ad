"""Random fixed-length crops of audio files, for codec training.

Only the crop window is decoded (soundfile seeks), then resampled, channel-matched and
loudness-normalised on the fly, so hours of audio never sit in memory. Crops are drawn
from ``numpy.random.default_rng((seed, epoch, index))``: the same item is the same crop
in every worker and every run, and :meth:`AudioCropDataset.set_epoch` draws new ones.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..audio.io import AudioError, audio_info, is_silent, load_audio, match_channels, normalize_audio

logger = logging.getLogger(__name__)


class AudioCropDataset(Dataset):
    """Yields ``{"input_values": (channels, samples) float32, "padding_mask": (samples,) bool, "path": str}``.

    Args:
        paths: audio files (unreadable ones are skipped with a warning at construction).
        sampling_rate, channels: output format.
        segment_seconds: crop length; shorter files are zero-padded (``padding_mask`` False there).
        normalize: ``"loudness"`` (to ``target_lufs``), ``"peak"`` or ``None``.
        seed: base seed of the crop positions.
        crops_per_file: items per file per epoch on average (``len = len(files) * crops_per_file``).
        file_weights: each file's share of those items, relative (default: equal); files that
            fail to read give their share to the rest. Items of different files interleave, so
            the first few items already mix them.
        max_retries: draws before giving up on finding a non-silent crop; after half of them
            another random file is tried. If all are silent the last crop is returned as is.
        silence_threshold_db: crops with RMS below this (dBFS) count as silent.
    """

    def __init__(
        self,
        paths: Sequence,
        sampling_rate: int,
        channels: int = 1,
        segment_seconds: float = 1.0,
        normalize: str | None = "loudness",
        seed: int = 0,
        *,
        target_lufs: float = -20.0,
        crops_per_file: int = 1,
        file_weights: Sequence[float] | None = None,
        max_retries: int = 6,
        silence_threshold_db: float = -60.0,
    ):
        self.sampling_rate = int(sampling_rate)
        self.channels = int(channels)
        self.segment_samples = int(round(segment_seconds * sampling_rate))
        if self.segment_samples <= 0:
            raise ValueError(f"segment_seconds must be positive, got {segment_seconds}")
        self.normalize = normalize
        self.seed = int(seed)
        self.target_lufs = target_lufs
        self.crops_per_file = int(crops_per_file)
        self.max_retries = max(1, int(max_retries))
        self.silence_threshold_db = silence_threshold_db
        self.epoch = 0
        if file_weights is not None and len(file_weights) != len(paths):
            raise ValueError(f"file_weights has {len(file_weights)} entries for {len(paths)} paths")
        self.files: list[tuple] = []  # (path, frames, native sampling rate)
        weights = []
        for i, p in enumerate(paths):
            try:
                info = audio_info(p)
            except AudioError as e:
                logger.warning("skipping %s", e)
                continue
            if info.frames > 0:
                self.files.append((str(p), int(info.frames), int(info.samplerate)))
                weights.append(1.0 if file_weights is None else float(file_weights[i]))
        if not self.files:
            raise ValueError("AudioCropDataset: no readable audio files")
        self._item_files = None if file_weights is None else _interleaved_items(weights, len(self))

    def __len__(self) -> int:
        return len(self.files) * self.crops_per_file

    def set_epoch(self, epoch: int) -> None:
        """New crop positions per epoch (call before each epoch, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, object]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        file_index = index % len(self.files) if self._item_files is None else int(self._item_files[index])
        audio, valid, path = None, 0, self.files[file_index][0]
        for attempt in range(self.max_retries):
            if attempt and attempt >= self.max_retries // 2:
                file_index = int(rng.integers(len(self.files)))
            try:
                crop, n_valid = self._read_crop(file_index, rng)
            except AudioError as e:  # a file that broke after indexing: try elsewhere
                logger.warning("crop failed: %s", e)
                continue
            audio, valid, path = crop, n_valid, self.files[file_index][0]
            if not is_silent(audio[:, :valid], self.silence_threshold_db):
                # Gain from the real samples only, so zero padding does not make short files louder.
                audio[:, :valid] = normalize_audio(
                    audio[:, :valid], self.sampling_rate, self.normalize, target_lufs=self.target_lufs
                )
                break
        else:
            logger.warning(
                "no non-silent crop after %d tries (item %d); returning it unnormalised", self.max_retries, index
            )
            if audio is None:
                audio = np.zeros((self.channels, self.segment_samples), np.float32)
        mask = np.zeros(self.segment_samples, dtype=bool)
        mask[:valid] = True
        return {
            "input_values": torch.from_numpy(np.ascontiguousarray(audio)),
            "padding_mask": torch.from_numpy(mask),
            "path": path,
        }

    def _read_crop(self, file_index: int, rng: np.random.Generator):
        path, frames, sr = self.files[file_index]
        # Read the window in the file's own rate (+2 frames so resampling never falls short).
        need = math.ceil(self.segment_samples * sr / self.sampling_rate) + 2
        start = int(rng.integers(0, max(1, frames - need + 1)))
        audio, _ = load_audio(path, sampling_rate=self.sampling_rate, offset=start / sr, duration=need / sr)
        audio = match_channels(audio, self.channels)
        valid = min(audio.shape[-1], self.segment_samples)
        out = np.zeros((self.channels, self.segment_samples), np.float32)
        out[:, :valid] = audio[:, :valid]
        return out, valid


def _interleaved_items(weights: Sequence[float], total: int) -> np.ndarray:
    """The file of each of ``total`` items: counts proportional to ``weights`` (largest remainder),
    the k-th item of a file with n items placed at (k + 1/2) / n of the epoch."""
    w = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"file_weights must be finite, non-negative and not all zero, got {list(weights)}")
    share = w / w.sum() * total
    counts = np.floor(share).astype(int)
    counts[np.argsort(counts - share, kind="stable")[: total - counts.sum()]] += 1
    files = np.repeat(np.arange(len(w)), counts)
    position = np.concatenate([(np.arange(c) + 0.5) / c for c in counts if c])
    return files[np.lexsort((files, position))]


def collate_crops(batch: list[dict[str, object]]) -> dict[str, object]:
    """Stack items into ``input_values (batch, channels, samples)``, ``padding_mask (batch, samples)``, ``paths``."""
    return {
        "input_values": torch.stack([b["input_values"] for b in batch]),
        "padding_mask": torch.stack([b["padding_mask"] for b in batch]),
        "paths": [b["path"] for b in batch],
    }


def crop_dataset_from_manifest(manifest_paths, split: str | None = "train", balance: bool = True,
                               **kwargs) -> AudioCropDataset:
    """An :class:`AudioCropDataset` over the files of one split of one manifest or several.

    With several manifests and ``balance``, each manifest gives an equal share of the crops
    whatever its number of files (38 long game tracks beside 2,600 short renders, say);
    otherwise every file gives the same number."""
    from .manifest import read_manifest_records

    if isinstance(manifest_paths, (str, Path)):
        manifest_paths = [manifest_paths]
    groups = [[r["path"] for r in read_manifest_records(Path(m)) if split is None or r.get("split") == split]
              for m in manifest_paths]  # fmt: skip
    paths = [p for group in groups for p in group]
    weights = None
    if balance and len(groups) > 1:
        weights = [1.0 / len(group) for group in groups for _ in group]
    return AudioCropDataset(paths, file_weights=weights, **kwargs)
