"""The VampNet Space's logic: a clip in, a mask recipe, a vamped (or unlooped) clip out.

Everything the page does is an importable function here, so it is tested without a browser:

* :func:`model_folder` — the pipeline folder: ``$VAMPNET_MODEL``, else ``pipelines/vampnet`` of the
  repository (or beside ``app.py`` in a deployed Space).
* :func:`load_pipeline` — ``VampNetPipeline.from_pretrained`` once per folder (kept in memory).
* :func:`read_upload` — an uploaded or recorded clip as a checked ``(channels, samples)`` array;
  unreadable, truncated, silent, too short, too long or NaN uploads raise ``gr.Error`` with a
  one-line message naming the file.
* :func:`recipe_from_settings` — the page's mask settings, checked, as the pipeline's keywords.
* :func:`preview_mask` — the mask (which tokens are kept, which generated) as a grid image and a
  line with the kept tokens' bit rate, before anything is generated.
* :func:`vamp` / :func:`unloop` — the vamped clip (:class:`VampResult`: a wav file, a log-mel
  picture of input and output, the token grid, a summary with the bit rate). The pipeline's own
  one-line ``GeneratorError`` becomes a ``gr.Error``: the page never shows a traceback.
* :func:`build_demo` — the ``gr.Blocks`` page wired to those functions.

:func:`vamp` builds the mask exactly as :func:`preview_mask` does (same settings, same seed: the
same grid) and hands it to the pipeline, so what the preview shows is what is vamped.

Environment: ``VAMPNET_MODEL`` (the pipeline folder), ``VAMPNET_MAX_UPLOAD_SECONDS`` (longest
upload, default 30 s). Runs on the CPU; nothing is downloaded at run time.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import tempfile
import time
from pathlib import Path

from hf_musiccodec import demo_support

demo_support.quiet_offline_environment()

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from hf_musiccodec.audio.io import is_silent, save_audio  # noqa: E402

APP_DIR = Path(__file__).resolve().parent
MODEL_ENV = "VAMPNET_MODEL"
MAX_UPLOAD_SECONDS_ENV = "VAMPNET_MAX_UPLOAD_SECONDS"
DEFAULT_MAX_UPLOAD_SECONDS = 30.0
MIN_UPLOAD_SECONDS = 0.5
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "hf_musiccodec_vampnet_space"
KEPT_COLOR, GENERATED_COLOR = "#2b6cb0", "#f6ad55"

# The page's defaults (VampNet's own demo: a periodic prompt of 7 frames, upper codebooks regenerated).
DEFAULTS = dict(prefix=0.0, suffix=0.0, periodic=7, periodic_width=1, upper_codebook_mask=3, beat_width=0.0,
                onset_width=0.0, dropout=0.0, steps=24, seed=0, num_loops=4, feedback=0.5)

TITLE = "hf-musiccodec: VampNet"
DESCRIPTION = """\
Upload or record a clip, choose which of its codec tokens to **keep** (the prompt), and let VampNet
generate the rest: variations that keep the rhythm, inpainting between a kept start and end, or a
new timbre on the same structure. **Show mask** draws the token grid (codebooks × frames: blue is
kept, orange is generated) with the bit rate of the kept tokens; **Vamp** generates. The **Loop**
tab vamps the clip again and again, each pass from the last. The same clip, settings and seed give
the same result.
"""


# --------------------------------------------------------------------------- configuration


def max_upload_seconds() -> float:
    """The longest upload accepted: ``$VAMPNET_MAX_UPLOAD_SECONDS`` or 30 s."""
    return demo_support.seconds_from_env(MAX_UPLOAD_SECONDS_ENV, DEFAULT_MAX_UPLOAD_SECONDS)


def _load(folder: str):
    from hf_musiccodec.pipelines.vampnet import VampNetPipeline

    return VampNetPipeline.from_pretrained(folder)


_STORE = demo_support.PipelineStore("VampNet", MODEL_ENV, "vampnet", APP_DIR, _load)
_LOCK = _STORE.lock  # loading and generating: one at a time (the page queues requests anyway)
_one_line = demo_support.one_line
_error = demo_support.page_error
_number = demo_support.number_setting


def model_folder() -> Path:
    """``$VAMPNET_MODEL``, else the first ``pipelines/vampnet`` holding a pipeline (the repository's, then one
    beside app.py), else the repository's (which :func:`folder_problem` reports)."""
    return _STORE.default_folder()


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` holds no VampNet pipeline (one line for the page), or ``None``."""
    return _STORE.problem(folder)


def load_pipeline(folder: str | os.PathLike | None = None):
    """The ``VampNetPipeline`` at ``folder`` (default :func:`model_folder`), loaded once, quiet, on the CPU."""
    return _STORE.get_for_page(folder)


def clear_pipeline_cache() -> None:
    _STORE.clear()


def coarse_codebooks(pipe) -> int:
    return int(pipe.vampnet.config.num_codebooks)


def has_text_prompt(pipe) -> bool:
    """Whether a text prompt works with this pipeline (a CLAP model and a model trained with it)."""
    return pipe.clap is not None and bool(pipe.vampnet.config.condition_dim)


def model_summary(pipe, folder: Path) -> str:
    cfg, model = pipe.codec.config, pipe.vampnet.config
    channels = "mono" if cfg.audio_channels == 1 else f"{cfg.audio_channels} channels"
    fine = (f", then {pipe.num_codebooks - model.num_codebooks} finer ones from a coarse-to-fine model"
            if pipe.coarse_to_fine is not None else "")
    return (f"Model `{folder.name}`: {cfg.sampling_rate / 1000:g} kHz {channels}, {pipe.frame_rate:g} frames/s; "
            f"vamps {model.num_codebooks} coarse codebooks of {model.codebook_size} tokens{fine}; a context of "
            f"{model.context_frames / pipe.frame_rate:.1f} s (longer clips are vamped window by window); "
            f"text prompt: {'yes (CLAP)' if has_text_prompt(pipe) else 'no'}.")


# --------------------------------------------------------------------------- audio in


def read_upload(path, *, limit_s: float | None = None) -> tuple[np.ndarray, int]:
    """An uploaded or recorded clip as float32 ``(channels, samples)`` and its rate; ``gr.Error``
    with a one-line message for a missing, unreadable, truncated, NaN, silent, too short or too long one
    (at most ``limit_s``, default :func:`max_upload_seconds`)."""
    return demo_support.read_upload(path, min_seconds=MIN_UPLOAD_SECONDS,
                                    max_seconds=max_upload_seconds() if limit_s is None else limit_s)


# --------------------------------------------------------------------------- settings


def recipe_from_settings(prefix, suffix, periodic, periodic_width, upper_codebook_mask, beat_width, onset_width,
                         dropout) -> dict:
    """The page's mask settings, checked, as :class:`VampNetPipeline` keywords. An upper codebook
    mask of the model's number of coarse codebooks (or more) regenerates none."""
    return dict(
        prefix_s=_number(prefix, "Prefix (s)"),
        suffix_s=_number(suffix, "Suffix (s)"),
        periodic_prompt=_number(periodic, "Periodic prompt", integer=True),
        periodic_width=_number(periodic_width, "Periodic width", integer=True, low=1),
        upper_codebook_mask=_number(upper_codebook_mask, "Upper codebook mask", integer=True),
        beat_mask_width_ms=_number(beat_width, "Beat mask width (ms)"),
        onset_mask_width_ms=_number(onset_width, "Onset mask width (ms)"),
        dropout=_number(dropout, "Dropout", high=1),
    )


def _for_model(recipe: dict, pipe) -> dict:
    """``recipe`` with its upper codebook mask capped at the model's coarse codebooks (the slider may go higher)."""
    return {**recipe, "upper_codebook_mask": min(recipe["upper_codebook_mask"], coarse_codebooks(pipe))}


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(seed)


def _cannot(e: Exception, what: str = "vamp") -> gr.Error:
    return _error(_one_line(e), f"Cannot {what}")


def build_mask(pipe, audio: np.ndarray, sampling_rate: int, recipe: dict, seed: int):
    """The coarse mask ``(1, codebooks, frames)`` (True = generated) that :func:`vamp` uses: the
    pipeline's ``build_mask`` on the clip's codes, random parts drawn from ``seed``."""
    import torch

    from hf_musiccodec.pipelines import GeneratorError
    from hf_musiccodec.pipelines.pipeline_utils import user_waveform
    from hf_musiccodec.pipelines.vampnet.pipeline_vampnet import MIN_INPUT_S

    try:
        with _LOCK, torch.inference_mode():
            codes = pipe.encode_audio(audio, sampling_rate)  # (1, codebooks, frames)
            waveform = user_waveform(audio, sampling_rate, pipe.sampling_rate, 1, "audio", MIN_INPUT_S)[0]
            return pipe.build_mask(codes, waveform, generator=_generator(seed), **_for_model(recipe, pipe)).cpu()
    except GeneratorError as e:
        raise _cannot(e, "build the mask") from e


# --------------------------------------------------------------------------- pictures


def mask_stats(mask, pipe) -> tuple[float, float]:
    """``(bits per second, percent)`` of the tokens ``mask`` keeps."""
    from hf_musiccodec.pipelines.vampnet import masks

    bps = masks.bits_per_second(mask, pipe.vampnet.config.codebook_size, pipe.frame_rate)
    return bps, 100.0 * (~mask).float().mean().item()


def mask_grid_image(mask, frame_rate: float, title: str, pass_frames: int | None = None):
    """A PIL image of a mask ``(1 or codebooks, frames)`` as a grid of tokens: codebooks up, frames
    (in seconds) across; kept tokens blue, generated ones orange. ``pass_frames``: dashed lines
    between the passes of a loop."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from PIL import Image

    grid = np.asarray(mask, dtype=np.float32).reshape(-1, np.shape(mask)[-1])
    codebooks, frames = grid.shape
    seconds = frames / frame_rate
    width = min(max(6.4, frames / 60), 12.8)
    fig = Figure(figsize=(width, 1.3 + 0.3 * codebooks), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(grid, origin="lower", aspect="auto", interpolation="nearest", vmin=0, vmax=1,
              cmap=ListedColormap([KEPT_COLOR, GENERATED_COLOR]), extent=(0.0, seconds, -0.5, codebooks - 0.5))
    if pass_frames:
        for boundary in range(pass_frames, frames, pass_frames):
            ax.axvline(boundary / frame_rate, color="black", linestyle="--", linewidth=1.0)
    ax.set_yticks(range(codebooks))
    ax.set_ylabel("codebook", fontsize=8)
    ax.set_xlabel("time (s)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=10, loc="left")
    handles = [Patch(color=KEPT_COLOR, label="kept (prompt)"), Patch(color=GENERATED_COLOR, label="generated")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=7, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _stats_text(bps: float, percent: float, mask) -> str:
    codebooks, frames = mask.shape[-2:]
    return f"kept tokens: **{bps:.1f} bits/s** ({percent:.1f}% of the {codebooks} × {frames} coarse tokens)"


@dataclasses.dataclass
class MaskPreview:
    mask: object  # torch bool (1, codebooks, frames), True = generated
    image: object  # PIL.Image of the token grid
    bits_per_second: float
    text: str


def preview_mask(upload, prefix=DEFAULTS["prefix"], suffix=DEFAULTS["suffix"], periodic=DEFAULTS["periodic"],
                 periodic_width=DEFAULTS["periodic_width"], upper_codebook_mask=DEFAULTS["upper_codebook_mask"],
                 beat_width=DEFAULTS["beat_width"], onset_width=DEFAULTS["onset_width"],
                 dropout=DEFAULTS["dropout"], seed=DEFAULTS["seed"], *, folder=None) -> MaskPreview:
    """The mask the settings give on ``upload`` (nothing generated yet)."""
    recipe = recipe_from_settings(prefix, suffix, periodic, periodic_width, upper_codebook_mask, beat_width,
                                  onset_width, dropout)
    seed = demo_support.seed_setting(seed)
    audio, sr = read_upload(upload)
    pipe = load_pipeline(folder)
    mask = build_mask(pipe, audio, sr, recipe, seed)
    bps, percent = mask_stats(mask, pipe)
    name = demo_support.display_name(Path(upload))
    image = mask_grid_image(mask[0], pipe.frame_rate, f"mask of '{name}' (token grid): {bps:.1f} bits/s kept")
    return MaskPreview(mask=mask, image=image, bits_per_second=bps, text=_stats_text(bps, percent, mask))


# --------------------------------------------------------------------------- vamping


@dataclasses.dataclass
class VampResult:
    """What one vamp (or unloop) produces; files live in a fresh folder under :data:`OUTPUT_ROOT`."""

    audio_path: str  # 16-bit wav at the model's rate (player and download)
    audio: np.ndarray  # the same as float32 (channels, samples), before 16-bit rounding
    sampling_rate: int
    spectrogram: object  # PIL.Image: log-mel of the input and of the output
    grid: object  # PIL.Image: the token grid of the mask used
    mask: object  # torch bool (1, codebooks, frames)
    bits_per_second: float
    summary_text: str
    notes: list[str]


def _progress_callback(progress, what: str):
    if progress is None:
        return None
    progress(0.0, desc=what)

    def callback(pipe_, step, _t, kwargs):
        progress((step + 1, pipe_.num_timesteps), desc=what, unit="passes")
        return kwargs

    return callback


def _slug(text: str) -> str:
    return "_".join(re.findall(r"[A-Za-z0-9]+", text.lower()))[:40].strip("_") or "clip"


def _finish(pipe, out, source: np.ndarray, source_sr: int, name: str, stem: str, title: str, details: list[str],
            elapsed: float, pass_frames: int | None = None) -> VampResult:
    sr = int(pipe.sampling_rate)
    audio = np.asarray(out.audios[0], dtype=np.float32)
    if not np.isfinite(audio).all():
        raise _error("The model produced invalid audio (NaN); try another seed.", "Vamp failed")
    notes = []
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 1.0:
        notes.append(f"The vamped audio peaked at {peak:.2f}; it was clipped to [-1, 1] in the wav.")
    if is_silent(audio):
        notes.append("The vamped audio is (nearly) silent; try other settings or another seed.")
    out_dir = demo_support.new_output_dir(OUTPUT_ROOT)
    audio_path = save_audio(out_dir / f"{stem}.wav", np.clip(audio, -1.0, 1.0), sr)  # atomic

    mask = out.mask[:1]
    bps = float(out.bits_per_second)
    _, percent = mask_stats(mask, pipe)
    grid = mask_grid_image(mask[0], pipe.frame_rate, f"{title}, mask used (token grid): {bps:.1f} bits/s kept",
                           pass_frames)
    mel_in, mel_out = demo_support.log_mel(source, source_sr), demo_support.log_mel(audio, sr)
    vmin, vmax = demo_support.color_range(mel_in, mel_out)
    spectrogram = demo_support.spectrogram_panels(
        [(mel_in, source_sr, f"input '{name}' (log-mel)", None), (mel_out, sr, f"{title} (log-mel)", None)],
        vmin, vmax)
    seconds = audio.shape[-1] / sr
    summary = (f"**{title.capitalize()}: {seconds:.2f} s** at {sr} Hz in {elapsed:.1f} s\n\n"
               f"- {_stats_text(bps, percent, mask)}\n"
               + "".join(f"- {line}\n" for line in details)
               + f"- download: `{audio_path.name}` (16-bit wav)")
    return VampResult(audio_path=str(audio_path), audio=audio, sampling_rate=sr, spectrogram=spectrogram, grid=grid,
                      mask=mask, bits_per_second=bps, summary_text=summary, notes=notes)


def _recipe_line(recipe: dict) -> str:
    parts = []
    if recipe["prefix_s"] or recipe["suffix_s"]:
        parts.append(f"prefix {recipe['prefix_s']:g} s, suffix {recipe['suffix_s']:g} s")
    if recipe["periodic_prompt"]:
        parts.append(f"periodic {recipe['periodic_prompt']} (width {recipe['periodic_width']})")
    if recipe["beat_mask_width_ms"]:
        parts.append(f"beats {recipe['beat_mask_width_ms']:g} ms")
    if recipe["onset_mask_width_ms"]:
        parts.append(f"onsets {recipe['onset_mask_width_ms']:g} ms")
    parts.append(f"upper codebook mask {recipe['upper_codebook_mask']}")
    if recipe["dropout"]:
        parts.append(f"dropout {recipe['dropout']:g}")
    return "mask: " + ", ".join(parts)


def _common(upload, recipe_values, steps, seed, prompt, folder):
    recipe = recipe_from_settings(*recipe_values)
    steps = _number(steps, "Steps", integer=True, low=1, high=256)
    seed = demo_support.seed_setting(seed)
    prompt = (prompt or "").strip() or None
    audio, sr = read_upload(upload)
    pipe = load_pipeline(folder)
    if prompt is not None and not has_text_prompt(pipe):
        raise _error("This model was trained without a text condition: clear the text prompt.", "Bad setting")
    return recipe, steps, seed, prompt, audio, sr, pipe


def vamp(upload, prefix=DEFAULTS["prefix"], suffix=DEFAULTS["suffix"], periodic=DEFAULTS["periodic"],
         periodic_width=DEFAULTS["periodic_width"], upper_codebook_mask=DEFAULTS["upper_codebook_mask"],
         beat_width=DEFAULTS["beat_width"], onset_width=DEFAULTS["onset_width"], dropout=DEFAULTS["dropout"],
         steps=DEFAULTS["steps"], seed=DEFAULTS["seed"], prompt=None, *, folder=None, progress=None) -> VampResult:
    """Vamp on ``upload``: the mask of :func:`preview_mask` (same settings and seed), then ``steps``
    sampling passes seeded with ``seed``; ``prompt`` steers a model trained with CLAP."""
    recipe, steps, seed, prompt, audio, sr, pipe = _common(
        upload, (prefix, suffix, periodic, periodic_width, upper_codebook_mask, beat_width, onset_width, dropout),
        steps, seed, prompt, folder)
    import torch

    from hf_musiccodec.pipelines import GeneratorError

    mask = build_mask(pipe, audio, sr, recipe, seed)
    callback = _progress_callback(progress, "vamping")
    start = time.perf_counter()
    try:
        with _LOCK, torch.inference_mode():
            out = pipe(audio, sampling_rate=sr, prompt=prompt, mask=mask, num_inference_steps=steps,
                       generator=_generator(seed), callback_on_step_end=callback)
    except GeneratorError as e:
        raise _cannot(e) from e
    name = demo_support.display_name(Path(upload))
    details = [_recipe_line(recipe), f"{steps} steps, seed {seed}" + (f', text "{prompt}"' if prompt else "")
               + ": the same settings give the same result"]
    return _finish(pipe, out, audio, sr, name, f"{_slug(Path(name).stem)}_vamp_seed{seed}", "vamped", details,
                   time.perf_counter() - start)


def unloop(upload, prefix=DEFAULTS["prefix"], suffix=DEFAULTS["suffix"], periodic=DEFAULTS["periodic"],
           periodic_width=DEFAULTS["periodic_width"], upper_codebook_mask=DEFAULTS["upper_codebook_mask"],
           beat_width=DEFAULTS["beat_width"], onset_width=DEFAULTS["onset_width"], dropout=DEFAULTS["dropout"],
           steps=DEFAULTS["steps"], seed=DEFAULTS["seed"], prompt=None, num_loops=DEFAULTS["num_loops"],
           feedback=DEFAULTS["feedback"], *, folder=None, progress=None) -> VampResult:
    """Unloop ``upload``: ``num_loops`` passes one after another, each vamping the last
    (each pass also keeps the tokens the last one generated with probability ``feedback``); the mask is drawn
    anew each pass."""
    recipe, steps, seed, prompt, audio, sr, pipe = _common(
        upload, (prefix, suffix, periodic, periodic_width, upper_codebook_mask, beat_width, onset_width, dropout),
        steps, seed, prompt, folder)
    num_loops = _number(num_loops, "Loops", integer=True, low=1, high=16)
    feedback = _number(feedback, "Feedback", high=1)
    import torch

    from hf_musiccodec.pipelines import GeneratorError

    callback = _progress_callback(progress, "looping")
    start = time.perf_counter()
    try:
        with _LOCK, torch.inference_mode():
            out = pipe.loop(audio, sampling_rate=sr, num_loops=num_loops, feedback=feedback, prompt=prompt,
                            num_inference_steps=steps, generator=_generator(seed), callback_on_step_end=callback,
                            **_for_model(recipe, pipe))
    except GeneratorError as e:
        raise _cannot(e, "loop") from e
    name = demo_support.display_name(Path(upload))
    details = [_recipe_line(recipe) + " (drawn again each pass)", f"{num_loops} loops, feedback {feedback:g}",
               f"{steps} steps, seed {seed}" + (f', text "{prompt}"' if prompt else "")]
    return _finish(pipe, out, audio, sr, name, f"{_slug(Path(name).stem)}_loop{num_loops}_seed{seed}",
                   f"{num_loops} loops", details, time.perf_counter() - start,
                   pass_frames=out.mask.shape[-1] // num_loops)


# --------------------------------------------------------------------------- page


def preview_for_page(upload, prefix, suffix, periodic, periodic_width, upper_codebook_mask, beat_width, onset_width,
                     dropout, seed):
    """The Show mask button's handler: the grid image and its bit-rate line."""
    result = preview_mask(upload, prefix, suffix, periodic, periodic_width, upper_codebook_mask, beat_width,
                          onset_width, dropout, seed)
    return result.image, result.text


def _page_outputs(result: VampResult):
    for note in result.notes:
        gr.Warning(note)
    return result.audio_path, result.spectrogram, result.grid, result.summary_text, result.audio_path


def vamp_for_page(upload, prefix, suffix, periodic, periodic_width, upper_codebook_mask, beat_width, onset_width,
                  dropout, steps, seed, prompt, progress=gr.Progress()):
    """The Vamp button's handler: :func:`vamp`, notes as warnings, the five outputs as a tuple."""
    return _page_outputs(vamp(upload, prefix, suffix, periodic, periodic_width, upper_codebook_mask, beat_width,
                              onset_width, dropout, steps, seed, prompt, progress=progress))


def loop_for_page(upload, prefix, suffix, periodic, periodic_width, upper_codebook_mask, beat_width, onset_width,
                  dropout, steps, seed, prompt, num_loops, feedback, progress=gr.Progress()):
    """The Loop button's handler: :func:`unloop`, notes as warnings, the five outputs as a tuple."""
    return _page_outputs(unloop(upload, prefix, suffix, periodic, periodic_width, upper_codebook_mask, beat_width,
                                onset_width, dropout, steps, seed, prompt, num_loops, feedback, progress=progress))


def _result_widgets(prefix: str, label: str):
    with gr.Row(equal_height=True):
        with gr.Column():
            player = gr.Audio(label=label, type="filepath", interactive=False, buttons=["download"],
                              elem_id=f"{prefix}-audio")
            grid = gr.Image(label="Token grid of the mask used", show_label=False, type="pil", interactive=False,
                            buttons=["download", "fullscreen"], elem_id=f"{prefix}-grid")
        with gr.Column():
            summary = gr.Markdown(elem_id=f"{prefix}-summary", padding=True)
            spectrogram = gr.Image(label="Spectrograms: input and output", show_label=False, type="pil",
                                   interactive=False, buttons=["download", "fullscreen"],
                                   elem_id=f"{prefix}-spectrogram")
            download = gr.File(label="Download (wav)", interactive=False, elem_id=f"{prefix}-download")
    return [player, spectrogram, grid, summary, download]


def build_demo() -> gr.Blocks:
    """The Space's page. The model loads when the page is built (a missing model: a message, no crash)."""
    folder = model_folder()
    pipe, problem = None, None
    try:
        pipe = load_pipeline(folder)
    except gr.Error as e:
        problem = e.message
    codebooks = coarse_codebooks(pipe) if pipe is not None else DEFAULTS["upper_codebook_mask"]
    text_ok = pipe is not None and has_text_prompt(pipe)
    ready = pipe is not None

    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\n\n{DESCRIPTION}")
        gr.Markdown(model_summary(pipe, folder) if ready else f"**{problem}**", elem_id="model-info")
        with gr.Row():
            with gr.Column(scale=2):
                upload = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Input clip",
                                  elem_id="input-audio")
                gr.Markdown(f"Clips from {MIN_UPLOAD_SECONDS:g} s to {max_upload_seconds():g} s "
                            f"(wav, flac, ogg, opus, mp3, aiff), or a recording.")
                prompt = gr.Textbox(label="Text prompt (optional)", elem_id="prompt", interactive=text_ok,
                                    placeholder="e.g. a jazz trio" if text_ok else "this model has no text condition")
            with gr.Column(scale=3):
                gr.Markdown("**Mask recipe**: the tokens of the input to keep; everything else is generated.")
                with gr.Row():
                    prefix = gr.Number(value=DEFAULTS["prefix"], minimum=0, label="Prefix (s)", elem_id="prefix",
                                       info="keep the start")
                    suffix = gr.Number(value=DEFAULTS["suffix"], minimum=0, label="Suffix (s)", elem_id="suffix",
                                       info="keep the end")
                    periodic = gr.Number(value=DEFAULTS["periodic"], precision=0, minimum=0, label="Periodic prompt",
                                         elem_id="periodic", info="keep a frame every P (0: off)")
                    periodic_width = gr.Number(value=DEFAULTS["periodic_width"], precision=0, minimum=1,
                                               label="Periodic width", elem_id="periodic-width",
                                               info="frames kept each period")
                with gr.Row():
                    upper = gr.Slider(0, codebooks, value=min(DEFAULTS["upper_codebook_mask"], codebooks), step=1,
                                      label="Upper codebook mask", elem_id="upper-codebook-mask",
                                      info=f"codebooks from this one up are generated ({codebooks}: none)")
                    dropout = gr.Slider(0.0, 1.0, value=DEFAULTS["dropout"], step=0.05, label="Dropout",
                                        elem_id="dropout", info="drop kept tokens at random")
                with gr.Row():
                    beat_width = gr.Number(value=DEFAULTS["beat_width"], minimum=0, label="Beat mask width (ms)",
                                           elem_id="beat-width", info="keep after each beat (0: off)")
                    onset_width = gr.Number(value=DEFAULTS["onset_width"], minimum=0, label="Onset mask width (ms)",
                                            elem_id="onset-width", info="keep after each onset (0: off)")
                    steps = gr.Slider(1, 64, value=DEFAULTS["steps"], step=1, label="Steps", elem_id="steps",
                                      info="sampling passes")
                    seed = gr.Number(value=DEFAULTS["seed"], precision=0, minimum=0, label="Seed", elem_id="seed")
                show = gr.Button("Show mask", elem_id="show-mask", interactive=ready)
        with gr.Row(equal_height=True):
            mask_grid = gr.Image(label="Mask: token grid (codebooks × time; blue kept, orange generated)",
                                 show_label=False, type="pil", interactive=False, buttons=["download", "fullscreen"],
                                 elem_id="mask-grid", scale=3)
            mask_info = gr.Markdown(elem_id="mask-info", padding=True)
        recipe = [upload, prefix, suffix, periodic, periodic_width, upper, beat_width, onset_width, dropout]
        with gr.Tabs():
            with gr.Tab("Vamp", id="vamp-tab", elem_id="vamp-tab"):
                run = gr.Button("Vamp", variant="primary", elem_id="vamp", interactive=ready)
                vamp_outputs = _result_widgets("vamped", "Vamped clip")
            with gr.Tab("Loop", id="loop-tab", elem_id="loop-tab"):
                gr.Markdown("Unloop: vamp the clip again and again, each pass from the last; the passes play one "
                            "after another. Feedback is the share of the tokens a pass generated that the next pass keeps "
                            "as prompt: 0 makes each pass a fresh variation around your prompt, values near 1 let the "
                            "loop evolve slowly, 1 repeats the first pass.")
                with gr.Row():
                    num_loops = gr.Slider(1, 16, value=DEFAULTS["num_loops"], step=1, label="Loops", elem_id="loops")
                    feedback = gr.Slider(0.0, 1.0, value=DEFAULTS["feedback"], step=0.05, label="Feedback",
                                         elem_id="feedback")
                loop_run = gr.Button("Loop", variant="primary", elem_id="loop", interactive=ready)
                loop_outputs = _result_widgets("looped", "Looped clip")

        show.click(preview_for_page, inputs=recipe + [seed], outputs=[mask_grid, mask_info], concurrency_limit=1)
        run.click(vamp_for_page, inputs=recipe + [steps, seed, prompt], outputs=vamp_outputs, concurrency_limit=1)
        loop_run.click(loop_for_page, inputs=recipe + [steps, seed, prompt, num_loops, feedback],
                       outputs=loop_outputs, concurrency_limit=1)
    return demo


def main() -> None:
    """``python app.py``: serve on ``$GRADIO_SERVER_NAME`` (default 127.0.0.1), ``$GRADIO_SERVER_PORT`` (7860)."""
    demo_support.launch(build_demo(), OUTPUT_ROOT)
