"""Crash-safe checkpoints for Accelerate runs: written to a temporary folder, then renamed.

A run killed at any moment (``kill -9`` included) leaves either a complete ``step_N`` folder or
an ignored ``.tmp`` one, and resumes from the newest complete checkpoint.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_STEP = re.compile(r"^step_(\d+)$")


class TrainState:
    """The loop's own counters, saved with Accelerate's state via ``register_for_checkpointing``:
    optimizer steps, and micro-batches drawn by each process (where the data resumes)."""

    def __init__(self):
        self.step = 0
        self.batches = 0

    def state_dict(self) -> dict:
        return {"step": self.step, "batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.batches = int(state.get("batches", self.step))  # older checkpoints: one batch per step


class CheckpointManager:
    def __init__(self, folder: str | os.PathLike, keep: int = 2):
        self.folder = Path(folder)
        self.keep = max(1, keep)

    def complete(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found = [(int(m[1]), p) for p in self.folder.iterdir() if (m := _STEP.match(p.name)) and p.is_dir()]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1] if done else None

    def save(self, accelerator, step: int) -> Path:
        final = self.folder / f"step_{step}"
        tmp = self.folder / f".step_{step}.tmp"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            for old in self.complete()[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()
        return final
