"""Step 2c: Music ControlNet's controls of every item of a latent cache, extracted once.

:func:`build_control_cache` runs :func:`~hf_musiccodec.pipelines.controlnet.controls.extract_controls`
(the same function the pipeline applies to a user's reference, so training and inference see the
same controls) on every item at the cache's frame rate and writes ``<cache_dir>/controls.safetensors``
(atomically): ``melody`` int8 (-1 silent), ``dynamics`` float16 dB, ``rhythm`` float16
``(2, total_frames)``, items concatenated, ``offsets`` ``(N+1,)``. The file carries the latent cache's
key: a rebuilt cache makes it stale and :class:`ControlCache` refuses it; a rerun with the same key
does nothing.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..audio.io import load_audio
from .condition_cache import _item_frames, _read_metadata
from .latent_cache import ITEMS_NAME, read_index
from .manifest import read_manifest_records

logger = logging.getLogger(__name__)

__all__ = ["CONTROLS_NAME", "build_control_cache", "ControlCache"]

CONTROLS_NAME = "controls.safetensors"
FORMAT_VERSION = 1


def build_control_cache(cache_dir, progress: bool = True) -> dict:
    """Write ``<cache_dir>/controls.safetensors`` and return its metadata."""
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from ..pipelines.controlnet.controls import extract_controls

    cache_dir = Path(cache_dir)
    index = read_index(cache_dir)
    if index is None:
        raise ValueError(f"{cache_dir}: no index.json (not a finished latent cache)")
    metadata = {"key": index["key"], "frame_rate": str(float(index["frame_rate"])), "version": str(FORMAT_VERSION)}
    path = cache_dir / CONTROLS_NAME
    existing = _read_metadata(path) if path.exists() else None
    if existing is not None and all(existing.get(k) == v for k, v in metadata.items()):
        return existing
    items = read_manifest_records(cache_dir / ITEMS_NAME)
    frames = _item_frames(cache_dir, index)
    sr, frame_rate = int(index["settings"]["sampling_rate"]), float(index["frame_rate"])
    melody, dynamics, rhythm = [], [], []
    started = time.perf_counter()
    for item, num_frames in tqdm(list(zip(items, frames)), unit="item", desc="controls", disable=not progress):
        audio = load_audio(item["path"], sampling_rate=sr, channels=1, offset=item["offset"],
                           duration=item["seconds"])[0][0]  # fmt: skip
        controls = extract_controls(audio, sr, frame_rate, num_frames)
        melody.append(controls.melody.astype(np.int8))
        dynamics.append(controls.dynamics)
        rhythm.append(controls.rhythm)
    logger.info("controls: %d items in %.1f s", len(items), time.perf_counter() - started)
    tensors = {
        "melody": torch.from_numpy(np.concatenate(melody)),
        "dynamics": torch.from_numpy(np.concatenate(dynamics)).to(torch.float16),
        "rhythm": torch.from_numpy(np.concatenate(rhythm, axis=1)).to(torch.float16).contiguous(),
        "offsets": torch.tensor(np.concatenate([[0], np.cumsum(frames)]), dtype=torch.int64),
    }
    tmp = path.with_name(f".{CONTROLS_NAME}.tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return metadata


class ControlCache:
    """The controls of a latent cache, in memory; a one-line ``ValueError`` when missing or stale."""

    def __init__(self, cache_dir):
        from safetensors.torch import load_file

        cache_dir = Path(cache_dir)
        path = cache_dir / CONTROLS_NAME
        if not path.exists():
            raise ValueError(f"{path} is missing: run scripts/cache_controls.py --cache {cache_dir}")
        index = read_index(cache_dir)
        metadata = _read_metadata(path) or {}
        if index is None or metadata.get("key") != index.get("key"):
            raise ValueError(f"{path} is stale (made for another version of the latent cache): rebuild it")
        tensors = load_file(str(path))
        self.frame_rate = float(metadata["frame_rate"])
        self._melody, self._dynamics, self._rhythm = tensors["melody"], tensors["dynamics"], tensors["rhythm"]
        self._offsets = tensors["offsets"].tolist()

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def crop(self, item: int, start: int, frames: int) -> dict[str, np.ndarray]:
        """``melody`` ``(frames,)``, ``dynamics`` ``(frames,)``, ``rhythm`` ``(2, frames)`` of frames
        ``start...`` of ``item`` (past its end: melody -1, the last level, no beats)."""
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range (0-{len(self) - 1})")
        a, b = self._offsets[item], self._offsets[item + 1]
        lo, hi = a + start, min(a + start + frames, b)
        n = max(hi - lo, 0)
        melody = np.full(frames, -1, np.int64)
        dynamics = np.full(frames, float(self._dynamics[max(min(hi, b) - 1, a)]), np.float32)
        rhythm = np.zeros((2, frames), np.float32)
        melody[:n] = self._melody[lo:hi].numpy()
        dynamics[:n] = self._dynamics[lo:hi].float().numpy()
        rhythm[:, :n] = self._rhythm[:, lo:hi].float().numpy()
        return {"melody": melody, "dynamics": dynamics, "rhythm": rhythm}
