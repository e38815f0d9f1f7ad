"""Train (or fine-tune) VampNet on a latent cache's codes.

    [accelerate launch] -m hf_musiccodec.training.train_vampnet --config F [--set k=v ...]

Options: :class:`~hf_musiccodec.training.vampnet_solver.VampNetTrainingConfig`; the bundled
model's config is ``configs/vampnet.yaml``.
"""

from __future__ import annotations

from .base_solver import command_line
from .vampnet_solver import VampNetSolver


def main(argv=None) -> None:
    command_line(VampNetSolver, argv, prog="train_vampnet", description=__doc__)


if __name__ == "__main__":
    main()
