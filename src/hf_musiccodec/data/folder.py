"""A folder of audio files as a ``datasets.Dataset`` of paths and metadata.

Only headers are read here (soundfile.info); audio is decoded later, by soundfile, where it
is used. datasets' ``Audio`` column is avoided on purpose: it decodes with PyTorch's video/audio decoding package,
which this project cannot install (see DESIGN.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import datasets

from ..audio.io import AUDIO_EXTENSIONS, AudioError, audio_info

logger = logging.getLogger(__name__)

AUDIO_FEATURES = datasets.Features(
    {
        "path": datasets.Value("string"),
        "duration": datasets.Value("float64"),
        "sampling_rate": datasets.Value("int32"),
        "channels": datasets.Value("int32"),
        "track_id": datasets.Value("string"),
    }
)


def scan_audio_files(root, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[Path]:
    """All files under ``root`` (recursively) whose extension is in ``extensions``, sorted."""
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        found.extend(Path(dirpath) / f for f in sorted(filenames) if Path(f).suffix.lower() in exts)
    return found


def track_id_for(path, root) -> str:
    """The path relative to ``root`` without extension, with forward slashes: stable across machines."""
    return Path(path).relative_to(root).with_suffix("").as_posix()


def audio_file_records(paths: Iterable, root=None, min_duration: float = 0.0) -> list[dict]:
    """One metadata record per readable file; unreadable, empty or too-short files are skipped with a warning."""
    records = []
    for path in paths:
        path = Path(path)
        try:
            info = audio_info(path)
        except AudioError as e:
            logger.warning("skipping %s", e)
            continue
        duration = info.frames / info.samplerate if info.samplerate else 0.0
        if info.frames <= 0 or duration < min_duration:
            logger.warning("skipping %s: %.2f s of audio (minimum %.2f s)", path, duration, min_duration)
            continue
        records.append(
            {
                "path": str(path.resolve()),
                "duration": float(duration),
                "sampling_rate": int(info.samplerate),
                "channels": int(info.channels),
                "track_id": track_id_for(path, root) if root is not None else path.stem,
            }
        )
    return records


def audio_folder_dataset(
    root, extensions: Sequence[str] = AUDIO_EXTENSIONS, *, min_duration: float = 0.0
) -> datasets.Dataset:
    """Columns: path (absolute), duration (s), sampling_rate, channels, track_id (relative path, no extension)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    records = audio_file_records(scan_audio_files(root, extensions), root=root, min_duration=min_duration)
    return records_to_dataset(records, AUDIO_FEATURES)


def records_to_dataset(records: list[dict], features: datasets.Features | None = None) -> datasets.Dataset:
    """``datasets.Dataset`` from row dicts; with ``features`` an empty list still has the columns."""
    if not records:
        if features is None:
            return datasets.Dataset.from_dict({})
        return datasets.Dataset.from_dict({k: [] for k in features}, features=features)
    columns = {k: [r[k] for r in records] for k in records[0]}
    if features is not None and set(features) == set(columns):
        return datasets.Dataset.from_dict(columns, features=features)
    return datasets.Dataset.from_dict(columns)
