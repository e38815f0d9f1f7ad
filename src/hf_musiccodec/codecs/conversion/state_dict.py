"""Strict loading of converted state dicts with an error that says what did not fit."""

from __future__ import annotations

import re

import torch
from torch import nn


class CheckpointMismatchError(ValueError):
    """A checkpoint whose tensors do not fit the model built from its config."""


def rename_keys(state_dict: dict, rules: list[tuple[str, str]]) -> dict:
    """Apply regex substitutions (in order) to every key."""
    renamed = {}
    for key, value in state_dict.items():
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        renamed[key] = value
    return renamed


def load_strict(model: nn.Module, state_dict: dict, source: str) -> nn.Module:
    """Load every tensor or fail listing missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    # Weight-norm modules accept plain or parametrized weights (see ``weight_norm.py``); compare
    # on the names they will have once loaded.
    normalized = set()
    for key in state_dict:
        for old, new in ((".parametrizations.weight.original0", ".weight_g"),
                         (".parametrizations.weight.original1", ".weight_v")):
            key = key.replace(old, new)
        if key.endswith(".weight") and key[: -len("weight")] + "weight_g" in expected:
            normalized.update({key[: -len("weight")] + "weight_g", key[: -len("weight")] + "weight_v"})
        else:
            normalized.add(key)
    missing = sorted(set(expected) - normalized)
    unexpected = sorted(normalized - set(expected))
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"checkpoint {source} does not fit {type(model).__name__}: "
            f"{len(missing)} missing keys {_preview(missing)}, {len(unexpected)} unexpected keys {_preview(unexpected)}"
        )
    try:
        model.load_state_dict({k: torch.as_tensor(v) for k, v in state_dict.items()}, strict=True)
    except RuntimeError as error:  # shape mismatches
        raise CheckpointMismatchError(f"checkpoint {source} does not fit {type(model).__name__}: {error}") from None
    return model


def _preview(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}{', ...' if len(keys) > limit else ''}]"
