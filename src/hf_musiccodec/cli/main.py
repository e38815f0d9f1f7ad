"""Entry point of the ``hf-musiccodec`` console script.

Every command reports a usable failure (bad audio, a damaged or foreign compressed file, a
missing model, an unsupported bandwidth, a refused overwrite) as one line
``hf-musiccodec: error: ...`` on stderr with exit status 2, never a traceback, and leaves no
output file behind. Python warnings are printed as ``hf-musiccodec: warning: ...``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from .codec_commands import CommandError, add_codec_commands, one_line
from .control_command import add_control_command
from .diffuse_command import add_diffuse_command
from .text_to_music_command import add_text_to_music_command
from .vamp_command import add_vamp_command

PROG = "hf-musiccodec"
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

# AudioError and CompressedFileError are ValueErrors; FileNotFoundError is an OSError. Catching
# the bases keeps this module free of heavy imports, so ``--help`` does not load any model.
HANDLED_ERRORS = (ValueError, OSError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Compress music with a neural audio codec (EnCodec / DAC / SoundStream family) "
                    "and decode it back; generate music from text (token LM or latent diffusion), keeping a reference's melody, dynamics or rhythm; vamp on a clip (VampNet).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_codec_commands(sub)
    add_text_to_music_command(sub)
    add_vamp_command(sub)
    add_diffuse_command(sub)
    add_control_command(sub)
    demo = sub.add_parser(
        "demo", help="encode and decode a clip and write the reconstruction",
        description="Run the codec demo: encode a clip (the bundled one by default), decode it and "
                    "write the reconstruction.")
    demo.add_argument("--model", metavar="PATH", help="codec folder (default: the bundled codec)")
    demo.add_argument("--bandwidth", metavar="KBPS", type=float, help="kbps (default: the highest)")
    demo.add_argument("--input", metavar="AUDIO", help="audio file to encode (default: bundled clip)")
    demo.add_argument("--output", metavar="WAV", help="where to write the reconstruction")
    demo.set_defaults(handler=_run_demo)
    return parser


def _run_demo(args) -> int | None:
    try:
        demo = importlib.import_module(f"{__package__}.demo")
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.demo":
            raise
        raise CommandError("the demo is not available in this installation") from None
    return demo.run(args)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {one_line(message)}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage error already printed by argparse
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            status = args.handler(args)
        except HANDLED_ERRORS as e:
            print(f"{PROG}: error: {one_line(e)}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
