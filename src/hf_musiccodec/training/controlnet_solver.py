"""Training of Music ControlNet: a control branch on a trained latent diffusion pipeline's frozen U-Net.

The branch is diffusers' ``ControlNetModel.from_unet`` of the pipeline's U-Net (its encoder copied,
zero convolutions on the residuals, so training starts from the unchanged model). Each example is a
latent crop with its controls (``controls.safetensors`` of the cache, extracted by the pipeline's
own :func:`~hf_musiccodec.pipelines.controlnet.controls.extract_controls`); as in the paper, each
control is left out with ``control_dropout`` and, when given, restricted to a random time span with
``partial_control_prob``, so that any subset of the controls over any part of the time conditions
the model. The loss is the diffusion loss of :class:`DiffusionSolver` (same noise schedule and
prediction type as the pipeline's), with the CLAP condition dropped as there. EMA of the branch's
weights; validation reports the loss with all controls and with none (the branch's gain).

The run exports a :class:`~hf_musiccodec.pipelines.controlnet.MusicControlNetPipeline` (``model/``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from .diffusion_solver import DiffusionSolver, DiffusionTrainingConfig, crop_frames_for
from .schedules import warmup_cosine

logger = logging.getLogger(__name__)

__all__ = ["ControlNetTrainingConfig", "ControlNetSolver"]


@dataclass
class ControlNetTrainingConfig(DiffusionTrainingConfig):
    pipeline: str = "pipelines/music-diffusion"   # the MusicDiffusionPipeline whose U-Net is controlled
    control_dropout: float = 0.3                  # each control is absent from this share of examples
    partial_control_prob: float = 0.5             # a given control covers a random span in this share
    conditioning_embedding_channels: int = 64     # the control image's embedding width (no downsampling)
    # diffusers zero-initialises the control embedding's last conv as well as the residual convs, so the
    # copied encoder sees no control until the first has grown (a second-order start). False draws it at
    # random: the encoder sees the controls from step 1, and the zero residual convs still make the start
    # exactly the base model.
    zero_init_control_embedding: bool = False
    mixup: str | None = None
    learning_rate: float = 1e-4

    def validate(self) -> None:
        super().validate()
        if self.mixup:
            raise ValueError("ControlNet training takes no mixup (a mixture has no single melody or rhythm)")
        for name in ("control_dropout", "partial_control_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


def column_controls(batch: dict, patch: int) -> dict[str, np.ndarray]:
    """The batch's controls (codec frames) at the U-Net's columns: every ``patch``-th frame for melody
    and dynamics, the maximum over the patch for the rhythm activations."""
    melody, dynamics, rhythm = batch["melody"].numpy(), batch["dynamics"].numpy(), batch["rhythm"].numpy()
    b, frames = melody.shape
    width = -(-frames // patch)
    pad = width * patch - frames
    rhythm = np.pad(rhythm, ((0, 0), (0, 0), (0, pad)), mode="edge").reshape(b, 2, width, patch).max(-1)
    return {"melody": melody[:, ::patch], "dynamics": dynamics[:, ::patch], "rhythm": rhythm}


class ControlNetSolver(DiffusionSolver):
    config_class = ControlNetTrainingConfig
    name = "music_controlnet"

    def build(self) -> None:
        from diffusers import ControlNetModel, DDPMScheduler
        from diffusers.training_utils import EMAModel

        from hf_musiccodec.data.latent_crops import LatentCrops
        from hf_musiccodec.pipelines.controlnet import CONTROL_CHANNELS
        from hf_musiccodec.pipelines.latent_diffusion import MusicDiffusionPipeline

        cfg = self.cfg
        self.base = MusicDiffusionPipeline.from_pretrained(cfg.pipeline)
        self.codec, self.layout = self.base.codec, self.base.layout
        self.latent_mean, self.latent_std = self.base.config.latent_mean, self.base.config.latent_std
        self.frozen_unet = self.base.unet.eval().requires_grad_(False).to(self.accelerator.device)
        # the architecture options are the pipeline's, not this config's (recorded in training_config.json)
        cfg.patch, cfg.block_out_channels = self.layout.patch, tuple(self.frozen_unet.config.block_out_channels)
        crop = crop_frames_for(cfg, self.codec.config.frame_rate)
        self.train_set = LatentCrops(cfg.train_cache, crop, seed=cfg.seed, controls=True)
        self.validation_set = (LatentCrops(cfg.validation_cache, crop, seed=cfg.seed, random_crops=False, controls=True)
                               if cfg.validation_cache else None)
        self.noise_scheduler = DDPMScheduler.from_config(self.base.scheduler.config)
        controlnet = ControlNetModel.from_unet(self.frozen_unet, conditioning_channels=CONTROL_CHANNELS,
                                               conditioning_embedding_out_channels=(cfg.conditioning_embedding_channels,))
        if not cfg.zero_init_control_embedding:
            controlnet.controlnet_cond_embedding.conv_out.reset_parameters()
        optimizer = torch.optim.AdamW(controlnet.parameters(), cfg.learning_rate, betas=tuple(cfg.betas),
                                      weight_decay=cfg.weight_decay)
        self.add_model("controlnet", controlnet, optimizer=optimizer,
                       scheduler=warmup_cosine(optimizer, cfg.warmup_steps, cfg.max_steps))
        self.ema = EMAModel(controlnet.parameters(), decay=cfg.ema_decay)
        self.accelerator.register_for_checkpointing(self.ema)
        logger.info("Music ControlNet: %.2fM trainable parameters on a %.2fM frozen U-Net, crops of %d frames",
                    sum(p.numel() for p in controlnet.parameters()) / 1e6,
                    sum(p.numel() for p in self.frozen_unet.parameters()) / 1e6, crop)

    # ------------------------------------------------------------------ controls
    def control_images(self, batch: dict, present: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, 1, width)`` control images: control ``c`` of example ``i`` is given where
        ``present[i, c]`` and only within ``spans[i, c]`` (fractions ``[start, end)`` of the width)."""
        from hf_musiccodec.pipelines.controlnet import CONTROL_NAMES, control_condition

        columns = column_controls(batch, self.layout.patch)
        b, width = columns["melody"].shape
        grid = np.arange(width) / width
        images = []
        for i in range(b):
            masks = {name: (bool(present[i, c]) & (grid >= float(spans[i, c, 0])) & (grid < float(spans[i, c, 1])))
                     for c, name in enumerate(CONTROL_NAMES)}
            images.append(control_condition(width, control_mask=masks, melody=columns["melody"][i],
                                            dynamics=columns["dynamics"][i], rhythm=columns["rhythm"][i]))
        return torch.from_numpy(np.stack(images))[:, :, None, :]

    def predict(self, model, noisy, timesteps, condition, batch) -> torch.Tensor:
        down, mid = model(noisy, timesteps, encoder_hidden_states=condition[:, None, :], class_labels=condition,
                          controlnet_cond=batch["control"].to(noisy.device, noisy.dtype), return_dict=False)
        with self.accelerator.autocast():  # the frozen U-Net is not prepared by Accelerate: autocast it here
            return self.frozen_unet(noisy, timesteps, encoder_hidden_states=condition[:, None, :], class_labels=condition,
                                    down_block_additional_residuals=down, mid_block_additional_residual=mid).sample

    def train_step(self, batch) -> dict:
        cfg = self.cfg
        size = batch["latents"].shape[0]
        present = torch.rand(size, 3) >= cfg.control_dropout
        # a given control covers a random span (at least a fifth of the crop) or, otherwise, all of it
        start = torch.rand(size, 3) * 0.8
        end = start + 0.2 + torch.rand(size, 3) * (1.0 - start - 0.2)
        partial = torch.rand(size, 3) < cfg.partial_control_prob
        spans = torch.stack([torch.where(partial, start, 0.0), torch.where(partial, end, 1.0)], dim=-1)
        batch = {**batch, "control": self.control_images(batch, present, spans)}
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (size,))
        noise = torch.randn(size, self.layout.channels, 1, self.layout.frames_to_width(batch["latents"].shape[-1]))
        condition_on = torch.rand(size) >= cfg.condition_dropout
        loss = self.diffusion_loss(batch, timesteps, noise, condition_on)
        self.backward(loss)
        return {"loss": loss.detach(), "controls_given": present.float().mean()}

    def validation_cases(self) -> list:
        """The loss with all three controls over the whole crop and with none (the CLAP condition on)."""
        def with_controls(given: bool):
            def transform(batch):
                size = batch["latents"].shape[0]
                spans = torch.tensor([0.0, 1.0]).expand(size, 3, 2)
                return {**batch, "control": self.control_images(batch, torch.full((size, 3), given), spans)}
            return transform

        return [("_controls", with_controls(True), True), ("_no_controls", with_controls(False), True)]

    def export_model(self):
        """A MusicControlNetPipeline: the base pipeline's parts and the EMA control branch."""
        from hf_musiccodec.pipelines.controlnet import MusicControlNetPipeline

        base = self.base
        return MusicControlNetPipeline(unet=self.frozen_unet, scheduler=base.scheduler, codec=base.codec, clap=base.clap,
                                       clap_processor=base.clap_processor, controlnet=self.ema_model(),
                                       latent_mean=self.latent_mean, latent_std=self.latent_std)
