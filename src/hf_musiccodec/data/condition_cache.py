"""Step 2b of the pipeline: per-item melody and CLAP conditions next to a latent cache.

A text-to-music LM trained on a latent cache can also be conditioned on a melody (Music
ControlNet's chroma argmax), on a CLAP audio embedding (to train with audio prompts, or to
mix audio and text embeddings), on the beats and on the key. They come from the audio and the
metadata, which the LM training never reads: :func:`build_condition_cache` computes them once
for every item of the cache and writes one small file, ``<cache_dir>/conditions.safetensors``:

- ``melody`` (total_frames,) uint8: one token per codec frame (:func:`melody_tokens`: pitch
  class 0-11, or :data:`MELODY_SILENT`), items concatenated, ``melody_offsets`` (N+1,);
- ``clap`` (total_windows, D) float16: L2-normalised audio embeddings of ``clip_seconds``
  windows every ``clap_hop_seconds`` (a crop of the codes can pick the window nearest its
  start), ``clap_offsets`` (N+1,);
- ``beats`` (total_beats,) float32: beat positions in codec frames, from librosa's tracker at the
  item's tempo when the metadata states it exactly (renders) and estimating it otherwise,
  ``beat_offsets`` (N+1,) (an item with fewer than two beats has none);
- ``key`` (N,) int16: ``musical_attributes.key_index`` of the item's exact key, -1 when unknown
  or only estimated.

The file carries the latent cache's key: a cache rebuilt for other items or another codec makes
it stale, and :class:`ConditionCache` refuses it. A rerun with the same key, CLAP model and
settings does nothing. Everything fits in memory (bytes per frame), so the reader loads it all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..audio.io import load_audio
from ..conditioning.musical_attributes import beat_phase_tokens, key_index
from ..metrics.beats import detect_beats
from ..metrics.melody_dynamics import melody_chroma
from .latent_cache import ITEMS_NAME, _shard_path, read_index
from .manifest import read_manifest_records

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: beats and key
CONDITIONS_NAME = "conditions.safetensors"
MELODY_SILENT = 12  # token for frames without a pitched sound
MELODY_VOCAB = 13
SILENCE_DBFS = -50.0  # a frame whose RMS is below this is silent
_CHROMA_HOP = 256  # melody_chroma's default hop (samples)


# --------------------------------------------------------------------------- melody


def melody_tokens(audio, sr: int, frame_rate: float, num_frames: int) -> np.ndarray:
    """uint8 ``(num_frames,)``: argmax pitch class (0 = C ... 11 = B) of :func:`melody_chroma` per
    codec frame, :data:`MELODY_SILENT` where the frame's RMS is below -50 dBFS or its chroma is
    all ~0 (and for frames past the end of the audio).

    Codec frame ``i`` covers ``[i, i + 1) / frame_rate`` seconds; it takes the chroma frame
    nearest to its centre (chroma frames are centred, ``hop`` samples apart).
    """
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim == 2:  # (channels, samples): the melody of the mix
        y = y.mean(0)
    if y.ndim != 1:
        raise ValueError(f"audio must be (samples,) or (channels, samples), got shape {np.shape(audio)}")
    out = np.full(num_frames, MELODY_SILENT, dtype=np.uint8)
    if num_frames <= 0 or y.size == 0:
        return out
    chroma = melody_chroma(y, sr, hop_length=_CHROMA_HOP)
    i = np.arange(num_frames)
    centres = (i + 0.5) / frame_rate
    j = np.clip(np.rint(centres * sr / _CHROMA_HOP).astype(np.int64), 0, chroma.shape[1] - 1)
    pitch = chroma.argmax(axis=0)[j]
    pitched = chroma.max(axis=0)[j] > 1e-6
    # RMS of each frame's samples (frames past the end have none: silent).
    bounds = np.minimum(np.rint(np.arange(num_frames + 1) * sr / frame_rate).astype(np.int64), y.size)
    energy = np.concatenate([[0.0], np.cumsum(y.astype(np.float64) ** 2)])
    count = np.diff(bounds)
    mean_square = np.where(count > 0, (energy[bounds[1:]] - energy[bounds[:-1]]) / np.maximum(count, 1), 0.0)
    loud = mean_square > 10 ** (SILENCE_DBFS / 10)
    keep = pitched & loud
    out[keep] = pitch[keep]
    return out


def item_beats(item: dict, audio, sr: int) -> np.ndarray:
    """Beat times (s) of an item's audio: at its stated tempo unless that is an estimate; none for
    an item shorter than the tracker's 1 s."""
    if len(audio) < sr:
        return np.zeros(0)
    bpm = item.get("tempo_bpm") if not item.get("tempo_estimated") else None
    return detect_beats(audio, sr, bpm=bpm, trim=False)  # beats to the edges: crops start anywhere


def item_key(item: dict) -> int:
    """The item's exact key as an index (0-23), -1 when unknown or estimated."""
    if not item.get("key") or item.get("key_estimated"):
        return -1
    try:
        return key_index(item["key"])
    except ValueError:
        return -1


# --------------------------------------------------------------------------- CLAP


def clap_fingerprint(model) -> str:
    """Hex SHA-256 (32 digits) of a CLAP model's config and weights; ``"none"`` without a model."""
    if model is None:
        return "none"
    skip = ("_name_or_path", "transformers_version", "architectures", "dtype", "torch_dtype")  # not the model
    config = {k: v for k, v in model.config.to_dict().items() if k not in skip}
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def clap_window_starts(seconds: float, hop: float) -> list[float]:
    """Starts 0, hop, 2 hop, ... while start < seconds (1 ms slack for rounded lengths); at least one."""
    count = max(1, math.ceil((seconds - 1e-3) / hop))
    return [k * hop for k in range(count)]


@torch.no_grad()
def clap_window_embeddings(model, feature_extractor, audio: np.ndarray, sr: int, starts, clip_seconds: float):
    """``(len(starts), D)`` float32: one ``get_audio_features`` call on all windows of one clip
    (mono ``audio``); a window cut short by the end is padded by the processor (masked)."""
    n = int(round(clip_seconds * sr))
    windows = []
    for s in starts:
        a = int(round(s * sr))
        w = audio[a : a + n]
        windows.append(w if w.size else np.zeros(1, dtype=np.float32))  # a start right at the end
    features = feature_extractor(windows, sampling_rate=sr, return_tensors="pt")
    param = next(iter(model.parameters()))
    features = {k: v.to(param.device, param.dtype if v.is_floating_point() else v.dtype) for k, v in features.items()}
    out = model.get_audio_features(**features)
    return getattr(out, "pooler_output", out).float().cpu()


# --------------------------------------------------------------------------- building


def _item_frames(cache_dir: Path, index: dict) -> list[int]:
    """Code frames of every item, from the shards' offsets (no codes are read)."""
    from safetensors import safe_open

    frames = []
    for shard in range(index["num_shards"]):
        with safe_open(str(_shard_path(cache_dir, shard)), framework="pt") as f:
            frames.extend(np.diff(f.get_tensor("offsets").numpy()).tolist())
    if len(frames) != index["num_items"]:
        raise ValueError(f"{cache_dir}: shards hold {len(frames)} items, index says {index['num_items']}")
    return frames


def _read_metadata(path: Path) -> dict | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # truncated or foreign: rebuild
        return None


def build_condition_cache(cache_dir, clap_model=None, clap_processor=None, *, clap_hop_seconds: float = 5.0,
                          progress: bool = True) -> dict:  # fmt: skip
    """Write ``<cache_dir>/conditions.safetensors`` (atomically) and return its metadata.

    ``clap_model``: a ``MusicClapModel`` (or any CLAP-style model with ``get_audio_features`` and
    ``config.clip_seconds``) with its processor or feature extractor; without one only the melody
    is cached. An existing file with the same cache key, CLAP fingerprint and settings is kept.
    """
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    cache_dir = Path(cache_dir)
    index = read_index(cache_dir)
    if index is None:
        raise ValueError(f"{cache_dir}: no index.json (not a finished latent cache)")
    if clap_hop_seconds <= 0:
        raise ValueError(f"clap_hop_seconds must be positive, got {clap_hop_seconds}")
    feature_extractor = None
    if clap_model is not None:
        if clap_processor is None:
            raise ValueError("a CLAP model needs its processor (or feature extractor)")
        from ..metrics.embeddings import ClapAudioEmbedding

        feature_extractor = ClapAudioEmbedding(clap_model, clap_processor).feature_extractor  # checks the pair
    clip_seconds = float(clap_model.config.clip_seconds) if clap_model is not None else None
    metadata = {
        "key": index["key"],
        "frame_rate": str(float(index["frame_rate"])),
        "clap_hop_seconds": str(float(clap_hop_seconds)) if clap_model is not None else "none",
        "clap_seconds": str(clip_seconds) if clap_model is not None else "none",
        "clap_fingerprint": clap_fingerprint(clap_model),
        "version": str(FORMAT_VERSION),
    }
    path = cache_dir / CONDITIONS_NAME
    existing = _read_metadata(path) if path.exists() else None
    if existing is not None and all(existing.get(k) == v for k, v in metadata.items()):
        return existing

    items = read_manifest_records(cache_dir / ITEMS_NAME)
    frames = _item_frames(cache_dir, index)
    sr, frame_rate = int(index["settings"]["sampling_rate"]), float(index["frame_rate"])
    melody, clap, windows, beats, keys = [], [], [], [], []
    started = time.perf_counter()
    bar = tqdm(items, unit="item", desc="conditions", disable=not progress)
    for n, (item, num_frames) in enumerate(zip(items, frames)):
        audio = load_audio(item["path"], sampling_rate=sr, channels=1, offset=item["offset"],
                           duration=item["seconds"])[0][0]  # fmt: skip
        melody.append(melody_tokens(audio, sr, frame_rate, num_frames))
        beats.append(item_beats(item, audio, sr) * frame_rate)
        keys.append(item_key(item))
        if clap_model is not None:
            starts = clap_window_starts(float(item["seconds"]), clap_hop_seconds)
            clap.append(clap_window_embeddings(clap_model, feature_extractor, audio, sr, starts, clip_seconds))
            windows.append(len(starts))
        bar.update(1)
        if n + 1 == min(20, len(items)):  # an early estimate, for the log of a long run
            rate = (n + 1) / (time.perf_counter() - started)
            logger.info("conditions: %.2f items/s, about %.1f min for %d items", rate, len(items) / rate / 60,
                        len(items))  # fmt: skip
    bar.close()
    seconds = time.perf_counter() - started
    logger.info("conditions: %d items in %.1f s (%.2f items/s)", len(items), seconds, len(items) / max(seconds, 1e-9))

    tensors = {
        "melody": torch.from_numpy(np.concatenate(melody)),
        "melody_offsets": torch.tensor(np.concatenate([[0], np.cumsum(frames)]), dtype=torch.int64),
        "beats": torch.from_numpy(np.concatenate(beats).astype(np.float32)),
        "beat_offsets": torch.tensor(np.concatenate([[0], np.cumsum([len(b) for b in beats])]), dtype=torch.int64),
        "key": torch.tensor(keys, dtype=torch.int16),
    }
    if clap_model is not None:
        tensors["clap"] = torch.cat(clap).to(torch.float16).contiguous()
        tensors["clap_offsets"] = torch.tensor(np.concatenate([[0], np.cumsum(windows)]), dtype=torch.int64)
    tmp = path.with_name(f".{CONDITIONS_NAME}.tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return metadata


# --------------------------------------------------------------------------- reading


class ConditionCache:
    """The conditions of a latent cache, in memory.

    Raises a one-line ``ValueError`` when ``conditions.safetensors`` is missing or was made for
    another version of the latent cache (its key differs from ``index.json``'s).
    """

    def __init__(self, cache_dir):
        from safetensors.torch import load_file

        self.cache_dir = Path(cache_dir)
        path = self.cache_dir / CONDITIONS_NAME
        if not path.exists():
            raise ValueError(f"{path} is missing: run scripts/cache_conditions.py --cache {self.cache_dir}")
        index = read_index(self.cache_dir)
        self.metadata = _read_metadata(path) or {}
        if index is None or self.metadata.get("key") != index.get("key"):
            raise ValueError(f"{path} is stale (made for latent cache key {self.metadata.get('key')}, the cache has "
                             f"{None if index is None else index.get('key')}): rebuild it with cache_conditions.py")
        tensors = load_file(str(path))
        self.frame_rate = float(self.metadata["frame_rate"])
        self._melody, self._melody_offsets = tensors["melody"], tensors["melody_offsets"].tolist()
        self._beats, self._beat_offsets = tensors["beats"].double().numpy(), tensors["beat_offsets"].tolist()
        self._keys = tensors["key"].tolist()
        self.has_clap = "clap" in tensors
        self._clap = tensors.get("clap")
        self._clap_offsets = tensors["clap_offsets"].tolist() if self.has_clap else None
        self.clap_dim = int(self._clap.shape[1]) if self.has_clap else None
        self.clap_hop_seconds = float(self.metadata["clap_hop_seconds"]) if self.has_clap else None
        self.clap_seconds = float(self.metadata["clap_seconds"]) if self.has_clap else None

    def __len__(self) -> int:
        return len(self._melody_offsets) - 1

    def _check(self, item: int) -> None:
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range (0-{len(self) - 1})")

    def num_frames(self, item: int) -> int:
        self._check(item)
        return self._melody_offsets[item + 1] - self._melody_offsets[item]

    def melody(self, item: int, start_frame: int, num_frames: int) -> torch.LongTensor:
        """``(num_frames,)`` tokens of frames ``start_frame...``; :data:`MELODY_SILENT` outside the item."""
        self._check(item)
        a, b = self._melody_offsets[item], self._melody_offsets[item + 1]
        out = torch.full((num_frames,), MELODY_SILENT, dtype=torch.long)
        lo, hi = max(start_frame, 0), min(start_frame + num_frames, b - a)
        if hi > lo:
            out[lo - start_frame : hi - start_frame] = self._melody[a + lo : a + hi].long()
        return out

    def beats(self, item: int) -> np.ndarray:
        """The item's beat positions in codec frames (float64; empty for an item without beats)."""
        self._check(item)
        return self._beats[self._beat_offsets[item] : self._beat_offsets[item + 1]]

    def rhythm(self, item: int, start_frame: int, num_frames: int, vocab: int) -> torch.LongTensor | None:
        """``(num_frames,)`` beat-phase tokens (``beat_phase_tokens``) of frames ``start_frame...``;
        None for an item without beats."""
        beats = self.beats(item)
        if beats.size < 2:
            return None
        return torch.from_numpy(beat_phase_tokens(beats, start_frame, num_frames, vocab))

    def key(self, item: int) -> int:
        """The item's key index (0-23), -1 when unknown."""
        self._check(item)
        return int(self._keys[item])

    def clap(self, item: int, start_seconds: float) -> torch.FloatTensor:
        """``(D,)`` embedding of the item's window whose start is nearest ``start_seconds``."""
        if not self.has_clap:
            raise ValueError(f"{self.cache_dir / CONDITIONS_NAME} has no CLAP embeddings (built without --clap)")
        self._check(item)
        a, b = self._clap_offsets[item], self._clap_offsets[item + 1]
        k = min(max(int(round(start_seconds / self.clap_hop_seconds)), 0), b - a - 1)
        return self._clap[a + k].float()
