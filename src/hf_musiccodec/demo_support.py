"""What the Gradio Spaces under ``spaces/`` share: settings from the environment, per-request output
folders, the checks of uploads and page settings (with their one-line messages), the pipeline
store, log-mel pictures and the server launch.

Importing this module does not import gradio (an optional dependency, the ``spaces`` extra): the
functions that raise ``gr.Error`` (:func:`page_error` and the checks built on it) import it when called,
and :func:`launch` uses it through the page it is given.
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
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
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


def page_error(message: str, title: str):
    """A ``gr.Error`` showing the one-line ``message`` under ``title`` (no traceback in the server log)."""
    import gradio as gr

    return gr.Error(message, title=title, print_exception=False)


def given(path) -> bool:
    """Whether the page handed over an upload: not ``None`` and not a blank string."""
    return path is not None and not (isinstance(path, str) and not path.strip())


def read_upload(path, *, min_seconds: float, max_seconds: float, role: str | None = None,
                missing: str = "Upload or record a clip first.", again: str = "try again",
                can_record: bool = True) -> tuple[np.ndarray, int]:
    """An uploaded or recorded clip as float32 ``(channels, samples)`` and its rate; ``gr.Error``
    (:func:`page_error`) with a one-line message naming the file for a missing (``missing``),
    unreadable, truncated, NaN, silent, shorter than ``min_seconds`` or longer than ``max_seconds`` one.

    ``role``: what the upload is for, named after the file in the messages ("'tune.wav' (the
    melody)"); ``again``: what to do after trimming an overlong upload ("Trim it and try again.");
    ``can_record``: whether the page records from the microphone too (the silent upload's hint).
    """
    from hf_musiccodec.audio.io import AudioError, audio_info, is_silent, load_audio

    if not given(path):
        raise page_error(missing, "No audio")
    path = Path(path)
    name = display_name(path)
    label = f"'{name}'" if role is None else f"'{name}' (the {role})"
    try:
        info = audio_info(path)
        seconds = info.frames / info.samplerate if info.samplerate else 0.0
        if seconds > max_seconds:
            raise page_error(f"{label} is {seconds:.1f} s long; this Space accepts up to {max_seconds:g} s. "
                             f"Trim it and {again}.", "Upload too long")
        audio, sr = load_audio(path)
    except AudioError as e:
        detail = audio_error_detail(e, path, name)
        if "NaN or infinite" in detail:
            raise page_error(f"{label} has {detail}: upload a clip of finite audio.", "Unreadable audio") from e
        raise page_error(f"Could not read {label} as audio: {detail}. Upload a wav, flac, ogg, opus, mp3 or aiff "
                         f"file.", "Unreadable audio") from e
    seconds = audio.shape[-1] / sr
    if seconds < min_seconds:
        raise page_error(f"{label} is {seconds:.2f} s long; at least {min_seconds:g} s is needed.", "Upload too short")
    if is_silent(audio):
        hint = "upload or record a clip" if can_record else "upload a clip"
        raise page_error(f"{label} is silent: {hint} with audible music.", "Silent upload")
    return audio, sr


# --------------------------------------------------------------------------- settings


def number_setting(value, name: str, *, integer: bool = False, low: float = 0.0, high: float | None = None):
    """The page's setting ``name`` as a finite number (an ``int`` when ``integer``) from ``low`` to
    ``high`` (``None``: no upper bound; ``low=-math.inf``: no lower one); ``gr.Error`` (:func:`page_error`,
    titled "Bad setting") with a one-line message otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise page_error(f"{name} must be a number, got {value!r}.", "Bad setting") from None
    if not math.isfinite(number) or (integer and number != int(number)):
        raise page_error(f"{name} must be a finite {'whole ' if integer else ''}number, got {value!r}.", "Bad setting")
    if number < low or (high is not None and number > high):
        span = f"from {low:g} to {high:g}" if high is not None else f"{low:g} or more"
        raise page_error(f"{name} must be {span}, got {number:g}.", "Bad setting")
    return int(number) if integer else number


def seed_setting(value) -> int:
    """The page's seed: a whole number from 0 to 2^63 - 1 (``torch.Generator.manual_seed``'s range)."""
    seed = number_setting(value, "Seed", integer=True, low=-math.inf)
    if not 0 <= seed < 2**63:
        raise page_error(f"Seed must be a whole number from 0 to 2^63 - 1, got {seed}.", "Bad setting")
    return seed


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


def one_line(error: BaseException, limit: int = 300) -> str:
    """An exception as one short line for a page."""
    return " ".join(str(error).split())[:limit] or type(error).__name__


class ModelUnavailable(RuntimeError):
    """A Space's pipeline folder is missing or does not load (the message is one line for the page)."""


class PipelineStore:
    """The pipeline a Space generates with: its folder (``$<env_name>``, else the first
    ``pipelines/<folder_name>`` holding a pipeline, the repository's then one beside the app), loaded
    once per folder, quiet, on the CPU. ``lock`` serialises loading and generating (the page
    queues requests anyway).

    Args:
        label: the model as the page names it ("VampNet", "text-to-music").
        env_name: the environment variable that points at a folder.
        folder_name: the folder under ``pipelines/``.
        app_dir: the Space's folder (``spaces/<name>``).
        load: ``folder -> pipeline`` (the pipeline class's ``from_pretrained``).
    """

    def __init__(self, label: str, env_name: str, folder_name: str, app_dir: Path, load):
        import threading

        self.label, self.env_name, self.folder_name, self.app_dir, self._load = label, env_name, folder_name, app_dir, load
        self.lock = threading.RLock()
        self._pipelines: dict[str, object] = {}

    def default_folder(self) -> Path:
        raw = os.environ.get(self.env_name, "").strip()
        if raw:
            return Path(raw).expanduser().resolve()
        candidates = [Path(self.app_dir).parents[1] / "pipelines" / self.folder_name,
                      Path(self.app_dir) / "pipelines" / self.folder_name]
        for folder in candidates:
            if (folder / "model_index.json").is_file():
                return folder.resolve()
        return candidates[0].resolve()

    def problem(self, folder: Path) -> str | None:
        """Why ``folder`` holds no pipeline (one line for the page), or ``None``."""
        if not folder.is_dir():
            return f"No {self.label} model: the folder {folder} does not exist (set {self.env_name} to a pipeline folder)."
        if not (folder / "model_index.json").is_file():
            return (f"No {self.label} model yet: {folder} has no model_index.json (the model may still be training; "
                    f"set {self.env_name} to a pipeline folder).")
        return None

    def get(self, folder=None):
        """The pipeline at ``folder`` (default :meth:`default_folder`); :class:`ModelUnavailable` if none."""
        folder = Path(folder).expanduser().resolve() if folder else self.default_folder()
        key = str(folder)
        with self.lock:
            if key in self._pipelines:
                return self._pipelines[key]
            problem = self.problem(folder)
            if problem is not None:
                raise ModelUnavailable(problem)
            from diffusers.utils import logging as diffusers_logging
            from transformers.utils import logging as transformers_logging

            for logging_module in (diffusers_logging, transformers_logging):
                logging_module.set_verbosity_error()
                logging_module.disable_progress_bar()
            try:
                pipe = self._load(key)
            except Exception as e:  # noqa: BLE001 - any loading problem is one line on the page
                raise ModelUnavailable(f"Could not load the {self.label} model at {key}: {one_line(e)}") from e
            pipe.set_progress_bar_config(disable=True)  # the page shows gr.Progress instead
            self._pipelines[key] = pipe
            return pipe

    def get_for_page(self, folder=None):
        """:meth:`get`, with a missing or unloadable pipeline as a ``gr.Error`` titled "No model"
        (:class:`ModelUnavailable`'s one-line message)."""
        try:
            return self.get(folder)
        except ModelUnavailable as e:
            raise page_error(str(e), "No model") from None

    def clear(self) -> None:
        with self.lock:
            self._pipelines.clear()
