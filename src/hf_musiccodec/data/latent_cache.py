"""Step 2 of the pipeline: encode a dataset once per codec and cache its codes and latents.

Generators train for many epochs on the same audio; encoding it every step would cost more
than the generator. :func:`build_latent_cache` encodes every item of a dataset (rows with a
``path``, any metadata and a ``caption``) into

- ``codes``: (num_codebooks, frames) tokens, for the token LMs and VampNet,
- ``latents``: (hidden_size, frames) continuous encoder output before quantization, for
  latent diffusion, ControlNet and DITTO,

and writes them as safetensors shards (items concatenated along time, with frame offsets)
plus ``items.jsonl`` (one metadata row per item) and ``index.json``.

The cache is keyed by :func:`cache_key`: the codec's fingerprint (config + weights, see
:func:`hf_musiccodec.codecs.file_format.codec_fingerprint`), the encoding settings
(bandwidth, segmenting, dtype) and the list of items. Every shard carries the key in its
metadata. A shard with another key is re-encoded, never reused; an index with another key
means the whole cache is rebuilt.

Resumable and parallel: shard ``s`` belongs to process ``s % num_processes`` (Accelerate);
each shard is written atomically once finished, and a restarted run skips every shard
already on disk with the right key. The main process writes the index after all shards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..audio.io import load_audio
from ..codecs.file_format import codec_fingerprint, codec_name
from .manifest import read_manifest_records, write_manifest

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX_NAME, ITEMS_NAME, SHARD_DIR = "index.json", "items.jsonl", "shards"
LATENT_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


# --------------------------------------------------------------------------- encoding


def supports_latents(model) -> bool:
    """Whether the codec's encoder output is one latent sequence per signal (no per-chunk
    scales, no chunking: EnCodec 48 kHz has both, and only its codes are cached)."""
    return not (model.config.normalize or model.config.chunk_length)


def encode_codes_and_latents(model, input_values: torch.Tensor, bandwidth: float | None):
    """``(codes (B, K, T) or None, latents (B, D, T) or None)`` of a batch of equal-length signals.

    One encoder pass gives both: the codes are the quantizer's codes of the latents, which is
    exactly ``model.encode`` for codecs without input scaling or chunking.
    """
    num_quantizers = model.num_quantizers_for_bandwidth(bandwidth)
    if not supports_latents(model):
        return model.encode(input_values, bandwidth=bandwidth).audio_codes[0], None
    with torch.no_grad():
        # The codec interface (branch `model`) exposes encode_latents / latents_to_codes; until it
        # is merged, the same computation through the encoder and quantizer.
        if hasattr(model, "encode_latents"):
            latents = model.encode_latents(input_values)
            codes = model.latents_to_codes(latents, num_quantizers) if model.quantizer is not None else None
        else:
            latents = model.encoder(model._pad_to_hop(model._check_input(input_values)))
            codes = model.quantizer.encode(latents, num_quantizers) if model.quantizer is not None else None
    return codes, latents


# --------------------------------------------------------------------------- items and key


def dataset_items(rows: Sequence[dict], segment_seconds: float | None = None) -> list[dict]:
    """Rows -> cache items: whole files, or consecutive ``segment_seconds`` windows of each file
    (``offset``/``seconds`` columns; a window shorter than half a segment is dropped)."""
    items = []
    for row in rows:
        duration = float(row["duration"])
        if segment_seconds is None:
            items.append({**row, "offset": 0.0, "seconds": duration})
            continue
        for k in range(max(1, math.ceil(duration / segment_seconds))):
            seconds = min(segment_seconds, duration - k * segment_seconds)
            if seconds >= segment_seconds / 2:
                items.append({**row, "offset": k * segment_seconds, "seconds": round(seconds, 6)})
    return items


def cache_key(model, items: Sequence[dict], settings: dict) -> str:
    """Hex key of (codec fingerprint, settings, item list): any change gives another key."""
    h = hashlib.sha256(codec_fingerprint(model))
    h.update(json.dumps({**settings, "version": FORMAT_VERSION}, sort_keys=True).encode())
    for item in items:
        h.update(f"{Path(item['path']).resolve()}|{item['offset']}|{item['seconds']}\n".encode())
    return h.hexdigest()[:32]


def _shard_path(cache_dir: Path, shard: int) -> Path:
    return cache_dir / SHARD_DIR / f"shard-{shard:05d}.safetensors"


def _shard_key(path: Path) -> str | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("key")
    except Exception:  # a truncated or foreign file: treat as missing
        return None


def read_index(cache_dir) -> dict | None:
    path = Path(cache_dir) / INDEX_NAME
    return json.loads(path.read_text()) if path.exists() else None


# --------------------------------------------------------------------------- building


def build_latent_cache(
    model,
    rows: Sequence[dict],
    cache_dir,
    *,
    bandwidth: float | None = None,
    segment_seconds: float | None = None,
    shard_size: int = 32,
    batch_size: int = 8,
    latent_dtype: str = "float32",
    store_latents: bool = True,
    max_shards: int | None = None,
    normalize: str | None = None,
    accelerator=None,
    progress: bool = True,
) -> dict | None:
    """Encode ``rows`` (dicts with ``path`` and ``duration``; other columns are kept as metadata)
    into ``cache_dir``. Returns the index, or ``None`` when stopped early by ``max_shards``
    (shards this process may write in this call: for interrupted-run tests and time-boxed jobs).

    Items of equal length are batched together (so no padding changes their codes); audio is
    resampled to the codec's rate and channels and otherwise left as is (renders carry their
    dynamics in their level), unless ``normalize`` is ``"loudness"`` (each item to -20 LUFS) or
    ``"peak"``: a codec at a low bitrate may map quiet music to one token that a token LM then
    learns to repeat (the first text-to-music run did). ``accelerator``: an ``accelerate.Accelerator`` for several
    processes (default: a new one, which is a single process unless launched otherwise).
    """
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    if accelerator is None:
        from ..utils.launch import new_accelerator  # accelerate loads only when caching

        accelerator = new_accelerator()
    cache_dir = Path(cache_dir)
    store_latents = store_latents and supports_latents(model)
    if latent_dtype not in LATENT_DTYPES:
        raise ValueError(f"latent_dtype must be one of {sorted(LATENT_DTYPES)}, got {latent_dtype!r}")
    items = dataset_items(rows, segment_seconds)
    if not items:
        raise ValueError("no items to cache")
    num_quantizers = model.num_quantizers_for_bandwidth(bandwidth)
    settings = {
        "bandwidth": bandwidth,
        "num_quantizers": num_quantizers,
        "segment_seconds": segment_seconds,
        "latent_dtype": latent_dtype if store_latents else None,
        "sampling_rate": model.config.sampling_rate,
        "channels": model.config.audio_channels,
        "shard_size": shard_size,
        **({"normalize": normalize} if normalize else {}),  # absent when None: older caches keep their key
    }
    key = cache_key(model, items, settings)
    index = read_index(cache_dir)
    if index is not None and index.get("key") != key and accelerator.is_main_process:
        # Stale: another codec, other weights, settings or items. Never reuse any of it.
        logger.warning("latent cache %s was built for key %s, not %s: rebuilding", cache_dir, index.get("key"), key)
        (cache_dir / INDEX_NAME).unlink()
    model = model.to(accelerator.device).eval()
    num_shards = math.ceil(len(items) / shard_size)
    mine = [s for s in range(num_shards) if s % accelerator.num_processes == accelerator.process_index]
    todo = [s for s in mine if _shard_key(_shard_path(cache_dir, s)) != key]
    (cache_dir / SHARD_DIR).mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), unit="shard", disable=not progress,
               desc=f"encode [{accelerator.process_index}]", position=accelerator.process_index)  # fmt: skip
    written = 0
    for shard in todo:
        if max_shards is not None and written >= max_shards:
            break
        chunk = items[shard * shard_size : (shard + 1) * shard_size]
        tensors = _encode_shard(model, chunk, bandwidth, batch_size, accelerator.device, store_latents, normalize)
        if store_latents:
            tensors["latents"] = tensors["latents"].to(LATENT_DTYPES[latent_dtype])
        tmp = _shard_path(cache_dir, shard).with_suffix(f".tmp{os.getpid()}")
        save_file(tensors, str(tmp), metadata={"key": key, "shard": str(shard)})
        os.replace(tmp, _shard_path(cache_dir, shard))
        written += 1
        bar.update(1)
    bar.close()
    accelerator.wait_for_everyone()
    if any(_shard_key(_shard_path(cache_dir, s)) != key for s in range(num_shards)):
        return None
    index = {
        "key": key,
        "fingerprint": codec_fingerprint(model).hex(),
        "codec": codec_name(model),
        "settings": settings,
        "frame_rate": model.config.frame_rate,
        "num_items": len(items),
        "num_shards": num_shards,
        "has_codes": model.quantizer is not None,
        "has_latents": store_latents,
        "version": FORMAT_VERSION,
    }
    if accelerator.is_main_process:
        write_manifest(items, cache_dir / ITEMS_NAME)
        for extra in sorted((cache_dir / SHARD_DIR).glob("shard-*.safetensors")):
            if int(extra.stem.split("-")[1]) >= num_shards:  # left over from a larger stale cache
                extra.unlink()
        tmp = cache_dir / f".{INDEX_NAME}.tmp"
        tmp.write_text(json.dumps(index, indent=2))
        os.replace(tmp, cache_dir / INDEX_NAME)  # last: an index exists only for a complete cache
    accelerator.wait_for_everyone()
    return index


def _encode_shard(model, items, bandwidth, batch_size, device, store_latents, normalize=None) -> dict[str, torch.Tensor]:
    sr, channels = model.config.sampling_rate, model.config.audio_channels
    audio = [load_audio(it["path"], sampling_rate=sr, channels=channels, offset=it["offset"], duration=it["seconds"],
                        normalize=normalize)[0] for it in items]  # fmt: skip
    codes: list = [None] * len(items)
    latents: list = [None] * len(items)
    by_length: dict[int, list[int]] = {}
    for i, a in enumerate(audio):
        by_length.setdefault(a.shape[-1], []).append(i)
    for same in by_length.values():
        for start in range(0, len(same), batch_size):
            batch = same[start : start + batch_size]
            x = torch.from_numpy(np.stack([audio[i] for i in batch])).to(device)
            c, z = encode_codes_and_latents(model, x, bandwidth)
            for j, i in enumerate(batch):
                codes[i] = None if c is None else c[j].cpu()
                latents[i] = None if z is None else z[j].float().cpu()
    frames = [(c if c is not None else z).shape[-1] for c, z in zip(codes, latents)]
    out = {"offsets": torch.tensor(np.concatenate([[0], np.cumsum(frames)]), dtype=torch.int64)}
    if codes[0] is not None:
        dtype = torch.int16 if model.config.codebook_size <= 2**15 else torch.int32
        out["codes"] = torch.cat(codes, dim=-1).to(dtype).contiguous()
    if store_latents:
        out["latents"] = torch.cat(latents, dim=-1).contiguous()
    return out


# --------------------------------------------------------------------------- loading


class LatentCacheDataset(Dataset):
    """Items of a finished cache: ``{"codes": LongTensor (K, T), "latents": FloatTensor (D, T),
    **metadata}`` (``caption``, ``path``, ``offset``... as the source rows had them).

    ``model``: when given, the cache must have been made by this codec (same fingerprint),
    else a ``ValueError`` says to rebuild it. Reads slices lazily with safetensors.
    """

    def __init__(self, cache_dir, model=None):
        self.cache_dir = Path(cache_dir)
        self.index = read_index(self.cache_dir)
        if self.index is None:
            raise FileNotFoundError(f"{self.cache_dir}: no {INDEX_NAME} (the cache is missing or unfinished)")
        if model is not None and codec_fingerprint(model).hex() != self.index["fingerprint"]:
            raise ValueError(
                f"{self.cache_dir} was made by codec {self.index['codec']} ({self.index['fingerprint']}), not by "
                f"the given codec ({codec_fingerprint(model).hex()}): rebuild it with build_latent_cache"
            )
        self.items = read_manifest_records(self.cache_dir / ITEMS_NAME)
        self.shard_size = self.index["settings"]["shard_size"]
        self._open: tuple[int, object, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def _shard(self, shard: int):
        from safetensors import safe_open

        if self._open is None or self._open[0] != shard:
            f = safe_open(str(_shard_path(self.cache_dir, shard)), framework="pt")
            self._open = (shard, f, f.get_tensor("offsets"))
        return self._open[1], self._open[2]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        f, offsets = self._shard(index // self.shard_size)
        j = index % self.shard_size
        a, b = int(offsets[j]), int(offsets[j + 1])
        out = dict(self.items[index])
        if self.index["has_codes"]:
            out["codes"] = f.get_slice("codes")[:, a:b].long()
        if self.index["has_latents"]:
            out["latents"] = f.get_slice("latents")[:, a:b].float()
        return out

    def to_hf_dataset(self):
        """The whole cache as a ``datasets.Dataset`` (codes/latents as nested lists; torch format)."""
        import datasets

        rows = [self[i] for i in range(len(self))]
        columns = {k: [r[k].numpy() if torch.is_tensor(r[k]) else r[k] for r in rows] for k in rows[0]}
        ds = datasets.Dataset.from_dict(columns)
        tensors = [c for c in ("codes", "latents") if c in columns]
        return ds.with_format("torch", columns=tensors, output_all_columns=True)


def collate_latents(batch: list[dict], pad_code: int = 0) -> dict:
    """Batch cache items of different lengths: ``codes`` (B, K, T) padded with ``pad_code``,
    ``latents`` (B, D, T) padded with zeros, ``mask`` (B, T) true on real frames, and the
    metadata columns as lists under their own names."""
    frames = [(b["codes"] if "codes" in b else b["latents"]).shape[-1] for b in batch]
    length = max(frames)
    out: dict = {"mask": torch.arange(length)[None] < torch.tensor(frames)[:, None]}
    for name, fill in (("codes", pad_code), ("latents", 0.0)):
        if name in batch[0]:
            out[name] = torch.stack([_pad_frames(b[name], length, fill) for b in batch])
    for key in batch[0]:
        if key not in ("codes", "latents"):
            out[key] = [b[key] for b in batch]
    return out


def _pad_frames(x: torch.Tensor, length: int, value) -> torch.Tensor:
    return torch.nn.functional.pad(x, (0, length - x.shape[-1]), value=value)

