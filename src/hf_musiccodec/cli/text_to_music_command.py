"""``hf-musiccodec text-to-music PROMPT``: generate music with the bundled (or any) text-to-music pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path

from .codec_commands import CommandError

# The bundled pipeline lives in the repository's pipelines/ folder (too large for the wheel).
BUNDLED = Path(__file__).resolve().parents[3] / "pipelines" / "text-to-music"


def add_text_to_music_command(sub) -> None:
    p = sub.add_parser("text-to-music", help="generate music from a text prompt",
                       description="Generate music from a text prompt with a TextToMusicPipeline folder "
                                   "(default: the bundled one); optionally follow a melody or continue audio.")
    p.add_argument("prompt", help='e.g. "a slow waltz for piano in D minor" ("" for unconditional)')
    p.add_argument("--seconds", type=float, default=10.0, help="length of the output (default 10)")
    p.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--melody", metavar="AUDIO", help="a tune whose melody the output follows")
    p.add_argument("--continue", dest="continue_from", metavar="AUDIO", help="audio the output continues")
    p.add_argument("--clap", action="store_true", help="also condition on the prompt's CLAP text embedding")
    p.add_argument("--bpm", type=float, help="tempo (default: the one the prompt states, e.g. '112 BPM' or 'fast')")
    p.add_argument("--key", help="key, e.g. 'F# minor' (default: the one the prompt states)")
    p.add_argument("--key-guidance", type=float, dest="key_guidance_scale", metavar="SCALE",
                   help="the key's own guidance scale, to strengthen a key the model hears weakly (default 0)")
    p.add_argument("--model", metavar="PATH", help=f"pipeline folder (default: {BUNDLED})")
    p.add_argument("--output", metavar="WAV", default="outputs/text-to-music.wav")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..audio.io import load_audio, save_audio
    from ..pipelines import load_generator

    folder = Path(args.model) if args.model else BUNDLED
    if not folder.is_dir():
        raise CommandError(f"no text-to-music pipeline at {folder}: pass --model FOLDER")
    pipe = load_generator(folder)
    kwargs = {}
    for name, path in (("melody", args.melody), ("audio_prompt", args.continue_from)):
        if path:
            audio, sr = load_audio(path)
            kwargs.update({name: audio, f"{name}_sampling_rate": sr})
    for name in ("bpm", "key", "key_guidance_scale"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    out = pipe(args.prompt, audio_length_in_s=args.seconds, guidance_scale=args.guidance, use_clap=args.clap,
               generator=torch.Generator().manual_seed(args.seed), **kwargs)  # fmt: skip
    protect = [p for p in (args.melody, args.continue_from) if p]
    written = save_audio(args.output, out.audios[0], pipe.sampling_rate, protect=protect)
    print(f"{args.seconds:g} s at {pipe.sampling_rate} Hz -> {written}")
    return 0
