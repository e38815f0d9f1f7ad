"""Deterministic train/validation splits by track, keeping near-duplicates together.

Game soundtracks ship variants of one piece (``frantic.ogg`` and ``frantic-old.ogg``,
``theme_enhanced.ogg``, intro/loop halves). If one variant lands in training and another
in validation, validation measures memorisation. Every file therefore maps to a *group
key* (its name stripped of variant markers) and groups are split by a stable hash of
that key: the same data gives the same split on any machine, in any order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import datasets

from ..audio.io import AUDIO_EXTENSIONS

TRAIN, VALIDATION, TEST = "train", "validation", "test"

# Variant markers stripped from the end of a name, repeatedly ("x_old_v2" -> "x").
_VARIANT = re.compile(
    r"""[\s._-]*(?:
        enhanced | old | new | remix(?:ed)? | remaster(?:ed)? | alt(?:ernate)? | edit
      | intro | loop | outro
      | v\d+(?:\.\d+)* | ver(?:sion)?[\s._-]*\d+(?:\.\d+)*
      | \(\s*(?:v?\d+|old|copy)\s*\) | copy
    )$""",
    re.IGNORECASE | re.VERBOSE,
)


def track_group_key(path) -> str:
    """Name shared by all variants of one track: ``music/Frantic-old.ogg`` -> ``frantic``.

    The folder is ignored on purpose: variants are sometimes stored in sibling folders
    (``music/old/``), and merging two unrelated tracks that share a name only costs a
    little balance, never leakage.
    """
    name = Path(str(path)).name
    while Path(name).suffix.lower() in AUDIO_EXTENSIONS:
        name = name[: -len(Path(name).suffix)]
    key = name.lower().strip()
    while True:
        stripped = _VARIANT.sub("", key)
        if stripped == key or not stripped:
            break
        key = stripped
    key = re.sub(r"[\s._-]+", "_", key).strip("_")
    return key or name.lower()


def split_score(key: str, seed: int = 0) -> float:
    """A uniform number in [0, 1) from a stable hash (Python's hash() is salted per process)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(key: str, validation_fraction: float = 0.1, seed: int = 0) -> str:
    return VALIDATION if split_score(key, seed) < validation_fraction else TRAIN


def split_groups(
    keys: Sequence[str],
    validation_fraction: float = 0.1,
    seed: int = 0,
    weights: Sequence[float] | None = None,
    method: str = "rank",
) -> list[str]:
    """Split name (``"train"``/``"validation"``) for each key; equal keys always share a split.

    ``method="rank"`` (default) orders the groups by their hash and moves them to validation
    until ``validation_fraction`` of the total weight (``weights``, e.g. durations; default
    one per item) is reached: exact proportions even on a 40-track set, and at least one
    group in each split when there are two or more. ``method="threshold"`` puts a group in
    validation iff its hash is below the fraction: a group's split then never depends on
    the rest of the set (stable as data is added), but small sets come out unbalanced.
    """
    if not 0 <= validation_fraction <= 1:
        raise ValueError(f"validation_fraction must be in [0, 1], got {validation_fraction}")
    weights = [1.0] * len(keys) if weights is None else [float(w) for w in weights]
    group_weight: dict[str, float] = {}
    for k, w in zip(keys, weights):
        group_weight[k] = group_weight.get(k, 0.0) + w
    order = sorted(group_weight, key=lambda k: (split_score(k, seed), k))
    if method == "threshold":
        validation = {k for k in order if split_score(k, seed) < validation_fraction}
    elif method == "rank":
        target = validation_fraction * sum(group_weight.values())
        validation, total = set(), 0.0
        for k in order:
            if total >= target or validation_fraction == 0:
                break
            validation.add(k)
            total += group_weight[k]
        if len(order) >= 2 and validation_fraction < 1 and len(validation) == len(order):
            validation.discard(order[-1])
    else:
        raise ValueError(f"method must be 'rank' or 'threshold', got {method!r}")
    return [VALIDATION if k in validation else TRAIN for k in keys]


def three_way_split(
    keys: Sequence[str], validation_fraction: float, test_fraction: float, seed: int = 0, weights=None
) -> list[str]:
    """``"train"``/``"validation"``/``"test"`` per key, equal keys together: two rank splits in a row."""
    weights = [1.0] * len(keys) if weights is None else [float(w) for w in weights]
    first = split_groups(keys, test_fraction, seed, weights)
    rest = [i for i, s in enumerate(first) if s == TRAIN]
    share = validation_fraction / max(1e-9, 1 - test_fraction)
    second = split_groups([keys[i] for i in rest], min(1.0, share), seed + 1, [weights[i] for i in rest])
    out = [TEST if s == VALIDATION else TRAIN for s in first]
    for i, s in zip(rest, second):
        out[i] = s
    return out


def split_paths(
    paths: Iterable, validation_fraction: float = 0.1, seed: int = 0, weights: Sequence[float] | None = None
) -> list[str]:
    """``"train"``/``"validation"`` for each path, grouped by :func:`track_group_key`."""
    return split_groups([track_group_key(p) for p in paths], validation_fraction, seed, weights)


def train_validation_split(
    dataset: datasets.Dataset, validation_fraction: float = 0.1, seed: int = 0, path_column: str = "path"
) -> datasets.DatasetDict:
    """Split a dataset of paths into a ``DatasetDict`` with ``train`` and ``validation``.

    Uses a ``split`` column if the dataset already has one (e.g. from a manifest).
    """
    if "split" in dataset.column_names:
        splits = dataset["split"]
    else:
        weights = dataset["duration"] if "duration" in dataset.column_names else None
        splits = split_paths(dataset[path_column], validation_fraction, seed, weights)
    return datasets.DatasetDict(
        {name: dataset.select([i for i, s in enumerate(splits) if s == name]) for name in (TRAIN, VALIDATION)}
    )
