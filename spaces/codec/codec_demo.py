"""The codec Space's logic: pick a codec and a bitrate, compress an upload, show what came back.

Everything the page does is an importable function here, so it is tested without a browser:

* :func:`available_models` — the bundled default codec, every codec folder under ``pipelines/``
  and the folders listed in ``$HF_MUSICCODEC_SPACE_MODELS`` (``os.pathsep``-separated).
* :func:`load_model` — the command line's ``load_codec`` once per folder (kept in memory).
* :func:`process` — upload path + model + bitrate -> :class:`CodecResult` (audio files, log-mel
  spectrogram images, bitrate and metric texts, the ``.hfmc`` file), block by block: the upload is
  never held in memory whole. User mistakes (no input, an unreadable or overlong upload, a bitrate
  the model lacks) raise ``gr.Error`` with a message meant for the person at the page.
* :func:`build_demo` — the ``gr.Blocks`` page wired to those functions.

Environment: ``HF_MUSICCODEC_SPACE_MODELS`` (extra model folders; the first one is preselected),
``HF_MUSICCODEC_SPACE_MAX_SECONDS`` (longest upload accepted, default 60 s).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from hf_musiccodec import demo_support

demo_support.quiet_offline_environment()

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from hf_musiccodec.audio.io import (  # noqa: E402
    AUDIO_EXTENSIONS,
    SILENCE_DB,
    AudioError,
    audio_info,
    read_audio_blocks,
    rechunk,
    write_audio_blocks,
)
from hf_musiccodec.cli.codec_commands import CommandError, load_codec  # noqa: E402
from hf_musiccodec.cli.demo import METRIC_SEGMENT_SECONDS, Comparison, compared, timed  # noqa: E402
from hf_musiccodec.codecs import MusicCodecConfig, MusicCodecModel, default_model_path  # noqa: E402
from hf_musiccodec.codecs.file_format import (  # noqa: E402
    CompressedAudio,
    decode_audio_blocks,
    encode_audio_blocks,
    write_compressed,
)

APP_DIR = Path(__file__).resolve().parent
MODELS_ENV = "HF_MUSICCODEC_SPACE_MODELS"
MAX_SECONDS_ENV = "HF_MUSICCODEC_SPACE_MAX_SECONDS"
DEFAULT_MAX_SECONDS = 60.0
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "hf_musiccodec_codec_space"

TITLE = "hf-musiccodec: neural audio codec"
DESCRIPTION = """\
Compress music with a neural audio codec and listen to what comes back. Upload a clip (wav, flac,
ogg, opus, mp3, aiff) or record one, pick a codec and a bitrate, press **Run**. The page shows the
original and the reconstruction side by side with their log-mel spectrograms, the bitrate (the
codec's nominal one and the real size of the `.hfmc` file, header included), two distances, and
the compressed file to download (decode it with `hf-musiccodec decompress file.hfmc out.wav`).
"""


# --------------------------------------------------------------------------- configuration


def max_seconds() -> float:
    """The longest upload accepted: ``$HF_MUSICCODEC_SPACE_MAX_SECONDS`` or 60 s."""
    return demo_support.seconds_from_env(MAX_SECONDS_ENV, DEFAULT_MAX_SECONDS)


def _pipelines_dirs() -> list[Path]:
    """``pipelines/`` of the source tree (repo checkout) and one beside app.py (a deployed Space)."""
    dirs = [APP_DIR.parents[1] / "pipelines", APP_DIR / "pipelines"]
    return [d for d in dict.fromkeys(p.resolve() for p in dirs) if d.is_dir()]


def _codec_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a codec this Space can use, or ``None`` (cheap: reads the config only)."""
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        return "no config.json"
    try:
        raw = json.loads(cfg_file.read_text())
    except (OSError, ValueError) as e:
        return f"unreadable config.json ({e})"
    if raw.get("model_type") != MusicCodecConfig.model_type:
        return f"model_type is {raw.get('model_type')!r}, not {MusicCodecConfig.model_type!r}"
    if not any((folder / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")):
        return "no weights file"
    try:
        cfg = MusicCodecConfig.from_pretrained(folder)
    except Exception as e:  # noqa: BLE001 - any config error means "not usable"
        return f"config does not load ({e})"
    if cfg.quantizer_type == "none" or not cfg.target_bandwidths:
        return "a plain autoencoder (no quantizer): it cannot compress to codes"
    return None


def available_models() -> dict[str, str]:
    """``{label: folder}`` of the codecs to offer, the preselected one first.

    Order: the folders of ``$HF_MUSICCODEC_SPACE_MODELS`` (an explicit choice), the bundled
    default codec, then the other codec folders under ``pipelines/`` by name.
    """
    entries: list[tuple[str, Path]] = []
    for raw in os.environ.get(MODELS_ENV, "").split(os.pathsep):
        if raw.strip():
            entries.append(("{name} (from $" + MODELS_ENV + ")", Path(raw.strip()).expanduser()))
    entries.append(("{name} (bundled default)", Path(default_model_path())))
    for root in _pipelines_dirs():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            entries.append(("{name}", folder))
    models: dict[str, str] = {}
    seen: set[Path] = set()
    for template, folder in entries:
        try:
            folder = folder.resolve()
        except OSError:
            continue
        if folder in seen or _codec_folder_problem(folder) is not None:
            continue
        seen.add(folder)
        label = template.format(name=folder.name)
        while label in models:
            label += " "
        models[label] = str(folder)
    return models


# --------------------------------------------------------------------------- models

_MODELS: dict[str, MusicCodecModel] = {}
_MODELS_LOCK = threading.Lock()


def load_model(path: str | os.PathLike) -> MusicCodecModel:
    """The codec at ``path`` (``hf_musiccodec.cli.codec_commands.load_codec``), loaded once per folder."""
    key = str(Path(path).expanduser().resolve())
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            try:
                model = load_codec(key)  # the command line's loader: quiet, offline, records its folder
            except CommandError as e:  # shown to the user
                raise gr.Error(f"Could not load the codec at {key}: {e}") from e
            _MODELS[key] = model
        return model


def clear_model_cache() -> None:
    with _MODELS_LOCK:
        _MODELS.clear()


def model_config(path: str | os.PathLike) -> MusicCodecConfig:
    """The config of a model folder (from memory when the model is loaded)."""
    key = str(Path(path).expanduser().resolve())
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key].config
    try:
        return MusicCodecConfig.from_pretrained(key)
    except Exception as e:  # noqa: BLE001
        raise gr.Error(f"Could not read the codec configuration at {key}: {' '.join(str(e).split())[:300]}") from e


def bandwidth_choices(path: str | os.PathLike) -> list[tuple[str, float]]:
    """``[(label, kbps)]`` for the model's ``target_bandwidths``, lowest first."""
    cfg = model_config(path)
    return [(f"{b:g} kbps", float(b)) for b in sorted(cfg.target_bandwidths)]


def model_summary(path: str | os.PathLike) -> str:
    cfg = model_config(path)
    channels = "mono" if cfg.audio_channels == 1 else f"{cfg.audio_channels} channels"
    return (f"{cfg.sampling_rate / 1000:g} kHz {channels}, {cfg.frame_rate:g} frames/s, up to "
            f"{cfg.num_quantizers} codebooks of {cfg.codebook_size} codes ({cfg.bits_per_codebook} bits each)")


# --------------------------------------------------------------------------- audio in


def _ffmpeg_to_wav(path: Path, out_dir: Path) -> Path | None:
    """Decode a format libsndfile lacks (webm, m4a, ...) with ffmpeg, if installed."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    target = out_dir / "upload_ffmpeg.wav"
    proc = subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(path), "-vn", "-c:a", "pcm_f32le", str(target)],
                          capture_output=True, timeout=120)
    return target if proc.returncode == 0 and target.is_file() and target.stat().st_size > 0 else None


def check_upload(path: str | os.PathLike, *, limit_s: float, work_dir: Path) -> tuple[Path, dict]:
    """The readable file behind an upload (converted by ffmpeg when libsndfile cannot read it) and
    facts about it (``sampling_rate``, ``channels``); ``gr.Error`` for the user's mistakes."""
    path = Path(path)
    name = demo_support.display_name(path)
    source = path
    try:
        info = audio_info(path)
    except AudioError as e:
        converted = _ffmpeg_to_wav(path, work_dir) if path.suffix.lower() not in AUDIO_EXTENSIONS and path.is_file() else None
        if converted is None:
            raise gr.Error(_upload_message(e, path, name), title="Unreadable audio", print_exception=False) from e
        source, info = converted, audio_info(converted)
    seconds = info.frames / info.samplerate if info.samplerate else 0.0
    if seconds > limit_s:
        raise gr.Error(f"'{name}' is {seconds:.1f} s long; this Space accepts up to {limit_s:g} s. "
                       f"Trim it (or record a shorter take) and run again.", title="Upload too long", print_exception=False)
    return source, {"sampling_rate": int(info.samplerate), "channels": int(info.channels)}


def upload_blocks(source: Path, name: str, sampling_rate: int, channels: int, *, limit_s: float):
    """The upload at the codec's rate and channel count, block by block (bounded memory);
    ``gr.Error`` for unreadable audio and for headers that under-declare an overlong file."""
    limit = math.ceil(limit_s * sampling_rate)
    count = 0
    try:
        for block in read_audio_blocks(source, sampling_rate=sampling_rate, channels=channels):
            count += block.shape[-1]
            if count > limit:
                raise gr.Error(f"'{name}' is longer than {limit_s:g} s, the most this Space accepts. Trim it and run again.",
                               title="Upload too long", print_exception=False)
            yield block
    except AudioError as e:
        raise gr.Error(_upload_message(e, source, name), title="Unreadable audio", print_exception=False) from e


def _upload_message(error: AudioError, path: Path, name: str) -> str:
    detail = demo_support.audio_error_detail(error, path, name)
    return (f"Could not read '{name}' as audio: {detail}. Upload a wav, flac, ogg, opus, mp3 or aiff file "
            f"(or record one with the microphone).")


# --------------------------------------------------------------------------- processing


@dataclasses.dataclass
class CodecResult:
    """What one run produces; file paths live in a fresh folder under :data:`OUTPUT_ROOT`."""

    original_path: str  # the input at the codec's rate and channels (what the codec saw), wav
    reconstruction_path: str  # decoded from the .hfmc bytes, wav
    compressed_path: str  # the .hfmc file
    original_spectrogram: object  # PIL.Image
    reconstruction_spectrogram: object  # PIL.Image
    bitrate_text: str  # markdown
    metrics_text: str  # markdown
    nominal_kbps: float
    real_kbps: float
    file_bytes: int
    mel_distance: float
    si_sdr: float
    seconds: float
    notes: list[str]  # things worth a gr.Warning / gr.Info (resampling, silence, ...)


def _safe_stem(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.stem).strip("._") or "audio"
    return stem[:60]


def process(audio_path: str | os.PathLike | None, model_path: str | os.PathLike | None,
            bandwidth: float | str | None) -> CodecResult:
    """Compress ``audio_path`` with the codec at ``model_path`` at ``bandwidth`` kbps and decode it.

    ``model_path`` ``None`` = the first of :func:`available_models`; ``bandwidth`` ``None`` = the
    model's highest. Raises ``gr.Error`` for no input, an unreadable or overlong upload, an
    unknown model or a bitrate the model does not have.
    """
    from hf_musiccodec.metrics import mel_distance, si_sdr

    if audio_path is None or (isinstance(audio_path, str) and not audio_path.strip()):
        raise gr.Error("No audio yet: upload a file or record with the microphone, then press Run.", title="No input", print_exception=False)
    if model_path is None or not str(model_path).strip():
        models = available_models()
        if not models:
            raise gr.Error("No codec is available: this Space found no model folder.", title="No model")
        model_path = next(iter(models.values()))
    model = load_model(model_path)
    cfg = model.config
    bandwidths = sorted(float(b) for b in cfg.target_bandwidths)
    if bandwidth is None or (isinstance(bandwidth, str) and not bandwidth.strip()):
        bandwidth = bandwidths[-1]
    try:
        bandwidth = float(str(bandwidth).lower().replace("kbps", "").strip())
    except ValueError:
        raise gr.Error(f"Bitrate {bandwidth!r} is not a number of kbps.", title="Bad bitrate", print_exception=False) from None
    match = [b for b in bandwidths if math.isclose(b, bandwidth, abs_tol=1e-3)]
    if not match:
        raise gr.Error(f"This codec does not have {bandwidth:g} kbps; choose one of "
                       f"{', '.join(f'{b:g}' for b in bandwidths)} kbps.", title="Bad bitrate", print_exception=False)
    bandwidth = match[0]

    out_dir = demo_support.new_output_dir(OUTPUT_ROOT)
    limit_s = max_seconds()
    source, facts = check_upload(audio_path, limit_s=limit_s, work_dir=out_dir)
    sr = int(cfg.sampling_rate)
    segment = int(METRIC_SEGMENT_SECONDS * sr)

    def original():  # read again for each pass: memory holds blocks, never the whole upload
        return upload_blocks(source, demo_support.display_name(Path(audio_path)), sr, cfg.audio_channels,
                             limit_s=limit_s)

    notes: list[str] = []
    if facts["sampling_rate"] != sr or facts["channels"] != cfg.audio_channels:
        channels = {1: "mono", 2: "stereo"}
        notes.append(f"Converted the upload from {facts['sampling_rate']} Hz {channels.get(facts['channels'], str(facts['channels']) + ' ch')} "
                     f"to the codec's {sr} Hz {channels.get(cfg.audio_channels, str(cfg.audio_channels) + ' ch')}.")
    stem = _safe_stem(Path(audio_path))
    mel_a = []

    def shown(blocks, mels):  # clipped for playback; log-mel per segment for the picture
        for block in rechunk(blocks, segment):
            mels.append(demo_support.log_mel(block, sr))
            yield np.clip(block, -1.0, 1.0)

    original_path = write_audio_blocks(out_dir / f"{stem}_original_{sr // 1000}khz.wav", shown(original(), mel_a), sr)

    start = time.perf_counter()
    compressed = encode_audio_blocks(model, original(), bandwidth)
    data = compressed.to_bytes()
    encode_s = time.perf_counter() - start
    decoding, mel_b, comparison = [0.0], [], Comparison(sr)
    decoded = (block[0] for block in timed(decode_audio_blocks(model, CompressedAudio.from_bytes(data, source="upload.hfmc")),
                                           decoding))
    reconstruction_path = write_audio_blocks(out_dir / f"{stem}_{bandwidth:g}kbps_decoded.wav",
                                             shown(compared(original(), decoded, comparison, segment), mel_b), sr)
    decode_s = decoding[0]
    compressed_path = write_compressed(out_dir / f"{stem}_{bandwidth:g}kbps.hfmc", compressed)
    file_bytes = len(data)
    silent = comparison.rms_db < SILENCE_DB
    if silent:
        notes.append("The upload is (nearly) silent: the metrics say little about the codec.")

    seconds = compressed.num_samples / sr
    real_kbps = file_bytes * 8 / seconds / 1000
    quantizers = model.num_quantizers_for_bandwidth(bandwidth)
    code_kbps = quantizers * cfg.bits_per_codebook * cfg.frame_rate / 1000
    pcm_kbps = sr * cfg.audio_channels * 16 / 1000
    bitrate_text = (
        f"**Bitrate: {bandwidth:g} kbps nominal**, {real_kbps:.2f} kbps real file\n\n"
        f"- nominal: {quantizers} of {cfg.num_quantizers} codebooks × {cfg.bits_per_codebook} bits × "
        f"{cfg.frame_rate:g} frames/s = {code_kbps:.3g} kbps\n"
        f"- real: the `.hfmc` file is {file_bytes:,} bytes for {seconds:.2f} s (header and checksum included)\n"
        f"- {pcm_kbps / real_kbps:.0f}× smaller than 16-bit PCM at {sr} Hz ({pcm_kbps:g} kbps)"
    )

    mel_dist = comparison.mel_distance
    sdr = comparison.si_sdr if not silent else float("nan")
    metrics_text = (
        f"**Metrics** (original vs reconstruction)\n\n"
        f"- mel distance: {mel_dist:.3f} (multi-scale log-mel L1; 0 = identical, lower is better)\n"
        f"- SI-SDR: {sdr:.2f} dB (higher is better; waveform-exact, harsh on codecs that change phase)\n"
        f"- encode {encode_s:.2f} s, decode {decode_s:.2f} s for {seconds:.2f} s of audio"
    )

    mel_a, mel_b = np.concatenate(mel_a, axis=-1), np.concatenate(mel_b, axis=-1)
    vmin, vmax = demo_support.color_range(mel_a, mel_b)
    original_img = demo_support.spectrogram_image(mel_a, sr, "original (log-mel)", vmin, vmax)
    reconstruction_img = demo_support.spectrogram_image(mel_b, sr, f"reconstruction at {bandwidth:g} kbps (log-mel)",
                                                        vmin, vmax)

    return CodecResult(
        original_path=str(original_path), reconstruction_path=str(reconstruction_path),
        compressed_path=str(compressed_path), original_spectrogram=original_img,
        reconstruction_spectrogram=reconstruction_img, bitrate_text=bitrate_text, metrics_text=metrics_text,
        nominal_kbps=bandwidth, real_kbps=real_kbps, file_bytes=file_bytes, mel_distance=mel_dist,
        si_sdr=sdr, seconds=seconds, notes=notes)


# --------------------------------------------------------------------------- page


def run_for_page(audio_path, model_path, bandwidth):
    """The Run button's handler: :func:`process`, notes shown as warnings, outputs as a tuple."""
    result = process(audio_path, model_path, bandwidth)
    for note in result.notes:
        gr.Warning(note) if "silent" in note else gr.Info(note)
    return (result.original_path, result.reconstruction_path, result.original_spectrogram,
            result.reconstruction_spectrogram, result.bitrate_text, result.metrics_text, result.compressed_path)


def on_model_change(model_path):
    """New model chosen: refill the bitrate choices (keeping the highest) and the model summary."""
    if not model_path:
        return gr.Dropdown(choices=[], value=None), ""
    choices = bandwidth_choices(model_path)
    return gr.Dropdown(choices=choices, value=choices[-1][1]), model_summary(model_path)


def build_demo() -> gr.Blocks:
    """The Space's page."""
    models = available_models()
    model_choices = list(models.items())
    first = model_choices[0][1] if model_choices else None
    bitrates = bandwidth_choices(first) if first else []
    example = None
    try:
        from hf_musiccodec.data import demo_clip_path

        example = demo_clip_path() if demo_clip_path().is_file() else None
    except Exception:  # noqa: BLE001 - the example is optional
        example = None

    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\n\n{DESCRIPTION}")
        with gr.Row():
            with gr.Column(scale=3):
                audio_in = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio in (upload or record)",
                                    buttons=["download"], elem_id="audio-in")
            with gr.Column(scale=2):
                model = gr.Dropdown(choices=model_choices, value=first, label="Codec", elem_id="model",
                                    info="the bundled default codec and every codec folder under pipelines/")
                model_info = gr.Markdown(model_summary(first) if first else "No codec found.", elem_id="model-info")
                bitrate = gr.Dropdown(choices=bitrates, value=bitrates[-1][1] if bitrates else None,
                                      label="Bitrate", elem_id="bitrate", info="the codec's target bandwidths")
                gr.Markdown(f"Uploads up to {max_seconds():g} s.")
                run = gr.Button("Run", variant="primary", elem_id="run")
        if example is not None:
            gr.Examples(examples=[[str(example)]], inputs=[audio_in], label="Example: a Bach chorale (10 s)")
        with gr.Row(equal_height=True):
            with gr.Column():
                original = gr.Audio(label="Original (as the codec sees it)", type="filepath", interactive=False,
                                    buttons=["download"], elem_id="original")
                original_spec = gr.Image(label="Original spectrogram", show_label=False, type="pil", interactive=False,
                                         buttons=["download", "fullscreen"], elem_id="original-spectrogram")
            with gr.Column():
                reconstruction = gr.Audio(label="Reconstruction (decoded from the .hfmc file)", type="filepath",
                                          interactive=False, buttons=["download"], elem_id="reconstruction")
                reconstruction_spec = gr.Image(label="Reconstruction spectrogram", show_label=False, type="pil",
                                               interactive=False, buttons=["download", "fullscreen"],
                                               elem_id="reconstruction-spectrogram")
        with gr.Row():
            bitrate_text = gr.Markdown(elem_id="bitrate-text", padding=True)
            metrics_text = gr.Markdown(elem_id="metrics-text", padding=True)
        compressed = gr.File(label="Compressed file (.hfmc)", interactive=False, elem_id="compressed")

        model.change(on_model_change, inputs=[model], outputs=[bitrate, model_info])
        run.click(run_for_page, inputs=[audio_in, model, bitrate],
                  outputs=[original, reconstruction, original_spec, reconstruction_spec, bitrate_text,
                           metrics_text, compressed],
                  concurrency_limit=1)
    return demo


def main() -> None:
    """``python app.py``: serve on ``$GRADIO_SERVER_NAME`` (default 127.0.0.1), ``$GRADIO_SERVER_PORT`` (7860)."""
    demo_support.launch(build_demo(), OUTPUT_ROOT)
