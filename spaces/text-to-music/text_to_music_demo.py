"""The text-to-music Space's logic: a prompt (and optionally a tune and a clip to continue) in, music out.

Everything the page does is an importable function here, so it is tested without a browser:

* :func:`model_folder` — the pipeline folder: ``$TEXT_TO_MUSIC_MODEL``, else
  ``pipelines/text-to-music`` of the repository (or beside ``app.py`` in a deployed Space).
* :func:`load_pipeline` — ``TextToMusicPipeline.from_pretrained`` once per folder (kept in memory).
* :func:`read_upload` — an uploaded melody / continuation clip as a checked ``(channels, samples)``
  array; unreadable, truncated, silent, too short, too long or NaN uploads raise ``gr.Error`` with a
  one-line message naming the file.
* :func:`generate` — prompt + settings + uploads -> :class:`MusicResult` (a wav file, log-mel
  spectrogram images, a summary text). The pipeline's own one-line ``GeneratorError`` (a prompt
  that is too long, ...) becomes a ``gr.Error``: the person at the page never sees a traceback.
* :func:`build_demo` — the ``gr.Blocks`` page wired to those functions.

Environment: ``TEXT_TO_MUSIC_MODEL`` (the pipeline folder), ``TEXT_TO_MUSIC_MAX_SECONDS`` (longest
generation offered, default 30 s), ``TEXT_TO_MUSIC_MAX_UPLOAD_SECONDS`` (longest upload accepted,
default 60 s). Runs on the CPU; nothing is downloaded at run time.
"""

from __future__ import annotations

import dataclasses
import math
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
from hf_musiccodec.conditioning.musical_attributes import NUM_KEYS, key_name  # noqa: E402

APP_DIR = Path(__file__).resolve().parent
MODEL_ENV = "TEXT_TO_MUSIC_MODEL"
MAX_SECONDS_ENV = "TEXT_TO_MUSIC_MAX_SECONDS"
MAX_UPLOAD_SECONDS_ENV = "TEXT_TO_MUSIC_MAX_UPLOAD_SECONDS"
DEFAULT_MAX_SECONDS = 30.0
DEFAULT_MAX_UPLOAD_SECONDS = 60.0
DEFAULT_SECONDS = 10.0
DEFAULT_GUIDANCE = 3.0
MIN_UPLOAD_SECONDS = 0.5  # the pipeline's MIN_AUDIO_PROMPT_S
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "hf_musiccodec_text_to_music_space"
ROLES = {"melody": "melody", "continuation": "clip to continue"}
KEY_FROM_PROMPT = "from the prompt"
KEY_CHOICES = [key_name(k) for k in range(NUM_KEYS)]  # "C major" ... "B minor"

TITLE = "hf-musiccodec: text to music"
DESCRIPTION = """\
Describe the music you want and press **Generate**. A token language model writes the codes of a
neural audio codec, conditioned on your prompt, and the codec turns them into sound. Optional:
upload a **melody** (a tune whose melody the music follows) and/or a **clip to continue** (the
output starts with it; the duration counts it), and set a **tempo** or a **key** (else those the
prompt states, such as "112 BPM", "fast" or "in D minor", are used). The same prompt, settings and
seed give the same music. The page shows the result with its log-mel spectrogram and a wav file to download.
"""


# --------------------------------------------------------------------------- configuration


def max_seconds() -> float:
    """The longest generation offered: ``$TEXT_TO_MUSIC_MAX_SECONDS`` or 30 s."""
    return demo_support.seconds_from_env(MAX_SECONDS_ENV, DEFAULT_MAX_SECONDS)


def max_upload_seconds() -> float:
    """The longest upload accepted: ``$TEXT_TO_MUSIC_MAX_UPLOAD_SECONDS`` or 60 s."""
    return demo_support.seconds_from_env(MAX_UPLOAD_SECONDS_ENV, DEFAULT_MAX_UPLOAD_SECONDS)


def _load(folder: str):
    from hf_musiccodec import TextToMusicPipeline

    return TextToMusicPipeline.from_pretrained(folder)


_STORE = demo_support.PipelineStore("text-to-music", MODEL_ENV, "text-to-music", APP_DIR, _load)
_LOCK = _STORE.lock  # loading and generating: one at a time (the page queues requests anyway)
_one_line = demo_support.one_line


def model_folder() -> Path:
    """``$TEXT_TO_MUSIC_MODEL``, else the first ``pipelines/text-to-music`` holding a pipeline (the repository's, then one
    beside app.py), else the repository's (which :func:`folder_problem` reports)."""
    return _STORE.default_folder()


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` holds no text-to-music pipeline (one line for the page), or ``None``."""
    return _STORE.problem(folder)


def load_pipeline(folder: str | os.PathLike | None = None):
    """The ``TextToMusicPipeline`` at ``folder`` (default :func:`model_folder`), loaded once, quiet, on the CPU."""
    return _STORE.get_for_page(folder)


def clear_pipeline_cache() -> None:
    _STORE.clear()


def has_clap(pipe) -> bool:
    """Whether ``use_clap`` works with this pipeline (a CLAP model and a conditioner trained with it)."""
    return pipe.clap is not None and bool(pipe.conditioner.config.clap_dim)


def has_melody(pipe) -> bool:
    return bool(pipe.conditioner.config.melody_vocab)


def has_tempo(pipe) -> bool:
    return bool(pipe.conditioner.config.rhythm_vocab)


def has_key(pipe) -> bool:
    return bool(pipe.conditioner.config.key_condition)


def model_summary(pipe, folder: Path) -> str:
    cfg = pipe.codec.config
    channels = "mono" if cfg.audio_channels == 1 else f"{cfg.audio_channels} channels"
    extras = [name for name, ok in (("melody", has_melody(pipe)), ("CLAP text embedding", has_clap(pipe)),
                                    ("tempo", has_tempo(pipe)), ("key", has_key(pipe))) if ok]
    return (f"Model `{folder.name}`: {cfg.sampling_rate / 1000:g} kHz {channels}, {pipe.frame_rate:g} frames/s, "
            f"{pipe.musicgen.decoder.num_codebooks} codebooks, a context of "
            f"{pipe.context_frames / pipe.frame_rate:.1f} s (longer music is generated in overlapping windows)"
            + (f"; conditions: text, {', '.join(extras)}." if extras else "; conditions: text."))


# --------------------------------------------------------------------------- audio in


def read_upload(path: str | os.PathLike, role: str, *, limit_s: float | None = None) -> tuple[np.ndarray, int]:
    """An uploaded ``role`` (``"melody"`` or ``"continuation"``) as float32 ``(channels, samples)``
    and its rate; ``gr.Error`` with a one-line message for an unreadable, truncated, NaN, silent,
    too short or too long upload (at most ``limit_s``, default :func:`max_upload_seconds`)."""
    return demo_support.read_upload(path, min_seconds=MIN_UPLOAD_SECONDS,
                                    max_seconds=max_upload_seconds() if limit_s is None else limit_s,
                                    role=ROLES[role], again="generate again", can_record=False)


# --------------------------------------------------------------------------- generation


@dataclasses.dataclass
class MusicResult:
    """What one generation produces; files live in a fresh folder under :data:`OUTPUT_ROOT`."""

    audio_path: str  # the generated music, 16-bit wav at the model's rate (player and download)
    audio: np.ndarray  # the same as float32 (channels, samples), before 16-bit rounding
    sampling_rate: int
    spectrogram: object  # PIL.Image of the generated music
    reference_spectrogram: object | None  # PIL.Image of the melody / continuation uploads, None without
    summary_text: str
    seconds: float
    seed: int
    notes: list[str]


def _slug(text: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", text.lower())
    return "_".join(words)[:48].strip("_") or "music"


def generate(prompt: str | None, duration: float, guidance: float, seed: int, melody_path=None,
             continuation_path=None, use_clap: bool = False, tempo=None, key=None, *, folder=None,
             progress=None) -> MusicResult:
    """Generate ``duration`` seconds for ``prompt`` with classifier-free ``guidance`` and ``seed``.

    ``melody_path``: an upload whose melody the music follows; ``continuation_path``: an upload the
    music starts with and continues (``duration`` counts it); ``use_clap``: add the prompt's CLAP
    text embedding as a condition; ``tempo`` (BPM; 0 or None: the prompt's) and ``key`` (a name
    such as "D minor"; None or :data:`KEY_FROM_PROMPT`: the prompt's). ``progress``: a
    ``gr.Progress`` (the page's) or ``None``. Raises ``gr.Error`` with a one-line message for every
    mistake of the user's.
    """
    prompt = (prompt or "").strip()
    has_melody_upload, has_continuation = demo_support.given(melody_path), demo_support.given(continuation_path)
    if not prompt and not (has_melody_upload or has_continuation):
        raise gr.Error("Write a prompt (or upload a melody or a clip to continue), then press Generate.",
                       title="No prompt", print_exception=False)
    # (their ranges are checked below)
    duration = demo_support.number_setting(duration, "Duration", low=-math.inf)
    guidance = demo_support.number_setting(guidance, "Guidance", low=-math.inf)
    seed = demo_support.number_setting(seed, "Seed", integer=True, low=-math.inf)
    # 0 or nothing: the prompt's tempo (the pipeline checks the range)
    bpm = (demo_support.number_setting(tempo, "Tempo") if demo_support.given(tempo) else 0.0) or None
    key = None if key in (None, "", KEY_FROM_PROMPT) else str(key)
    limit = max_seconds()
    if not 0 < duration <= limit:
        raise gr.Error(f"Duration must be more than 0 s and at most {limit:g} s, got {duration:g} s.",
                       title="Bad setting", print_exception=False)
    if guidance < 0:
        raise gr.Error(f"Guidance must be 0 or more, got {guidance:g}.", title="Bad setting", print_exception=False)
    if not 0 <= seed < 2**63:
        raise gr.Error(f"Seed must be a whole number from 0 to 2^63 - 1, got {seed}.", title="Bad setting",
                       print_exception=False)

    melody = continuation = None
    if has_melody_upload:
        melody = read_upload(melody_path, "melody")
    if has_continuation:
        continuation = read_upload(continuation_path, "continuation")
        clip_s = continuation[0].shape[-1] / continuation[1]
        if clip_s >= duration:
            raise gr.Error(f"The clip to continue is {clip_s:.2f} s long and the duration counts it: choose a duration "
                           f"longer than {clip_s:.2f} s (or upload a shorter clip).", title="Duration too short",
                           print_exception=False)

    folder = Path(folder).expanduser().resolve() if folder else model_folder()
    pipe = load_pipeline(folder)
    if use_clap and not has_clap(pipe):
        raise gr.Error("This model has no CLAP text embedding: untick 'use CLAP text embedding'.",
                       title="Bad setting", print_exception=False)
    if melody is not None and not has_melody(pipe):
        raise gr.Error("This model was not trained to follow a melody: remove the melody upload.",
                       title="Bad setting", print_exception=False)

    import torch

    from hf_musiccodec.pipelines import GeneratorError

    callback = None
    if progress is not None:
        progress(0.0, desc="generating")

        def callback(pipe_, step, _t, kwargs):
            progress((step + 1, pipe_.num_timesteps), desc="generating", unit="steps")
            return kwargs

    start = time.perf_counter()
    try:
        with _LOCK, torch.inference_mode():
            out = pipe(prompt, audio_length_in_s=float(duration), guidance_scale=float(guidance),
                       generator=torch.Generator().manual_seed(seed),
                       audio_prompt=None if continuation is None else continuation[0],
                       audio_prompt_sampling_rate=None if continuation is None else continuation[1],
                       melody=None if melody is None else melody[0],
                       melody_sampling_rate=None if melody is None else melody[1],
                       use_clap=bool(use_clap), bpm=bpm, key=key, callback_on_step_end=callback)
    except GeneratorError as e:
        raise gr.Error(_one_line(e), title="Cannot generate", print_exception=False) from e
    elapsed = time.perf_counter() - start

    sr = int(pipe.sampling_rate)
    audio = np.asarray(out.audios[0], dtype=np.float32)
    notes: list[str] = []
    if not np.isfinite(audio).all():
        raise gr.Error("The model produced invalid audio (NaN); try another seed.", title="Generation failed",
                       print_exception=False)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 1.0:
        notes.append(f"The generated audio peaked at {peak:.2f}; it was clipped to [-1, 1] in the wav.")
    if is_silent(audio):
        notes.append("The generated audio is (nearly) silent; try another prompt or seed.")

    out_dir = demo_support.new_output_dir(OUTPUT_ROOT)
    stem = f"{_slug(prompt)}_seed{seed}"
    audio_path = save_audio(out_dir / f"{stem}.wav", np.clip(audio, -1.0, 1.0), sr)  # atomic

    seconds = audio.shape[-1] / sr
    clip_s = None if continuation is None else continuation[0].shape[-1] / continuation[1]
    melody_name = None if melody is None else demo_support.display_name(Path(melody_path))
    continuation_name = None if continuation is None else demo_support.display_name(Path(continuation_path))
    mel = demo_support.log_mel(audio, sr)
    references: list[tuple[str, np.ndarray]] = []
    if melody is not None:
        references.append((f"melody '{melody_name}'", melody))
    if continuation is not None:
        references.append((f"clip to continue '{continuation_name}'", continuation))
    reference_mels = [(label, demo_support.log_mel(x, rate), rate) for label, (x, rate) in references]
    vmin, vmax = demo_support.color_range(mel, *(m for _, m, _ in reference_mels))
    title = f"generated, seed {seed} (log-mel)" + (", dashed: end of the continued clip" if clip_s else "")
    image = demo_support.spectrogram_image(mel, sr, title, vmin, vmax, marker_s=clip_s)
    reference_image = None
    if reference_mels:
        reference_image = demo_support.spectrogram_panels(
            [(m, rate, f"{label} (log-mel)", None) for label, m, rate in reference_mels], vmin, vmax)

    conditions = [f'text "{prompt}"' if prompt else "no text (empty prompt)"]
    if melody is not None:
        conditions.append(f"the melody of '{melody_name}'")
    if continuation is not None:
        conditions.append(f"continuing '{continuation_name}' ({clip_s:.2f} s)")
    if use_clap:
        conditions.append("the prompt's CLAP text embedding")
    if bpm is not None:
        conditions.append(f"tempo {bpm:g} BPM")
    if key is not None:
        conditions.append(f"key {key}")
    channels = {1: "mono", 2: "stereo"}.get(audio.shape[0], f"{audio.shape[0]} channels")
    summary_text = (
        f"**Generated {seconds:.2f} s** at {sr} Hz {channels} in {elapsed:.1f} s "
        f"({seconds / elapsed if elapsed > 0 else float('inf'):.2f}× real time)\n\n"
        f"- conditions: {', '.join(conditions)}\n"
        f"- guidance {guidance:g}, seed {seed}: the same settings give the same music\n"
        f"- download: `{audio_path.name}` (16-bit wav)"
    )
    return MusicResult(audio_path=str(audio_path), audio=audio, sampling_rate=sr, spectrogram=image,
                       reference_spectrogram=reference_image, summary_text=summary_text, seconds=seconds, seed=seed,
                       notes=notes)


def run_for_page(prompt, duration, guidance, seed, melody_path, continuation_path, use_clap, tempo, key,
                 progress=gr.Progress()):
    """The Generate button's handler: :func:`generate`, notes shown as warnings, outputs as a tuple."""
    result = generate(prompt, duration, guidance, seed, melody_path, continuation_path, use_clap, tempo, key,
                      progress=progress)
    for note in result.notes:
        gr.Warning(note)
    return (result.audio_path, result.spectrogram, result.reference_spectrogram, result.summary_text,
            result.audio_path)


def build_demo() -> gr.Blocks:
    """The Space's page. The model loads when the page is built (a missing model: a message, no crash)."""
    folder = model_folder()
    pipe, problem = None, None
    try:
        pipe = load_pipeline(folder)
    except gr.Error as e:
        problem = e.message
    limit = max_seconds()
    clap_ok = pipe is not None and has_clap(pipe)
    melody_ok = pipe is None or has_melody(pipe)
    tempo_ok = pipe is not None and has_tempo(pipe)
    key_ok = pipe is not None and has_key(pipe)

    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\n\n{DESCRIPTION}")
        gr.Markdown(model_summary(pipe, folder) if pipe is not None else f"**{problem}**", elem_id="model-info")
        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(label="Prompt", lines=2, elem_id="prompt",
                                    placeholder="a slow waltz for piano in D minor")
                with gr.Row():
                    duration = gr.Slider(0.5, limit, value=min(DEFAULT_SECONDS, limit), step=0.5,
                                         label="Duration (s)", elem_id="duration")
                    guidance = gr.Slider(0.0, 10.0, value=DEFAULT_GUIDANCE, step=0.5, label="Guidance",
                                         info="classifier-free guidance; 0 = none", elem_id="guidance")
                    seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="seed")
                use_clap = gr.Checkbox(value=False, label="use CLAP text embedding", elem_id="use-clap",
                                       interactive=clap_ok,
                                       info="adds the prompt's CLAP text embedding as a condition" if clap_ok
                                       else "this model has no CLAP text embedding")
                with gr.Row():
                    tempo = gr.Number(value=0, precision=1, minimum=0, label="Tempo (BPM)", elem_id="tempo",
                                      interactive=tempo_ok,
                                      info="0: the tempo the prompt states, if any" if tempo_ok
                                      else "this model has no tempo condition")
                    key = gr.Dropdown([KEY_FROM_PROMPT] + KEY_CHOICES, value=KEY_FROM_PROMPT, label="Key",
                                      elem_id="key", interactive=key_ok,
                                      info="or the key the prompt states" if key_ok else "this model has no key condition")
            with gr.Column(scale=2):
                melody = gr.Audio(sources=["upload"], type="filepath", label="Melody (optional)",
                                  elem_id="melody", interactive=melody_ok)
                continuation = gr.Audio(sources=["upload"], type="filepath",
                                        label="Clip to continue (optional; the duration counts it)",
                                        elem_id="continuation")
                gr.Markdown(f"Uploads from {MIN_UPLOAD_SECONDS:g} s to {max_upload_seconds():g} s.")
                run = gr.Button("Generate", variant="primary", elem_id="generate", interactive=pipe is not None)
        with gr.Row(equal_height=True):
            with gr.Column():
                generated = gr.Audio(label="Generated music", type="filepath", interactive=False,
                                     buttons=["download"], elem_id="generated")
                spectrogram = gr.Image(label="Spectrogram of the generated music", show_label=False, type="pil",
                                       interactive=False, buttons=["download", "fullscreen"],
                                       elem_id="generated-spectrogram")
            with gr.Column():
                summary = gr.Markdown(elem_id="summary", padding=True)
                reference_spectrogram = gr.Image(label="Spectrogram of the uploads", show_label=False, type="pil",
                                                 interactive=False, buttons=["download", "fullscreen"],
                                                 elem_id="reference-spectrogram")
                download = gr.File(label="Download (wav)", interactive=False, elem_id="download")

        run.click(run_for_page, inputs=[prompt, duration, guidance, seed, melody, continuation, use_clap, tempo, key],
                  outputs=[generated, spectrogram, reference_spectrogram, summary, download],
                  concurrency_limit=1)
    return demo


def main() -> None:
    """``python app.py``: serve on ``$GRADIO_SERVER_NAME`` (default 127.0.0.1), ``$GRADIO_SERVER_PORT`` (7860)."""
    demo_support.launch(build_demo(), OUTPUT_ROOT)
