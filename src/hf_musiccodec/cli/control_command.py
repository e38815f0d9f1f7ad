"""``hf-musiccodec control PROMPT --reference AUDIO``: generate music that keeps a reference's melody,
dynamics and/or rhythm, with Music ControlNet (a trained control branch, over any time range) or
DITTO (the initial noise optimised toward the reference's melody, loudness or structure)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .codec_commands import CommandError

# The bundled pipelines live in the repository's pipelines/ folder (too large for the wheel).
PIPELINES = Path(__file__).resolve().parents[3] / "pipelines"
BUNDLED = {"controlnet": PIPELINES / "music-controlnet", "ditto": PIPELINES / "ditto"}
CONTROLS = ("melody", "dynamics", "rhythm", "structure")
KEPT_BY = {"controlnet": ("melody", "dynamics", "rhythm"), "ditto": ("melody", "dynamics", "structure")}
# the DITTO objective that keeps each control of the reference
DITTO_OBJECTIVES = {"melody": "melody", "dynamics": "intensity", "structure": "structure"}


def add_control_command(sub) -> None:
    p = sub.add_parser("control", help="generate music that keeps a reference's melody, dynamics or rhythm",
                       description="Generate from a text prompt while keeping controls taken from a reference "
                                   "clip: Music ControlNet (melody, dynamics, rhythm, over --start/--end) or "
                                   "DITTO (melody, dynamics, structure; optimises the initial noise).")
    p.add_argument("prompt", help='e.g. "a chorale for brass"')
    p.add_argument("--reference", metavar="AUDIO", required=True, help="the clip whose controls are kept")
    p.add_argument("--controls", nargs="+", choices=CONTROLS, default=["melody", "dynamics", "rhythm"],
                   help="which controls to keep (default: melody dynamics rhythm; structure: DITTO only)")
    p.add_argument("--method", choices=sorted(BUNDLED), default="controlnet", help="default: controlnet")
    p.add_argument("--start", type=float, help="ControlNet: keep the controls from this second (default 0)")
    p.add_argument("--end", type=float, help="ControlNet: ... to this second (default: the end)")
    p.add_argument("--scale", type=float, default=2.0,
                   help="ControlNet: strength of the control branch (default 2: the bundled model's best, see its card)")
    p.add_argument("--ditto-steps", type=int, default=20, help="DITTO: optimisation steps (default 20)")
    p.add_argument("--seconds", type=float, help="length of the output (default: the reference's, at most 30)")
    p.add_argument("--steps", type=int, help="denoising steps (default: 25 ControlNet, 20 DITTO)")
    p.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", metavar="PATH", help="pipeline folder (default: the bundled one of --method)")
    p.add_argument("--output", metavar="WAV", default="outputs/control.wav")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..audio.io import load_audio, save_audio
    from ..pipelines import load_generator
    from ..pipelines.controlnet import MusicControlNetPipeline, reference_controls
    from ..pipelines.ditto import DittoPipeline

    folder = Path(args.model) if args.model else BUNDLED[args.method]
    if not folder.is_dir():
        raise CommandError(f"no {args.method} pipeline at {folder}: pass --model FOLDER")
    if args.method == "ditto" and (args.start is not None or args.end is not None):
        raise CommandError("--start/--end apply to ControlNet; DITTO keeps the controls over the whole output")
    wanted = list(dict.fromkeys(args.controls))
    unsupported = [c for c in wanted if c not in KEPT_BY[args.method]]
    if unsupported:
        raise CommandError(f"{args.method} cannot keep {', '.join(unsupported)} (it keeps "
                           f"{', '.join(KEPT_BY[args.method])})")
    audio, sr = load_audio(args.reference)
    seconds = args.seconds if args.seconds is not None else min(audio.shape[-1] / sr, 30.0)
    if not seconds > 0:
        raise CommandError(f"--seconds must be positive, got {seconds:g}")
    start = 0.0 if args.start is None else args.start
    end = seconds if args.end is None else args.end
    if not 0 <= start < end:
        raise CommandError(f"--start/--end must satisfy 0 <= start < end, got {start:g} and {end:g}")
    audio = audio[:, : int(round(seconds * sr))]
    pipe = load_generator(folder)
    expected = {"controlnet": MusicControlNetPipeline, "ditto": DittoPipeline}[args.method]
    if not isinstance(pipe, expected):
        raise CommandError(f"{folder} holds a {type(pipe).__name__}, --method {args.method} needs a {expected.__name__}")
    controls = reference_controls(pipe, audio, sr)  # DITTO's objectives resample them to the output's frames
    common = dict(audio_length_in_s=seconds, guidance_scale=args.guidance, generator=torch.Generator().manual_seed(args.seed))
    if args.method == "controlnet":
        times = np.arange(controls.num_frames) / controls.frame_rate
        out = pipe(args.prompt, **{c: getattr(controls, c) for c in wanted}, control_mask=(times >= start) & (times < end),
                   controlnet_conditioning_scale=args.scale, num_inference_steps=args.steps or 25, **common)
    else:
        targets = {DITTO_OBJECTIVES[c]: getattr(controls, c) for c in wanted}
        out = pipe(args.prompt, objective=list(targets), target=targets, num_optimization_steps=args.ditto_steps,
                   num_inference_steps=args.steps or 20, **common)
    written = save_audio(args.output, out.audios[0], pipe.sampling_rate, protect=[args.reference])
    print(f"{out.audios.shape[-1] / pipe.sampling_rate:g} s at {pipe.sampling_rate} Hz, keeping {' '.join(wanted)} "
          f"of {args.reference} ({args.method}) -> {written}")
    return 0
