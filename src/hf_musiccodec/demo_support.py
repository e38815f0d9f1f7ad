"""What the Gradio Spaces under ``spaces/`` share: settings from the environment, per-request output
folders, user-facing upload messages, log-mel pictures and the server launch.

Importing this module does not import gradio (an optional dependency, the ``spaces`` extra): only
:func:`launch` uses it, through the page it is given.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

SPECTROGRAM_MELS = 80
OUTPUT_MAX_AGE_S = 3600.0  # per-request output folders older than this are removed


def quiet_offline_environment() -> None:
    """No analytics, no telemetry, no downloads at run time (set before gradio and the hub load)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def seconds_from_env(name: str, default: float) -> float:
    """``$name`` as a positive, finite number of seconds, or ``default`` when unset or blank."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of seconds") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name}={raw!r} must be a positive number of seconds")
    return value


def new_output_dir(root: Path, max_age_s: float = OUTPUT_MAX_AGE_S) -> Path:
    """A fresh ``run_*`` folder under ``root`` for one request; removes the folders older than ``max_age_s``."""
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        try:
            if old.is_dir() and now - old.stat().st_mtime > max_age_s:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix="run_", dir=root))


# --------------------------------------------------------------------------- uploads


def display_name(path: Path) -> str:
    """How the page names an uploaded file: its name, never the server's folder."""
    return path.name or str(path)


def audio_error_detail(error: Exception, path: Path, name: str) -> str:
    """An ``AudioError`` about ``path`` as a phrase for the page: the server path replaced by ``name``."""
    detail = str(error)
    if detail.startswith(f"{path}: "):
        detail = detail[len(f"{path}: "):]
    return detail.replace(str(path), name).strip().rstrip(".") or "unknown problem"


# --------------------------------------------------------------------------- pictures


def display_n_fft(sampling_rate: int) -> int:
    """The FFT size of the pictures (their hop is a quarter of it)."""
    return 2048 if sampling_rate >= 32000 else 1024


def log_mel(audio: np.ndarray, sampling_rate: int, n_mels: int = SPECTROGRAM_MELS) -> np.ndarray:
    """``(n_mels, frames)`` log10 mel magnitudes of the channel mean (for display)."""
    import torch

    from hf_musiccodec.audio.spectral import log_mel_spectrogram

    mono = np.asarray(audio, dtype=np.float32).reshape(-1, audio.shape[-1]).mean(axis=0)
    n_fft = display_n_fft(sampling_rate)
    if mono.shape[-1] < n_fft:  # very short audio: pad so there is at least one frame
        mono = np.pad(mono, (0, n_fft - mono.shape[-1]))
    with torch.inference_mode():
        mel = log_mel_spectrogram(torch.from_numpy(mono), sampling_rate, n_fft=n_fft, n_mels=n_mels,
                                  hop_length=n_fft // 4, fmax=sampling_rate / 2)
    return mel.numpy()


def color_range(*mels: np.ndarray) -> tuple[float, float]:
    """One colour scale for several log-mel pictures: their maximum and at most 100 dB below it."""
    vmax = float(max(m.max() for m in mels))
    vmin = max(float(min(m.min() for m in mels)), vmax - 5.0)
    return (vmin, vmax) if vmax > vmin else (vmax - 1.0, vmax)


def spectrogram_image(mel: np.ndarray, sampling_rate: int, title: str, vmin: float, vmax: float,
                      marker_s: float | None = None):
    """A PIL image of a :func:`log_mel` spectrogram; ``marker_s`` draws a dashed line at that time."""
    return spectrogram_panels([(mel, sampling_rate, title, marker_s)], vmin, vmax)


def spectrogram_panels(panels, vmin: float, vmax: float):
    """One PIL image with a log-mel panel per ``(mel, sampling_rate, title, marker_s or None)``,
    stacked, each with its own time axis and the same colour scale (matplotlib without pyplot:
    safe in worker threads)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure(figsize=(6.4, 2.6 * len(panels)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (mel, sampling_rate, title, marker_s) in zip(axes, panels):
        seconds = mel.shape[-1] * (display_n_fft(sampling_rate) // 4) / sampling_rate
        im = ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                       extent=(0.0, seconds, 0, mel.shape[0]), interpolation="nearest")
        if marker_s is not None:
            ax.axvline(marker_s, color="white", linestyle="--", linewidth=1.2)
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel("mel band", fontsize=8)
        ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=ax, pad=0.01).ax.tick_params(labelsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    return Image.open(buf).convert("RGB")


# --------------------------------------------------------------------------- serving


def launch(demo, output_root: Path) -> None:
    """Serve a Space's ``gr.Blocks`` page one request at a time on ``$GRADIO_SERVER_NAME`` (default
    127.0.0.1) and ``$GRADIO_SERVER_PORT`` (7860), letting it serve the files under ``output_root``."""
    demo.queue(default_concurrency_limit=1).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        allowed_paths=[str(output_root)],
        ssr_mode=False,
    )
