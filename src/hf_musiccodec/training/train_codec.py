"""Train or fine-tune a codec: ``[accelerate launch] -m hf_musiccodec.training.train_codec --config F [--set k=v ...]``."""

from __future__ import annotations

from .base_solver import command_line
from .codec_solver import CodecSolver


def main(argv=None) -> None:
    command_line(CodecSolver, argv, prog="train_codec", description=__doc__)


if __name__ == "__main__":
    main()
