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


def _line(record: dict, base: Path) -> str:
    r = dict(record)
    if "path" in r and Path(r["path"]).is_absolute():
        r["path"] = os.path.relpath(r["path"], base)
    return json.dumps(r, ensure_ascii=False) + "\n"


def write_manifest(records: Iterable[dict], manifest_path) -> Path:
    """Write records (with a ``path`` key) atomically; absolute paths become relative to the manifest."""
    manifest_path = Path(manifest_path)
    base = manifest_path.parent.resolve()
    base.mkdir(parents=True, exist_ok=True)
    tmp = manifest_path.with_name(f".{manifest_path.name}.tmp")
    with open(tmp, "w") as f:
        for record in records:
            f.write(_line(record, base))
    os.replace(tmp, manifest_path)
    return manifest_path


def append_manifest_records(records: Iterable[dict], manifest_path) -> Path:
    """Append records as whole lines, in one write, fsynced (for runs that may be killed).

    A line torn by an earlier crash (no final newline) is cut off first, so it never merges
    with the next record; readers skip nothing else.
    """
    manifest_path = Path(manifest_path)
    base = manifest_path.parent.resolve()
    base.mkdir(parents=True, exist_ok=True)
    data = "".join(_line(r, base) for r in records).encode()
    with open(manifest_path, "a+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size:
            f.seek(max(0, size - 65536))
            tail = f.read()
            if not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n")
                f.truncate(size - len(tail) + cut + 1 if cut >= 0 else 0)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return manifest_path


def read_manifest_records(manifest_path, absolute: bool = True) -> list[dict]:
    manifest_path = Path(manifest_path)
    base = manifest_path.parent.resolve()
    records = []
    with open(manifest_path) as f:
        for line in f:
            if not line.endswith("\n"):  # torn by a crash while appending: not a record yet
                break
            if line.strip():
                r = json.loads(line)
                if absolute:
                    r["path"] = str((base / r["path"]).resolve())
                records.append(r)
    return records


def read_manifest(manifest_path, absolute: bool = True) -> datasets.Dataset:
    """A manifest as a ``datasets.Dataset`` (paths resolved to absolute by default)."""
    return records_to_dataset(read_manifest_records(manifest_path, absolute=absolute))
