"""What the generation benchmarks under ``benchmarks/`` share: their command-line contract, their
data (a render folder or a saved ``DatasetDict``), and the process memory readings (Linux ``/proc``)
that their peak-memory columns use."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable


def run_benchmark(name: str, args, run: Callable, report: Callable[[dict], str],
                  to_json: Callable[[dict], object] = lambda result: result) -> int:
    """A benchmark script's ``main``: ``result = run(args)``, ``report(result)`` on stdout and, with
    ``args.json``, ``to_json(result)`` written there; returns the exit status.

    Bad input (a ``ValueError`` or ``OSError``: ``GeneratorError`` and the benchmarks' own errors are
    ValueErrors) is one line ``<name>: error: <first line>`` on stderr and exit status 2, no traceback.
    """
    try:
        result = run(args)
    except (ValueError, OSError) as e:
        message = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"{name}: error: {message}", file=sys.stderr)
        return 2
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(result), indent=2) + "\n")
    return 0


def load_caption_splits(data, splits=("train", "validation", "test"), columns=("path", "caption")):
    """The ``splits`` of ``--data``: a render folder (or its ``manifest.jsonl``, through
    ``music21_caption_dataset``) or a folder written by ``DatasetDict.save_to_disk``; each must exist,
    be non-empty and have ``columns``, else a one-line ``ValueError``."""
    import datasets

    data = Path(data)
    manifest = data if data.is_file() and data.suffix == ".jsonl" else data / "manifest.jsonl"
    if (data / "dataset_dict.json").is_file():
        loaded = datasets.load_from_disk(str(data))
    elif manifest.is_file():
        from hf_musiccodec.data.captioned import music21_caption_dataset  # only render folders need it

        loaded = music21_caption_dataset(manifest.parent, manifest_name=manifest.name)
    else:
        raise ValueError(f"--data {data}: neither a render folder with manifest.jsonl nor a saved DatasetDict")
    for split in splits:
        if split not in loaded or len(loaded[split]) == 0:
            raise ValueError(f"--data {data} has no {split} split (or it is empty)")
        missing = [c for c in columns if c not in loaded[split].column_names]
        if missing:
            raise ValueError(f"--data {data}: the {split} split lacks columns {missing}")
    return loaded


def held_out_clips(data, count: int, seconds: float, sampling_rate: int, seed: int) -> list[tuple[str, "np.ndarray"]]:
    """``(caption, mono audio)`` of ``count`` test-split rows of ``--data`` drawn with ``seed``, each
    the first ``seconds`` of its file at ``sampling_rate``."""
    import numpy as np

    from hf_musiccodec.audio.io import load_audio

    rows = load_caption_splits(data, ("test",))["test"]
    clips = []
    for i in np.random.default_rng(seed).permutation(len(rows))[:count]:
        row = rows[int(i)]
        audio, _ = load_audio(row["path"], sampling_rate=sampling_rate, channels=1, duration=seconds)
        clips.append((row["caption"], audio[0]))
    return clips


def process_memory_mb(field: str = "VmRSS") -> float:
    """This process's ``VmRSS`` (resident now) or ``VmHWM`` (peak resident) in MB; NaN off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def reset_peak_memory() -> None:
    """Reset ``VmHWM`` to the current resident size (Linux), so a later reading is the peak since now."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
