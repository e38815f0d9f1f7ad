"""Train (or fine-tune) the text-to-music token LM on a latent cache.

    [accelerate launch] -m hf_musiccodec.training.train_lm --config F [--set k=v ...]

Options: :class:`~hf_musiccodec.training.lm_solver.LMTrainingConfig`. The first run's config
is ``configs/text-to-music.yaml``; fine-tuning a MusicGen folder with LoRA:
``--set init_from=<folder> lora_rank=16``.
"""

from __future__ import annotations

from .base_solver import command_line
from .lm_solver import LMSolver


def main(argv=None) -> None:
    command_line(LMSolver, argv, prog="train_lm", description=__doc__)


if __name__ == "__main__":
    main()
