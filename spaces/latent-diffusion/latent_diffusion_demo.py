"""The latent diffusion Space's logic: a prompt (and optionally a clip to transform or inpaint) in, music out.

Everything the page does is an importable function here, so it is tested without a browser:

* :func:`model_folder` — the pipeline folder: ``$LATENT_DIFFUSION_MODEL``, else
  ``pipelines/music-diffusion`` of the repository (or beside ``app.py`` in a deployed Space).
* :func:`load_pipeline` — the ``MusicDiffusionPipeline`` (``load_generator``) once per folder (kept in memory).
* :func:`read_upload` — an uploaded or recorded clip as a checked ``(channels, samples)`` array;
  unreadable, truncated, silent, too short, too long or NaN uploads raise ``gr.Error`` with a
  one-line message naming the file.
* :func:`generate` (the Generate tab), :func:`audio_to_audio` (the Audio-to-audio tab) and
  :func:`inpaint` (the Inpainting tab) -> :class:`DiffusionResult` (a wav file, a log-mel picture of
  the input, if any, and of the output, a summary with the CLAP score when candidates were ranked).
  The pipeline's own one-line ``GeneratorError`` (a prompt that is too long, ...) becomes a
  ``gr.Error``: the person at the page never sees a traceback.
* :func:`build_demo` — the ``gr.Blocks`` page wired to those functions.

The samplers offered are the ``hf-musiccodec diffuse`` command's (:data:`SCHEDULERS`, DPM-Solver++ by
default), built from the pipeline's saved scheduler config for each request.

Environment: ``LATENT_DIFFUSION_MODEL`` (the pipeline folder), ``LATENT_DIFFUSION_MAX_SECONDS``
(longest generation offered, default 30 s), ``LATENT_DIFFUSION_MAX_UPLOAD_SECONDS`` (longest
upload accepted, default 60 s). Runs on the CPU; nothing is downloaded at run time.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tempfile
import time
import weakref
from pathlib import Path

from hf_musiccodec import demo_support

demo_support.quiet_offline_environment()

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from hf_musiccodec.audio.io import is_silent, save_audio  # noqa: E402
from hf_musiccodec.cli.diffuse_command import SCHEDULERS  # noqa: E402  (the samplers the CLI offers)

APP_DIR = Path(__file__).resolve().parent
MODEL_ENV = "LATENT_DIFFUSION_MODEL"
MAX_SECONDS_ENV = "LATENT_DIFFUSION_MAX_SECONDS"
MAX_UPLOAD_SECONDS_ENV = "LATENT_DIFFUSION_MAX_UPLOAD_SECONDS"
DEFAULT_MAX_SECONDS = 30.0
DEFAULT_MAX_UPLOAD_SECONDS = 60.0
MIN_UPLOAD_SECONDS = 0.5
MAX_STEPS = 200
MAX_CANDIDATES = 8
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "hf_musiccodec_latent_diffusion_space"
# How the page names the CLI's samplers (the keys of SCHEDULERS).
SCHEDULER_LABELS = {"dpm": "DPM-Solver++", "ddim": "DDIM", "euler": "Euler"}
DEFAULTS = dict(duration=10.0, steps=25, guidance=3.0, scheduler="dpm", seed=0, candidates=1, strength=0.6,
                inpaint_start=2.0, inpaint_end=4.0)

TITLE = "hf-musiccodec: latent diffusion"
DESCRIPTION = """\
Describe the music you want and press a button. A diffusion U-Net denoises the latents of a neural
audio codec, guided by the CLAP embedding of your prompt, and the codec's decoder turns them into
sound. **Generate** makes new music; **Audio-to-audio** re-noises an uploaded or recorded clip
(**strength**: how much of it) and denoises it toward the prompt; **Inpainting** regenerates a time
range of a clip and keeps the rest. **Candidates** > 1 generates several and keeps the one whose CLAP
audio embedding is nearest the prompt (its CLAP score is shown). The same prompt, settings and seed
give the same music.
"""


# --------------------------------------------------------------------------- configuration


def max_seconds() -> float:
    """The longest generation offered: ``$LATENT_DIFFUSION_MAX_SECONDS`` or 30 s."""
    return demo_support.seconds_from_env(MAX_SECONDS_ENV, DEFAULT_MAX_SECONDS)


def max_upload_seconds() -> float:
    """The longest upload accepted: ``$LATENT_DIFFUSION_MAX_UPLOAD_SECONDS`` or 60 s."""
    return demo_support.seconds_from_env(MAX_UPLOAD_SECONDS_ENV, DEFAULT_MAX_UPLOAD_SECONDS)


def _load(folder: str):
    from hf_musiccodec import MusicDiffusionPipeline
    from hf_musiccodec.pipelines import GeneratorError, load_generator

    pipe = load_generator(folder)
    if not isinstance(pipe, MusicDiffusionPipeline):
        raise GeneratorError(f"the folder holds a {type(pipe).__name__}, not a MusicDiffusionPipeline")
    return pipe


_STORE = demo_support.PipelineStore("latent diffusion", MODEL_ENV, "music-diffusion", APP_DIR, _load)
_LOCK = _STORE.lock  # loading and generating: one at a time (the page queues requests anyway)
_one_line = demo_support.one_line
_error = demo_support.page_error
_number = demo_support.number_setting
_SAVED_SCHEDULERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pipe -> its saved scheduler config


def model_folder() -> Path:
    """``$LATENT_DIFFUSION_MODEL``, else the first ``pipelines/music-diffusion`` holding a pipeline (the
    repository's, then one beside app.py), else the repository's (which :func:`folder_problem` reports)."""
    return _STORE.default_folder()


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` holds no latent diffusion pipeline (one line for the page), or ``None``."""
    return _STORE.problem(folder)


def load_pipeline(folder: str | os.PathLike | None = None):
    """The ``MusicDiffusionPipeline`` at ``folder`` (default :func:`model_folder`), loaded once, quiet, on the CPU."""
    return _STORE.get_for_page(folder)


def clear_pipeline_cache() -> None:
    _STORE.clear()


def use_scheduler(pipe, key: str):
    """Give ``pipe`` the sampler ``key`` (of :data:`SCHEDULERS`), built from the scheduler config the
    pipeline was saved with (so switching back and forth loses none of its settings)."""
    import diffusers

    base = _SAVED_SCHEDULERS.setdefault(pipe, pipe.scheduler.config)
    pipe.scheduler = getattr(diffusers, SCHEDULERS[key]).from_config(base)
    return pipe.scheduler


def model_summary(pipe, folder: Path) -> str:
    cfg = pipe.codec.config
    channels = "mono" if cfg.audio_channels == 1 else f"{cfg.audio_channels} channels"
    params = sum(p.numel() for p in pipe.unet.parameters())
    saved = _SAVED_SCHEDULERS.get(pipe, pipe.scheduler.config)
    return (f"Model `{folder.name}`: {cfg.sampling_rate / 1000:g} kHz {channels}; a U-Net of {params / 1e6:.1f} M "
            f"parameters denoises the codec's {cfg.hidden_size}-dimensional latents ({pipe.frame_rate:g} frames/s, "
            f"{pipe.layout.patch} per column), conditioned on CLAP text embeddings (prompts of at most "
            f"{pipe.clap.config.text_max_length} tokens); trained with {saved['prediction_type']} over "
            f"{saved['num_train_timesteps']} timesteps.")


# --------------------------------------------------------------------------- audio in


def read_upload(path, *, missing: str = "Upload or record a clip first.",
                limit_s: float | None = None) -> tuple[np.ndarray, int]:
    """An uploaded or recorded clip as float32 ``(channels, samples)`` and its rate; ``gr.Error``
    with a one-line message (``missing`` when there is none) for a missing, unreadable, truncated,
    NaN, silent, too short or too long one (at most ``limit_s``, default :func:`max_upload_seconds`)."""
    return demo_support.read_upload(path, min_seconds=MIN_UPLOAD_SECONDS, missing=missing,
                                    max_seconds=max_upload_seconds() if limit_s is None else limit_s)


# --------------------------------------------------------------------------- settings


@dataclasses.dataclass
class Settings:
    """What the three tabs share, checked."""

    prompt: str
    negative_prompt: str | None
    steps: int
    guidance: float
    scheduler: str  # a key of SCHEDULERS
    seed: int
    candidates: int

    def lines(self) -> list[str]:
        text = f'text "{self.prompt}"' if self.prompt else "no text (unconditional)"
        if self.negative_prompt:
            text += f', negative "{self.negative_prompt}"'
        return [f"prompt: {text}",
                f"{SCHEDULER_LABELS[self.scheduler]}, {self.steps} steps, guidance {self.guidance:g}, seed {self.seed}"
                f": the same settings give the same music"]


def check_settings(prompt, negative_prompt, steps, guidance, scheduler, seed, candidates) -> Settings:
    """The shared settings as a :class:`Settings`; ``gr.Error`` with a one-line message for a bad one."""
    prompt = (prompt or "").strip()
    negative_prompt = (negative_prompt or "").strip() or None
    steps = _number(steps, "Steps", integer=True, low=1, high=MAX_STEPS)
    guidance = _number(guidance, "Guidance")
    if scheduler not in SCHEDULERS:
        raise _error(f"Scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}.", "Bad setting")
    seed = demo_support.seed_setting(seed)
    candidates = _number(candidates, "Candidates", integer=True, low=1, high=MAX_CANDIDATES)
    if candidates > 1 and not prompt:
        raise _error("Candidates are ranked by their CLAP score against the prompt: write a prompt or set "
                     "Candidates to 1.", "Bad setting")
    return Settings(prompt, negative_prompt, steps, guidance, scheduler, seed, candidates)


# --------------------------------------------------------------------------- generation


@dataclasses.dataclass
class DiffusionResult:
    """What one request produces; files live in a fresh folder under :data:`OUTPUT_ROOT`."""

    audio_path: str  # 16-bit wav at the model's rate (player and download)
    audio: np.ndarray  # the same as float32 (channels, samples), before 16-bit rounding
    sampling_rate: int
    spectrogram: object  # PIL.Image: log-mel of the input (if any) and of the output
    summary_text: str
    seconds: float
    seed: int
    clap_score: float | None  # of the kept output, when candidates were ranked
    notes: list[str]


def _slug(text: str, default: str) -> str:
    return "_".join(re.findall(r"[A-Za-z0-9]+", text.lower()))[:48].strip("_") or default


def _progress_callback(progress, what: str):
    if progress is None:
        return None
    progress(0.0, desc=what)

    def callback(pipe_, step, _t, kwargs):
        progress((step + 1, pipe_.num_timesteps), desc=what, unit="steps")
        return kwargs

    return callback


def _run(settings: Settings, progress, what: str, folder, **kwargs):
    """The pipeline called with ``settings`` and ``kwargs``: ``(pipe, output, steps run, seconds taken)``."""
    pipe = load_pipeline(folder)
    import torch

    from hf_musiccodec.pipelines import GeneratorError

    callback = _progress_callback(progress, what)
    start = time.perf_counter()
    try:
        with _LOCK, torch.inference_mode():
            use_scheduler(pipe, settings.scheduler)
            out = pipe(settings.prompt, negative_prompt=settings.negative_prompt,
                       num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                       num_candidates=settings.candidates, generator=torch.Generator().manual_seed(settings.seed),
                       callback_on_step_end=callback, **kwargs)
            steps_run = pipe.num_timesteps
    except GeneratorError as e:
        raise _error(_one_line(e), "Cannot generate") from e
    return pipe, out, steps_run, time.perf_counter() - start


def _finish(pipe, out, settings: Settings, stem: str, title: str, details: list[str], elapsed: float,
            panels) -> DiffusionResult:
    """Write the wav, draw ``panels(mel_out, sr) -> [(mel, rate, title, marker_s)]``, and sum up."""
    sr = int(pipe.sampling_rate)
    audio = np.asarray(out.audios[0], dtype=np.float32)
    if not np.isfinite(audio).all():
        raise _error("The model produced invalid audio (NaN); try another seed.", "Generation failed")
    notes: list[str] = []
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 1.0:
        notes.append(f"The generated audio peaked at {peak:.2f}; it was clipped to [-1, 1] in the wav.")
    if is_silent(audio):
        notes.append("The generated audio is (nearly) silent; try another prompt or seed.")
    if settings.negative_prompt and settings.guidance <= 1:
        notes.append("The negative prompt has no effect with guidance 1 or less (no classifier-free guidance).")
    out_dir = demo_support.new_output_dir(OUTPUT_ROOT)
    audio_path = save_audio(out_dir / f"{stem}.wav", np.clip(audio, -1.0, 1.0), sr)  # atomic

    pictures = panels(demo_support.log_mel(audio, sr), sr)
    vmin, vmax = demo_support.color_range(*(mel for mel, *_ in pictures))
    spectrogram = demo_support.spectrogram_panels(pictures, vmin, vmax)

    clap_score = None
    lines = settings.lines() + details
    if out.clap_scores is not None and settings.candidates > 1:
        clap_score = float(np.asarray(out.clap_scores).reshape(-1)[0])
        lines.append(f"**CLAP score {clap_score:.3f}**: the best of {settings.candidates} candidates")
    seconds = audio.shape[-1] / sr
    channels = {1: "mono", 2: "stereo"}.get(audio.shape[0], f"{audio.shape[0]} channels")
    summary = (f"**{title}: {seconds:.2f} s** at {sr} Hz {channels} in {elapsed:.1f} s "
               f"({seconds / elapsed if elapsed > 0 else float('inf'):.2f}× real time)\n\n"
               + "".join(f"- {line}\n" for line in lines)
               + f"- download: `{audio_path.name}` (16-bit wav)")
    return DiffusionResult(audio_path=str(audio_path), audio=audio, sampling_rate=sr, spectrogram=spectrogram,
                           summary_text=summary, seconds=seconds, seed=settings.seed, clap_score=clap_score,
                           notes=notes)


def generate(prompt, negative_prompt=None, duration=DEFAULTS["duration"], steps=DEFAULTS["steps"],
             guidance=DEFAULTS["guidance"], scheduler=DEFAULTS["scheduler"], seed=DEFAULTS["seed"],
             candidates=DEFAULTS["candidates"], *, folder=None, progress=None) -> DiffusionResult:
    """``duration`` seconds of new music for ``prompt`` (the Generate tab). ``progress``: a
    ``gr.Progress`` (the page's) or ``None``. Raises ``gr.Error`` with a one-line message for every
    mistake of the user's."""
    settings = check_settings(prompt, negative_prompt, steps, guidance, scheduler, seed, candidates)
    duration = _number(duration, "Duration")
    limit = max_seconds()
    if not 0 < duration <= limit:
        raise _error(f"Duration must be more than 0 s and at most {limit:g} s, got {duration:g} s.", "Bad setting")
    pipe, out, _, elapsed = _run(settings, progress, "generating", folder, audio_length_in_s=float(duration))
    return _finish(pipe, out, settings, f"{_slug(settings.prompt, 'music')}_seed{settings.seed}", "Generated", [],
                   elapsed, lambda mel, sr: [(mel, sr, f"generated, seed {settings.seed} (log-mel)", None)])


def audio_to_audio(upload, prompt, strength=DEFAULTS["strength"], negative_prompt=None, steps=DEFAULTS["steps"],
                   guidance=DEFAULTS["guidance"], scheduler=DEFAULTS["scheduler"], seed=DEFAULTS["seed"],
                   candidates=DEFAULTS["candidates"], *, folder=None, progress=None) -> DiffusionResult:
    """``upload`` re-noised to the last ``strength`` share of the schedule and denoised toward
    ``prompt`` (the Audio-to-audio tab); the output is as long as the clip."""
    settings = check_settings(prompt, negative_prompt, steps, guidance, scheduler, seed, candidates)
    strength = _number(strength, "Strength", low=-math.inf)
    if not 0 < strength <= 1:
        raise _error(f"Strength must be more than 0 and at most 1, got {strength:g}.", "Bad setting")
    audio, sr = read_upload(upload)
    name = demo_support.display_name(Path(upload))
    pipe, out, steps_run, elapsed = _run(settings, progress, "transforming", folder, audio=audio, sampling_rate=sr,
                                         strength=float(strength))
    details = [f"from '{name}' at strength {strength:g}: the last {steps_run} of {settings.steps} steps, "
               f"starting from the clip noised"]
    return _finish(pipe, out, settings, f"{_slug(Path(name).stem, 'clip')}_a2a_seed{settings.seed}", "Audio-to-audio",
                   details, elapsed,
                   lambda mel, rate: [(demo_support.log_mel(audio, sr), sr, f"input '{name}' (log-mel)", None),
                                      (mel, rate, f"audio-to-audio, strength {strength:g} (log-mel)", None)])


def inpaint(upload, prompt, start=DEFAULTS["inpaint_start"], end=DEFAULTS["inpaint_end"], negative_prompt=None,
            steps=DEFAULTS["steps"], guidance=DEFAULTS["guidance"], scheduler=DEFAULTS["scheduler"],
            seed=DEFAULTS["seed"], candidates=DEFAULTS["candidates"], *, folder=None, progress=None) -> DiffusionResult:
    """``upload`` with the range ``start``..``end`` seconds regenerated for ``prompt`` and the rest kept
    (the Inpainting tab); an end past the clip's end regenerates to its end."""
    settings = check_settings(prompt, negative_prompt, steps, guidance, scheduler, seed, candidates)
    start = _number(start, "Start (s)")
    end = _number(end, "End (s)")
    if end <= start:
        raise _error(f"The range to regenerate must end after it starts, got {start:g} s to {end:g} s.",
                     "Bad setting")
    audio, sr = read_upload(upload, missing="Upload a clip to inpaint first.")
    name = demo_support.display_name(Path(upload))
    clip_s = audio.shape[-1] / sr
    if start >= clip_s:
        raise _error(f"The range to regenerate starts at {start:g} s, after the end of '{name}' ({clip_s:.2f} s): "
                     f"choose an earlier start.", "Bad setting")
    end = min(end, clip_s)
    pipe, out, _, elapsed = _run(settings, progress, "inpainting", folder, audio=audio, sampling_rate=sr,
                                 inpaint_start_s=float(start), inpaint_end_s=float(end))
    details = [f"regenerated {start:.2f}–{end:.2f} s of '{name}' ({clip_s:.2f} s), the rest kept"]
    # demo_support draws one dashed line a panel: the range's start on the input, its end on the output
    return _finish(pipe, out, settings, f"{_slug(Path(name).stem, 'clip')}_inpaint_seed{settings.seed}", "Inpainted",
                   details, elapsed,
                   lambda mel, rate: [(demo_support.log_mel(audio, sr), sr,
                                       f"input '{name}' (log-mel), dashed: start of the range {start:.2f} s", start),
                                      (mel, rate, f"inpainted (log-mel), dashed: end of the range {end:.2f} s", end)])


# --------------------------------------------------------------------------- page


def _page_outputs(result: DiffusionResult):
    for note in result.notes:
        gr.Warning(note)
    return result.audio_path, result.spectrogram, result.summary_text, result.audio_path


def generate_for_page(prompt, negative_prompt, steps, guidance, scheduler, seed, candidates, duration,
                      progress=gr.Progress()):
    """The Generate button's handler: :func:`generate`, notes as warnings, the four outputs as a tuple."""
    return _page_outputs(generate(prompt, negative_prompt, duration, steps, guidance, scheduler, seed, candidates,
                                  progress=progress))


def audio_to_audio_for_page(prompt, negative_prompt, steps, guidance, scheduler, seed, candidates, upload, strength,
                            progress=gr.Progress()):
    """The Transform button's handler: :func:`audio_to_audio`, notes as warnings, the four outputs."""
    return _page_outputs(audio_to_audio(upload, prompt, strength, negative_prompt, steps, guidance, scheduler, seed,
                                        candidates, progress=progress))


def inpaint_for_page(prompt, negative_prompt, steps, guidance, scheduler, seed, candidates, upload, start, end,
                     progress=gr.Progress()):
    """The Inpaint button's handler: :func:`inpaint`, notes as warnings, the four outputs."""
    return _page_outputs(inpaint(upload, prompt, start, end, negative_prompt, steps, guidance, scheduler, seed,
                                 candidates, progress=progress))


def _result_widgets(prefix: str, label: str, spectrogram_label: str):
    with gr.Row(equal_height=True):
        with gr.Column():
            player = gr.Audio(label=label, type="filepath", interactive=False, buttons=["download"],
                              elem_id=f"{prefix}-audio")
            spectrogram = gr.Image(label=spectrogram_label, show_label=False, type="pil", interactive=False,
                                   buttons=["download", "fullscreen"], elem_id=f"{prefix}-spectrogram")
        with gr.Column():
            summary = gr.Markdown(elem_id=f"{prefix}-summary", padding=True)
            download = gr.File(label="Download (wav)", interactive=False, elem_id=f"{prefix}-download")
    return [player, spectrogram, summary, download]


def build_demo() -> gr.Blocks:
    """The Space's page. The model loads when the page is built (a missing model: a message, no crash)."""
    folder = model_folder()
    pipe, problem = None, None
    try:
        pipe = load_pipeline(folder)
    except gr.Error as e:
        problem = e.message
    ready = pipe is not None
    limit = max_seconds()
    uploads = f"Clips from {MIN_UPLOAD_SECONDS:g} s to {max_upload_seconds():g} s (wav, flac, ogg, opus, mp3, aiff)"

    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\n\n{DESCRIPTION}")
        gr.Markdown(model_summary(pipe, folder) if ready else f"**{problem}**", elem_id="model-info")
        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(label="Prompt", lines=2, elem_id="prompt",
                                    placeholder="a slow chorale for strings")
                negative = gr.Textbox(label="Negative prompt (optional)", elem_id="negative-prompt",
                                      placeholder="what to steer away from, e.g. drums")
            with gr.Column(scale=2):
                with gr.Row():
                    steps = gr.Slider(1, MAX_STEPS, value=DEFAULTS["steps"], step=1, label="Steps",
                                      elem_id="steps", info="denoising steps")
                    guidance = gr.Slider(0.0, 10.0, value=DEFAULTS["guidance"], step=0.5, label="Guidance",
                                         elem_id="guidance", info="classifier-free guidance; 1 or less = none")
                with gr.Row():
                    scheduler = gr.Dropdown([(SCHEDULER_LABELS[key], key) for key in SCHEDULERS],
                                            value=DEFAULTS["scheduler"], label="Scheduler", elem_id="scheduler")
                    seed = gr.Number(value=DEFAULTS["seed"], precision=0, minimum=0, label="Seed", elem_id="seed")
                    candidates = gr.Slider(1, MAX_CANDIDATES, value=DEFAULTS["candidates"], step=1,
                                           label="Candidates", elem_id="candidates",
                                           info="keep the best by CLAP score")
        shared = [prompt, negative, steps, guidance, scheduler, seed, candidates]
        with gr.Tabs():
            with gr.Tab("Generate", id="generate-tab", elem_id="generate-tab"):
                with gr.Row(equal_height=True):
                    duration = gr.Slider(0.5, limit, value=min(DEFAULTS["duration"], limit), step=0.5,
                                         label="Duration (s)", elem_id="duration", scale=3)
                    run = gr.Button("Generate", variant="primary", elem_id="generate", interactive=ready, scale=1)
                generate_outputs = _result_widgets("generated", "Generated music", "Spectrogram of the output")
            with gr.Tab("Audio-to-audio", id="a2a-tab", elem_id="a2a-tab"):
                with gr.Row(equal_height=True):
                    a2a_input = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Clip to transform",
                                         elem_id="a2a-input", scale=3)
                    with gr.Column(scale=2):
                        gr.Markdown(f"{uploads}, or a recording. The output is as long as the clip.")
                        strength = gr.Slider(0.05, 1.0, value=DEFAULTS["strength"], step=0.05, label="Strength",
                                             elem_id="strength", info="how much of the clip is re-noised (1: all)")
                        transform = gr.Button("Transform", variant="primary", elem_id="transform", interactive=ready)
                a2a_outputs = _result_widgets("transformed", "Transformed clip", "Spectrograms: input and output")
            with gr.Tab("Inpainting", id="inpaint-tab", elem_id="inpaint-tab"):
                with gr.Row(equal_height=True):
                    inpaint_input = gr.Audio(sources=["upload"], type="filepath", label="Clip to inpaint",
                                             elem_id="inpaint-input", scale=3)
                    with gr.Column(scale=2):
                        gr.Markdown(f"{uploads}. The range from **start** to **end** is regenerated, the rest kept.")
                        with gr.Row():
                            start = gr.Number(value=DEFAULTS["inpaint_start"], minimum=0, label="Start (s)",
                                              elem_id="inpaint-start")
                            end = gr.Number(value=DEFAULTS["inpaint_end"], minimum=0, label="End (s)",
                                            elem_id="inpaint-end")
                        inpaint_run = gr.Button("Inpaint", variant="primary", elem_id="inpaint", interactive=ready)
                inpaint_outputs = _result_widgets("inpainted", "Inpainted clip", "Spectrograms: input and output")

        run.click(generate_for_page, inputs=shared + [duration], outputs=generate_outputs, concurrency_limit=1)
        transform.click(audio_to_audio_for_page, inputs=shared + [a2a_input, strength], outputs=a2a_outputs,
                        concurrency_limit=1)
        inpaint_run.click(inpaint_for_page, inputs=shared + [inpaint_input, start, end], outputs=inpaint_outputs,
                          concurrency_limit=1)
    return demo


def main() -> None:
    """``python app.py``: serve on ``$GRADIO_SERVER_NAME`` (default 127.0.0.1), ``$GRADIO_SERVER_PORT`` (7860)."""
    demo_support.launch(build_demo(), OUTPUT_ROOT)
