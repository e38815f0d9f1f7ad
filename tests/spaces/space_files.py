"""What the Spaces' tests share about a Space's files: its logic module and its README header and
requirements."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_space_module(space: Path, filename: str, name: str):
    """``space/filename`` imported as module ``name`` (registered in ``sys.modules``: dataclasses
    look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, space / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _requirement_name(line: str) -> str:
    return re.split(r"[<>=!~\[ ]", line.strip(), maxsplit=1)[0].lower()


def check_space_metadata_and_requirements(space: Path, gradio_version: str, extra_requirements=()) -> None:
    """The README starts with the Spaces YAML header for this gradio version, and requirements.txt
    lists the package's dependencies, its 'spaces' extra and ``extra_requirements``."""
    text = (space / "README.md").read_text()
    header = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert header, "README.md must start with the Spaces YAML header"
    fields = dict(line.split(": ", 1) for line in header.group(1).splitlines())
    assert fields["sdk"] == "gradio" and fields["app_file"] == "app.py" and fields["license"] == "apache-2.0"
    assert fields["sdk_version"] == gradio_version
    assert {"title", "emoji", "colorFrom", "colorTo", "short_description"} <= set(fields)
    assert len(fields["short_description"]) <= 60

    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_requirement_name(d) for d in project["dependencies"] + project["optional-dependencies"]["spaces"]}
    wanted |= set(extra_requirements)
    listed = {_requirement_name(line) for line in (space / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith(("#", "-"))}
    assert wanted <= listed, f"requirements.txt lacks {sorted(wanted - listed)}"


def tune(seconds: float, sr: int) -> "np.ndarray":
    """A test clip: a note every 0.25 s (onsets and beats to find) cycling through 5 semitones, decaying."""
    import numpy as np

    t = np.arange(int(seconds * sr)) / sr
    freqs = 220.0 * 2 ** (np.floor(t * 4) % 5 / 12)
    return (0.3 * np.sin(2 * np.pi * np.cumsum(freqs) / sr) * np.exp(-3 * (t % 0.25))).astype(np.float32)
