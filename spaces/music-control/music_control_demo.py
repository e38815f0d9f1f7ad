"""The music control Space's logic: Music ControlNet (controls taken from a reference) and DITTO
(a drawn loudness curve reached by optimising the initial noise).

Everything the page does is an importable function here, so it is tested without a browser:

* :func:`load_controlnet` / :func:`load_ditto` — the pipelines (``$MUSIC_CONTROL_MODEL``, else
  ``pipelines/music-controlnet``; ``$DITTO_MODEL``, else ``pipelines/ditto``), loaded once.
* :func:`controlnet_generate` (the ControlNet tab) -> :class:`ControlResult`: the output wav, the
  reference's and the output's kept control curves plotted over each other, a summary.
* :func:`ditto_generate` (the DITTO tab) -> :class:`DittoResult`: the output wav, the target loudness
  against the output's, and the objective's loss per optimisation step.
* :func:`build_demo` — the ``gr.Blocks`` page wired to them.

Bad uploads and settings, and the pipelines' own one-line ``GeneratorError``, become a ``gr.Error``
with one line (``hf_musiccodec.demo_support``): the person at the page never sees a traceback.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from hf_musiccodec import demo_support

demo_support.quiet_offline_environment()

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from hf_musiccodec.audio.io import save_audio  # noqa: E402

APP_DIR = Path(__file__).resolve().parent
CONTROLNET_ENV = "MUSIC_CONTROL_MODEL"
DITTO_ENV = "DITTO_MODEL"
MIN_UPLOAD_SECONDS = 0.5
MAX_UPLOAD_SECONDS = 30.0
MAX_SECONDS = 30.0
MAX_STEPS = 200
MAX_OPTIMIZATION_STEPS = 100
CONTROL_NAMES = ("melody", "dynamics", "rhythm")
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "hf_musiccodec_music_control_space"
# strength 2: the bundled ControlNet follows melody and rhythm better there at no loss of quality (its card)
DEFAULTS = dict(steps=25, guidance=3.0, strength=2.0, seed=0, start=0.0, end=30.0, duration=5.0,
                optimization_steps=10, lr=0.05, curve="-40, -25, -10, -30")

TITLE = "hf-musiccodec: music control"
DESCRIPTION = """\
**ControlNet**: upload or record a reference, pick the controls to keep (melody, dynamics, rhythm)
and the time range where they apply (outside it the model is free), and hear the result beside the
reference, with the reference's and the output's control curves plotted over each other.
**DITTO**: draw a loudness curve (dB values, comma-separated, spread over the duration); the initial
noise is optimised until the generation follows it, and the objective's loss is plotted per step.
"""

_one_line = demo_support.one_line
_error = demo_support.page_error
_number = demo_support.number_setting


def _loader(cls_name: str):
    def load(folder: str):
        import hf_musiccodec
        from hf_musiccodec.pipelines import GeneratorError, load_generator

        pipe = load_generator(folder)
        if not isinstance(pipe, getattr(hf_musiccodec, cls_name)):
            raise GeneratorError(f"the folder holds a {type(pipe).__name__}, not a {cls_name}")
        return pipe

    return load


_CONTROLNET = demo_support.PipelineStore("Music ControlNet", CONTROLNET_ENV, "music-controlnet", APP_DIR,
                                         _loader("MusicControlNetPipeline"))
_DITTO = demo_support.PipelineStore("DITTO", DITTO_ENV, "ditto", APP_DIR, _loader("DittoPipeline"))


def load_controlnet(folder=None):
    return _CONTROLNET.get_for_page(folder)


def load_ditto(folder=None):
    return _DITTO.get_for_page(folder)


def clear_pipeline_cache() -> None:
    _CONTROLNET.clear()
    _DITTO.clear()


# --------------------------------------------------------------------------- helpers


def _run(store, call):
    """``call()`` under the store's lock; the pipeline's ``GeneratorError`` as a one-line page error."""
    from hf_musiccodec.pipelines import GeneratorError

    start = time.perf_counter()
    try:
        with store.lock:
            out = call()
    except GeneratorError as e:
        raise _error(_one_line(e), "Cannot generate") from e
    return out, time.perf_counter() - start


def _save(audio: np.ndarray, sr: int, stem: str) -> str:
    if not np.isfinite(audio).all():
        raise _error("The model produced invalid audio (NaN); try another seed.", "Generation failed")
    out_dir = demo_support.new_output_dir(OUTPUT_ROOT)
    return str(save_audio(out_dir / f"{stem}.wav", np.clip(audio, -1.0, 1.0), sr))


def _figure(rows: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 2.2 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, 1, squeeze=False)[:, 0]


def _image(fig):
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def parse_curve(text) -> np.ndarray:
    """A comma-separated list of dB values as a float array; ``gr.Error`` with one line otherwise."""
    parts = [p.strip() for p in str(text or "").replace(";", ",").split(",") if p.strip()]
    try:
        values = np.array([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        raise _error(f"The loudness curve must be numbers in dB separated by commas (e.g. "
                     f"{DEFAULTS['curve']}), got {_one_line(ValueError(text), 60)!r}.", "Bad setting") from None
    if values.size < 2 or not np.isfinite(values).all():
        raise _error(f"The loudness curve needs at least 2 finite dB values (e.g. {DEFAULTS['curve']}).",
                     "Bad setting")
    if values.max() > 0 or values.min() < -100:
        raise _error(f"Loudness values are dB from -100 to 0, got {values.min():g} to {values.max():g}.",
                     "Bad setting")
    return values


# --------------------------------------------------------------------------- ControlNet


@dataclasses.dataclass
class ControlResult:
    audio_path: str
    audio: np.ndarray
    sampling_rate: int
    reference_path: str
    plot: object  # PIL.Image: each kept control, reference and output over each other
    summary_text: str
    controls: list[str]
    start: float
    end: float


def control_plot(reference, output, kept: list[str], start: float, end: float):
    """The kept controls of the reference and of the output (``MusicControls``) over each other;
    the shaded span is where the controls applied."""
    fig, axes = _figure(len(kept))
    for ax, name in zip(axes, kept):
        for controls, label, style in ((reference, "reference", dict(color="tab:blue")),
                                       (output, "output", dict(color="tab:orange"))):
            t = (np.arange(controls.num_frames) + 0.5) / controls.frame_rate
            if name == "melody":
                voiced = controls.melody >= 0
                ax.scatter(t[voiced], controls.melody[voiced], s=10, label=label, alpha=0.7, **style)
                ax.set_ylim(-0.5, 11.5)
                ax.set_ylabel("pitch class")
            elif name == "dynamics":
                ax.plot(t, controls.dynamics, label=label, **style)
                ax.set_ylabel("dB")
            else:
                ax.plot(t, controls.rhythm[0], label=f"{label} beats", **style)
                ax.plot(t, controls.rhythm[1], linestyle="--", label=f"{label} downbeats", **style)
                ax.set_ylabel("activation")
        ax.axvspan(start, end, color="grey", alpha=0.12, label="controlled range")
        ax.set_title(name, fontsize=10, loc="left")
        ax.set_xlabel("time (s)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper right")
    return _image(fig)


def controlnet_generate(upload, prompt, melody=True, dynamics=True, rhythm=True, start=0.0, end=MAX_SECONDS,
                        strength=DEFAULTS["strength"], steps=DEFAULTS["steps"], guidance=DEFAULTS["guidance"],
                        seed=DEFAULTS["seed"], *, folder=None, progress=None) -> ControlResult:
    """Generate for ``prompt`` as long as the reference ``upload``, keeping the chosen controls of it
    from ``start`` to ``end`` seconds (the model is free elsewhere)."""
    import torch

    prompt = (prompt or "").strip()
    kept = [name for name, on in zip(CONTROL_NAMES, (melody, dynamics, rhythm)) if on]
    if not kept:
        raise _error("Pick at least one control to keep (melody, dynamics or rhythm).", "Bad setting")
    start = _number(start, "Start (s)")
    end = _number(end, "End (s)")
    if end <= start:
        raise _error(f"The controlled range must end after it starts, got {start:g} s to {end:g} s.", "Bad setting")
    strength = _number(strength, "Control strength", high=10.0)
    steps = _number(steps, "Steps", integer=True, low=1, high=MAX_STEPS)
    guidance = _number(guidance, "Guidance", high=30.0)
    seed = demo_support.seed_setting(seed)
    audio, sr = demo_support.read_upload(upload, min_seconds=MIN_UPLOAD_SECONDS, max_seconds=MAX_UPLOAD_SECONDS,
                                         role="reference", missing="Upload or record a reference first.")
    name = demo_support.display_name(Path(upload))
    clip_s = audio.shape[-1] / sr
    if start >= clip_s:
        raise _error(f"The controlled range starts at {start:g} s, after the end of '{name}' ({clip_s:.2f} s).",
                     "Bad setting")
    end = min(end, clip_s)
    pipe = load_controlnet(folder)
    if progress is not None:
        progress(0.0, desc="extracting controls")

    def call():
        reference = pipe.extract_controls(audio, sr)
        t = (np.arange(reference.num_frames) + 0.5) / reference.frame_rate
        inside = (t >= start) & (t < end)
        given = {"melody": reference.melody, "dynamics": reference.dynamics, "rhythm": reference.rhythm}
        with torch.inference_mode():
            out = pipe(prompt, **{k: given[k] for k in kept}, control_mask={k: inside for k in kept},
                       controlnet_conditioning_scale=float(strength), audio_length_in_s=clip_s,
                       num_inference_steps=steps, guidance_scale=guidance,
                       generator=torch.Generator().manual_seed(seed))
        generated = np.asarray(out.audios[0], dtype=np.float32)
        return reference, generated, pipe.extract_controls(generated, int(pipe.sampling_rate),
                                                           frames=reference.num_frames)

    (reference, generated, output_controls), elapsed = _run(_CONTROLNET, call)
    out_sr = int(pipe.sampling_rate)
    path = _save(generated, out_sr, f"controlnet_seed{seed}")
    plot = control_plot(reference, output_controls, kept, start, end)
    seconds = generated.shape[-1] / out_sr
    summary = (f"**ControlNet: {seconds:.2f} s** at {out_sr} Hz in {elapsed:.1f} s\n\n"
               f"- prompt: \"{prompt}\"\n- kept {', '.join(kept)} of '{name}' from {start:.2f} to {end:.2f} s "
               f"(free elsewhere), strength {strength:g}\n- {steps} steps, guidance {guidance:g}, seed {seed}")
    return ControlResult(path, generated, out_sr, str(upload), plot, summary, kept, start, end)


# --------------------------------------------------------------------------- DITTO


@dataclasses.dataclass
class DittoResult:
    audio_path: str
    audio: np.ndarray
    sampling_rate: int
    target: np.ndarray
    loudness: np.ndarray
    losses: list[float]
    loudness_plot: object
    loss_plot: object
    summary_text: str


def ditto_generate(prompt, curve=DEFAULTS["curve"], duration=DEFAULTS["duration"],
                   optimization_steps=DEFAULTS["optimization_steps"], lr=DEFAULTS["lr"], seed=DEFAULTS["seed"],
                   steps=DEFAULTS["steps"], guidance=DEFAULTS["guidance"], *, folder=None,
                   progress=None) -> DittoResult:
    """Generate ``duration`` seconds for ``prompt`` whose loudness follows ``curve`` (dB values spread
    evenly over the duration) by DITTO's optimisation of the initial noise."""
    import torch

    from hf_musiccodec.metrics.melody_dynamics import dynamics_curve

    prompt = (prompt or "").strip()
    target = parse_curve(curve)
    duration = _number(duration, "Duration (s)", low=0.5, high=MAX_SECONDS)
    optimization_steps = _number(optimization_steps, "Optimisation steps", integer=True, high=MAX_OPTIMIZATION_STEPS)
    lr = _number(lr, "Learning rate", high=10.0)
    if lr <= 0:
        raise _error("Learning rate must be above 0.", "Bad setting")
    steps = _number(steps, "Steps", integer=True, low=1, high=MAX_STEPS)
    guidance = _number(guidance, "Guidance", high=30.0)
    seed = demo_support.seed_setting(seed)
    pipe = load_ditto(folder)
    if progress is not None:
        progress(0.0, desc="optimising the initial noise")

    def call():
        return pipe(prompt, objective="intensity", target=target, audio_length_in_s=duration,
                    num_inference_steps=steps, guidance_scale=guidance, num_optimization_steps=optimization_steps,
                    optimization_lr=lr, generator=torch.Generator().manual_seed(seed))

    out, elapsed = _run(_DITTO, call)
    sr = int(pipe.sampling_rate)
    audio = np.asarray(out.audios[0], dtype=np.float32)
    path = _save(audio, sr, f"ditto_seed{seed}")
    loudness = np.asarray(dynamics_curve(audio.mean(axis=0), sr, hop_length=256), dtype=np.float64).reshape(-1)
    losses = [float(x) for x in out.losses]
    seconds = audio.shape[-1] / sr

    fig, (ax,) = _figure(1)
    ax.plot(np.linspace(0, seconds, target.size), target, "o-", label="target (drawn)")
    ax.plot(np.linspace(0, seconds, loudness.size), loudness, label="output")
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("loudness (dB)", fontsize=8)
    ax.set_title("target loudness and the output's", fontsize=10, loc="left")
    ax.legend(fontsize=7)
    loudness_plot = _image(fig)
    fig, (ax,) = _figure(1)
    ax.plot(np.arange(len(losses)), losses, "o-")
    ax.set_xlabel("optimisation step (0: the plain generation)", fontsize=8)
    ax.set_ylabel("intensity loss (MSE, dB²)", fontsize=8)
    ax.set_title("DITTO objective", fontsize=10, loc="left")
    loss_plot = _image(fig)
    summary = (f"**DITTO: {seconds:.2f} s** at {sr} Hz in {elapsed:.1f} s\n\n- prompt: \"{prompt}\"\n"
               f"- {optimization_steps} optimisation steps at learning rate {lr:g}, seed {seed}\n"
               f"- intensity loss {losses[0]:.2f} → {losses[-1]:.2f}")
    return DittoResult(path, audio, sr, target, loudness, losses, loudness_plot, loss_plot, summary)


# --------------------------------------------------------------------------- page


def controlnet_for_page(upload, prompt, melody, dynamics, rhythm, start, end, strength, steps, guidance, seed,
                        progress=gr.Progress()):
    r = controlnet_generate(upload, prompt, melody, dynamics, rhythm, start, end, strength, steps, guidance, seed,
                            progress=progress)
    return r.audio_path, r.reference_path, r.plot, r.summary_text, r.audio_path


def ditto_for_page(prompt, curve, duration, optimization_steps, lr, seed, steps, guidance, progress=gr.Progress()):
    r = ditto_generate(prompt, curve, duration, optimization_steps, lr, seed, steps, guidance, progress=progress)
    return r.audio_path, r.loudness_plot, r.loss_plot, r.summary_text, r.audio_path


def _status(store) -> tuple[bool, str]:
    try:
        store.get()
        return True, f"{store.label}: `{store.default_folder().name}` loaded."
    except demo_support.ModelUnavailable as e:
        return False, f"**{e}**"


def _sampling_settings(tab: str):
    """The steps, guidance and seed inputs both tabs share (``#<tab>-steps`` etc.), in the current layout block."""
    steps = gr.Slider(1, MAX_STEPS, value=DEFAULTS["steps"], step=1, label="Steps", elem_id=f"{tab}-steps")
    guidance = gr.Slider(0.0, 10.0, value=DEFAULTS["guidance"], step=0.5, label="Guidance", elem_id=f"{tab}-guidance")
    seed = gr.Number(DEFAULTS["seed"], precision=0, minimum=0, label="Seed", elem_id=f"{tab}-seed")
    return steps, guidance, seed


def build_demo() -> gr.Blocks:
    """The Space's page; a missing model is a message on its tab (its button off), never a crash."""
    control_ready, control_info = _status(_CONTROLNET)
    ditto_ready, ditto_info = _status(_DITTO)
    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\n\n{DESCRIPTION}")
        with gr.Tabs():
            with gr.Tab("ControlNet", id="controlnet-tab", elem_id="controlnet-tab"):
                gr.Markdown(control_info, elem_id="controlnet-info")
                with gr.Row():
                    with gr.Column(scale=3):
                        reference = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                             label="Reference", elem_id="reference")
                        c_prompt = gr.Textbox(label="Prompt", lines=2, elem_id="controlnet-prompt",
                                              placeholder="a bright piano piece")
                        with gr.Row():
                            melody = gr.Checkbox(True, label="melody", elem_id="keep-melody")
                            dynamics = gr.Checkbox(True, label="dynamics", elem_id="keep-dynamics")
                            rhythm = gr.Checkbox(True, label="rhythm", elem_id="keep-rhythm")
                    with gr.Column(scale=2):
                        with gr.Row():
                            start = gr.Number(DEFAULTS["start"], minimum=0, label="Controls from (s)",
                                              elem_id="control-start")
                            end = gr.Number(DEFAULTS["end"], minimum=0, label="to (s)", elem_id="control-end")
                        strength = gr.Slider(0.0, 3.0, value=DEFAULTS["strength"], step=0.05,
                                             label="Control strength", elem_id="control-strength")
                        c_steps, c_guidance, c_seed = _sampling_settings("controlnet")
                        c_run = gr.Button("Generate", variant="primary", elem_id="controlnet-generate",
                                          interactive=control_ready)
                with gr.Row(equal_height=True):
                    c_out = gr.Audio(label="Generated", type="filepath", interactive=False,
                                     elem_id="controlnet-audio")
                    c_ref = gr.Audio(label="Reference", type="filepath", interactive=False,
                                     elem_id="controlnet-reference")
                with gr.Row():
                    c_plot = gr.Image(label="Controls: reference and output", type="pil", interactive=False,
                                      elem_id="controlnet-plot", scale=3)
                    with gr.Column(scale=2):
                        c_summary = gr.Markdown(elem_id="controlnet-summary", padding=True)
                        c_download = gr.File(label="Download (wav)", interactive=False,
                                             elem_id="controlnet-download")
            with gr.Tab("DITTO", id="ditto-tab", elem_id="ditto-tab"):
                gr.Markdown(ditto_info, elem_id="ditto-info")
                with gr.Row():
                    with gr.Column(scale=3):
                        d_prompt = gr.Textbox(label="Prompt", lines=2, elem_id="ditto-prompt",
                                              placeholder="a slow chorale for strings")
                        curve = gr.Textbox(DEFAULTS["curve"], label="Loudness curve (dB, comma-separated)",
                                           elem_id="ditto-curve", info="spread evenly over the duration")
                    with gr.Column(scale=2):
                        duration = gr.Slider(0.5, MAX_SECONDS, value=DEFAULTS["duration"], step=0.5,
                                             label="Duration (s)", elem_id="ditto-duration")
                        opt_steps = gr.Slider(0, MAX_OPTIMIZATION_STEPS, value=DEFAULTS["optimization_steps"],
                                              step=1, label="Optimisation steps", elem_id="ditto-opt-steps")
                        lr = gr.Number(DEFAULTS["lr"], minimum=0, label="Learning rate", elem_id="ditto-lr")
                        d_steps, d_guidance, d_seed = _sampling_settings("ditto")
                        d_run = gr.Button("Run DITTO", variant="primary", elem_id="ditto-run",
                                          interactive=ditto_ready)
                d_out = gr.Audio(label="Generated", type="filepath", interactive=False, elem_id="ditto-audio")
                with gr.Row():
                    d_loudness = gr.Image(label="Loudness: target and output", type="pil", interactive=False,
                                          elem_id="ditto-loudness")
                    d_loss = gr.Image(label="Loss per optimisation step", type="pil", interactive=False,
                                      elem_id="ditto-loss")
                d_summary = gr.Markdown(elem_id="ditto-summary", padding=True)
                d_download = gr.File(label="Download (wav)", interactive=False, elem_id="ditto-download")

        c_run.click(controlnet_for_page,
                    inputs=[reference, c_prompt, melody, dynamics, rhythm, start, end, strength, c_steps,
                            c_guidance, c_seed],
                    outputs=[c_out, c_ref, c_plot, c_summary, c_download], concurrency_limit=1)
        d_run.click(ditto_for_page, inputs=[d_prompt, curve, duration, opt_steps, lr, d_seed, d_steps, d_guidance],
                    outputs=[d_out, d_loudness, d_loss, d_summary, d_download], concurrency_limit=1)
    return demo


def main() -> None:
    """``python app.py``: serve on ``$GRADIO_SERVER_NAME`` (default 127.0.0.1), ``$GRADIO_SERVER_PORT`` (7860)."""
    demo_support.launch(build_demo(), OUTPUT_ROOT)
