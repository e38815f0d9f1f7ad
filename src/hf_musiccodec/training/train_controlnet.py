"""Train Music ControlNet on a trained latent diffusion pipeline (its U-Net frozen).

    [accelerate launch] -m hf_musiccodec.training.train_controlnet --config F [--set k=v ...]

Options: :class:`~hf_musiccodec.training.controlnet_solver.ControlNetTrainingConfig`; the bundled
model's config is ``configs/music-controlnet.yaml``. The caches need their controls first:
``python scripts/cache_controls.py --cache <cache>``.
"""

from __future__ import annotations

from .base_solver import command_line
from .controlnet_solver import ControlNetSolver


def main(argv=None) -> None:
    command_line(ControlNetSolver, argv, prog="train_controlnet", description=__doc__)


if __name__ == "__main__":
    main()
