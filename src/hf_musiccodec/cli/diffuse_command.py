"""``hf-musiccodec diffuse PROMPT``: generate music with the bundled (or any) latent diffusion pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path

from .codec_commands import CommandError

# The bundled pipeline lives in the repository's pipelines/ folder (too large for the wheel).
BUNDLED = Path(__file__).resolve().parents[3] / "pipelines" / "music-diffusion"
SCHEDULERS = {"dpm": "DPMSolverMultistepScheduler", "ddim": "DDIMScheduler", "euler": "EulerDiscreteScheduler"}


def add_diffuse_command(sub) -> None:
    p = sub.add_parser("diffuse", help="generate music from a text prompt by latent diffusion",
                       description="Generate music from a text prompt with a MusicDiffusionPipeline folder "
                                   "(default: the bundled one); optionally transform (--input, --strength) or "
                                   "inpaint (--input, --inpaint START END) a clip.")
    p.add_argument("prompt", help='e.g. "a slow chorale for strings" ("" for unconditional)')
    p.add_argument("--negative", help="negative prompt")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the output (default 10; --input sets it)")
    p.add_argument("--steps", type=int, default=25, help="denoising steps (default 25)")
    p.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale (default 3)")
    p.add_argument("--scheduler", choices=sorted(SCHEDULERS), default="dpm", help="sampler (default dpm: DPM-Solver++)")
    p.add_argument("--candidates", type=int, default=1, help="generate this many and keep the best by CLAP score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input", metavar="AUDIO", help="a clip to transform (audio-to-audio) or inpaint")
    p.add_argument("--strength", type=float, default=1.0, help="audio-to-audio: share of the schedule re-noised (0-1]")
    p.add_argument("--inpaint", type=float, nargs=2, metavar=("START", "END"), help="inpaint this range (s) of --input")
    p.add_argument("--model", metavar="PATH", help=f"pipeline folder (default: {BUNDLED})")
    p.add_argument("--output", metavar="WAV", default="outputs/diffusion.wav")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import diffusers
    import torch

    from ..audio.io import load_audio, save_audio
    from ..pipelines import load_generator

    folder = Path(args.model) if args.model else BUNDLED
    if not folder.is_dir():
        raise CommandError(f"no latent diffusion pipeline at {folder}: pass --model FOLDER")
    pipe = load_generator(folder)
    pipe.scheduler = getattr(diffusers, SCHEDULERS[args.scheduler]).from_config(pipe.scheduler.config)
    kwargs = {"strength": args.strength}
    if args.input:
        audio, sr = load_audio(args.input)
        kwargs.update(audio=audio, sampling_rate=sr)
    if args.inpaint:
        kwargs.update(inpaint_start_s=args.inpaint[0], inpaint_end_s=args.inpaint[1])
    out = pipe(args.prompt, negative_prompt=args.negative, audio_length_in_s=args.seconds,
               num_inference_steps=args.steps, guidance_scale=args.guidance, num_candidates=args.candidates,
               generator=torch.Generator().manual_seed(args.seed), **kwargs)  # fmt: skip
    written = save_audio(args.output, out.audios[0], pipe.sampling_rate, protect=[args.input] if args.input else [])
    seconds = out.audios.shape[-1] / pipe.sampling_rate
    print(f"{seconds:g} s at {pipe.sampling_rate} Hz -> {written}")
    return 0
