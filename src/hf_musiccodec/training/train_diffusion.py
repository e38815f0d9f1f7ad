"""Train the latent diffusion U-Net (MusicLDM's recipe) on a latent cache's continuous latents.

    [accelerate launch] -m hf_musiccodec.training.train_diffusion --config F [--set k=v ...]

Options: :class:`~hf_musiccodec.training.diffusion_solver.DiffusionTrainingConfig`; the bundled
model's config is ``configs/music-diffusion.yaml``.
"""

from __future__ import annotations

from .base_solver import command_line
from .diffusion_solver import DiffusionSolver


def main(argv=None) -> None:
    command_line(DiffusionSolver, argv, prog="train_diffusion", description=__doc__)


if __name__ == "__main__":
    main()
