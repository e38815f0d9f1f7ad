"""JSON-lines manifests: one record per audio file, paths relative to the manifest's folder.

Relative paths keep a manifest valid when the data folder is moved or copied to another machine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import datasets

from .folder import records_to_dataset


def write_manifest(records: Iterable[dict], manifest_path) -> Path:
    """Write records (with a ``path`` key) atomically; absolute paths become relative to the manifest."""
    manifest_path = Path(manifest_path)
    base = manifest_path.parent.resolve()
    base.mkdir(parents=True, exist_ok=True)
    tmp = manifest_path.with_name(f".{manifest_path.name}.tmp")
    with open(tmp, "w") as f:
        for record in records:
            r = dict(record)
            p = Path(r["path"])
            if p.is_absolute():
                r["path"] = os.path.relpath(p, base)
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, manifest_path)
    return manifest_path


def read_manifest_records(manifest_path, absolute: bool = True) -> list[dict]:
    manifest_path = Path(manifest_path)
    base = manifest_path.parent.resolve()
    records = []
    with open(manifest_path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if absolute:
                    r["path"] = str((base / r["path"]).resolve())
                records.append(r)
    return records


def read_manifest(manifest_path, absolute: bool = True) -> datasets.Dataset:
    """A manifest as a ``datasets.Dataset`` (paths resolved to absolute by default)."""
    return records_to_dataset(read_manifest_records(manifest_path, absolute=absolute))
