"""``hf-musiccodec vamp INPUT``: vamp on an audio file with the bundled (or any) VampNet pipeline.

The mask recipe is the paper's prompts (prefix/suffix, periodic, upper codebook mask, beats,
onsets, dropout); ``--loops`` unloops (each pass vamps the last). Prints the bit rate of the
kept tokens (the prompt). Bad input is one ``hf-musiccodec: error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from .codec_commands import CommandError

# The bundled pipeline lives in the repository's pipelines/ folder (too large for the wheel).
BUNDLED = Path(__file__).resolve().parents[3] / "pipelines" / "vampnet"


def add_vamp_command(sub) -> None:
    p = sub.add_parser("vamp", help="vamp on an audio file with VampNet (variations, inpainting, loops)",
                       description="Encode INPUT with the codec, keep the tokens the mask recipe keeps and let a "
                                   "VampNetPipeline folder (default: the bundled one) generate the rest. Without "
                                   "any prompt option everything is generated (only the length is kept).")
    p.add_argument("input", metavar="INPUT", help="audio file (wav, flac, ogg, opus, mp3, aiff)")
    p.add_argument("--output", metavar="WAV", default="outputs/vamp.wav",
                   help="file to write; with --variations N: NAME_1.wav ... NAME_N.wav (default outputs/vamp.wav)")
    p.add_argument("--model", metavar="PATH", help=f"pipeline folder (default: {BUNDLED})")
    g = p.add_argument_group("mask recipe (tokens kept from INPUT; the rest is generated)")
    g.add_argument("--prefix", metavar="S", type=float, default=0.0, help="keep the first S seconds")
    g.add_argument("--suffix", metavar="S", type=float, default=0.0, help="keep the last S seconds")
    g.add_argument("--periodic", metavar="P", type=int, default=0, help="keep a frame every P frames (0: off)")
    g.add_argument("--periodic-width", metavar="W", type=int, default=1, help="frames kept each period (default 1)")
    g.add_argument("--upper-codebook-mask", metavar="N", type=int,
                   help="regenerate codebooks N and up everywhere (kept frames keep codebooks below N)")
    g.add_argument("--beat-mask-width", metavar="MS", type=float, default=0.0, help="keep MS after each beat")
    g.add_argument("--onset-mask-width", metavar="MS", type=float, default=0.0, help="keep MS after each onset")
    g.add_argument("--dropout", metavar="P", type=float, default=0.0, help="drop each kept token with probability P")
    s = p.add_argument_group("sampling")
    s.add_argument("--steps", metavar="N", type=int, default=24, help="sampling passes (default 24)")
    s.add_argument("--seed", metavar="S", type=int, default=0)
    s.add_argument("--variations", metavar="N", type=int, default=1, help="outputs to write (default 1)")
    s.add_argument("--loops", metavar="N", type=int, help="unloop: vamp N times, each pass from the last")
    s.add_argument("--feedback", metavar="F", type=float,
                   help="with --loops: share of the tokens a pass generated that the next keeps (0-1, default 0.5)")
    s.add_argument("--prompt", metavar="TEXT", help="steer with a text (models trained with the CLAP condition)")
    p.set_defaults(handler=run)


def _check(args: argparse.Namespace) -> None:
    """The options' ranges, named by their flags (the pipeline checks its own keywords too)."""
    for flag, value in (("--prefix", args.prefix), ("--suffix", args.suffix),
                        ("--beat-mask-width", args.beat_mask_width), ("--onset-mask-width", args.onset_mask_width)):
        if not (math.isfinite(value) and value >= 0):
            raise CommandError(f"{flag} must be a number >= 0, got {value:g}")
    for flag, value, low in (("--periodic", args.periodic, 0), ("--periodic-width", args.periodic_width, 1),
                             ("--upper-codebook-mask", args.upper_codebook_mask, 0), ("--steps", args.steps, 1),
                             ("--variations", args.variations, 1), ("--loops", args.loops, 1)):
        if value is not None and value < low:
            raise CommandError(f"{flag} must be an integer >= {low}, got {value}")
    if not (math.isfinite(args.seed) and 0 <= args.seed < 2**63):
        raise CommandError(f"--seed must be from 0 to 2^63 - 1, got {args.seed}")
    for flag, value in (("--dropout", args.dropout), ("--feedback", args.feedback)):
        if value is not None and not 0 <= value <= 1:  # NaN fails too
            raise CommandError(f"{flag} must be in [0, 1], got {value:g}")
    if args.feedback is not None and args.loops is None:
        raise CommandError("--feedback needs --loops")


def output_paths(output: str | Path, variations: int) -> list[Path]:
    """``output`` itself, or ``NAME_1.EXT`` ... ``NAME_N.EXT`` for several variations."""
    output = Path(output)
    if variations == 1:
        return [output]
    return [output.with_name(f"{output.stem}_{i}{output.suffix}") for i in range(1, variations + 1)]


def load_vampnet(model: str | None):
    """The VampNetPipeline at ``model`` (default: the bundled folder), quiet; one-line errors."""
    folder = Path(model) if model else BUNDLED
    if not folder.is_dir():
        raise CommandError(f"no VampNet pipeline at {folder}: pass --model FOLDER")
    if not (folder / "model_index.json").is_file():
        raise CommandError(f"no VampNet pipeline at {folder} yet (no model_index.json; it may still be training): "
                           f"pass --model FOLDER")
    from diffusers.utils import logging as diffusers_logging

    from ..pipelines import load_generator
    from ..pipelines.vampnet import VampNetPipeline
    from .codec_commands import _quiet_transformers

    verbosity, bars = diffusers_logging.get_verbosity(), diffusers_logging.is_progress_bar_enabled()
    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    try:
        with _quiet_transformers():
            pipe = load_generator(folder)
    finally:
        diffusers_logging.set_verbosity(verbosity)
        if bars:
            diffusers_logging.enable_progress_bar()
    if not isinstance(pipe, VampNetPipeline):
        raise CommandError(f"{folder} holds a {type(pipe).__name__}, not a VampNetPipeline")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(args: argparse.Namespace) -> int:
    _check(args)
    source = Path(args.input)
    targets = output_paths(args.output, args.variations)
    from ..utils.files import same_path

    for target in targets:
        if same_path(source, target):
            raise CommandError(f"{target}: refusing to overwrite the input file")

    import torch

    from ..audio.io import is_silent, load_audio, save_audio
    from ..pipelines.vampnet.pipeline_vampnet import MIN_INPUT_S

    audio, sr = load_audio(source)
    if audio.shape[-1] < MIN_INPUT_S * sr:
        raise CommandError(f"{source}: {audio.shape[-1] / sr:.2f} s long; at least {MIN_INPUT_S:g} s is needed")
    if is_silent(audio):
        raise CommandError(f"{source}: silent audio: nothing to vamp on")
    pipe = load_vampnet(args.model)

    recipe = dict(prefix_s=args.prefix, suffix_s=args.suffix, periodic_prompt=args.periodic,
                  periodic_width=args.periodic_width, upper_codebook_mask=args.upper_codebook_mask,
                  beat_mask_width_ms=args.beat_mask_width, onset_mask_width_ms=args.onset_mask_width,
                  dropout=args.dropout)  # fmt: skip
    generator = torch.Generator().manual_seed(args.seed)
    common = dict(sampling_rate=sr, prompt=args.prompt, num_inference_steps=args.steps, generator=generator)
    if args.loops is None:
        out = pipe(audio, num_waveforms_per_prompt=args.variations, **common, **recipe)
        audios, masks, rates = list(out.audios), list(out.mask), [out.bits_per_second] * args.variations
    else:  # a loop has one output: each variation is its own loop (the generator runs on)
        feedback = 0.5 if args.feedback is None else args.feedback
        outs = [pipe.loop(audio, num_loops=args.loops, feedback=feedback, **common, **recipe)
                for _ in range(args.variations)]
        audios, masks, rates = [o.audios[0] for o in outs], [o.mask[0] for o in outs], [o.bits_per_second for o in outs]

    seconds = audio.shape[-1] / sr
    what = f"{seconds:.2f} s" + (f" x {args.loops} loops" if args.loops else "")
    for target, x, mask, bps in zip(targets, audios, masks, rates):
        written = save_audio(target, x, pipe.sampling_rate, protect=[source])
        kept = 100.0 * (~mask).float().mean().item()
        print(f"{source}: {what} vamped, {kept:.1f}% of the tokens kept ({bps:.1f} bits/s) "
              f"at {pipe.sampling_rate} Hz -> {written}")
    return 0
