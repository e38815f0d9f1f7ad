"""Train the CLAP-style MusicClap model: ``[accelerate launch] -m hf_musiccodec.training.train_clap --config F [--set k=v ...]``.

The released model's config is ``pipelines/music-clap/train.yaml`` (its card says how the data was made).
"""

from __future__ import annotations

from .base_solver import command_line
from .clap_solver import ClapSolver


def main(argv=None) -> None:
    command_line(ClapSolver, argv, prog="train_clap", description=__doc__)


if __name__ == "__main__":
    main()
