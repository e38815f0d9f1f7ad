"""Training of the latent diffusion U-Net (MusicLDM's recipe) on a latent cache's continuous latents.

Each example is a crop of the cached codec latents (:class:`~hf_musiccodec.data.latent_crops.LatentCrops`),
normalised per dimension with the training set's statistics and laid out for the U-Net
(:class:`~hf_musiccodec.pipelines.latent_diffusion.LatentLayout`). The condition is the crop's CLAP
*audio* embedding (so any music trains it, captioned or not; prompts give the CLAP *text* embedding
at inference), replaced by the null condition (zeros) with ``condition_dropout`` for classifier-free
guidance. MusicLDM's beat-synchronous mixup (``mixup: blm`` or ``bam``) mixes pairs of crops of the
same tempo aligned on a beat. The loss is the v-prediction MSE at a uniform random timestep of
diffusers' ``DDPMScheduler``; an exponential moving average of the weights (diffusers' ``EMAModel``,
checkpointed with the run) is what validation scores and the export holds.

The run exports a :class:`~hf_musiccodec.pipelines.latent_diffusion.MusicDiffusionPipeline` folder
(``model/``): the EMA U-Net, DPM-Solver++ with the training noise schedule, the codec and CLAP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from .base_solver import BaseSolver, BaseTrainingConfig
from .clap_export import clap_for_export
from .schedules import warmup_cosine

logger = logging.getLogger(__name__)

__all__ = ["DiffusionTrainingConfig", "DiffusionSolver", "latent_statistics"]

# Timesteps (of 1000) at which validation measures the loss: mostly noise, half, nearly clean.
VALIDATION_TIMESTEPS = (100, 500, 900)


@dataclass
class DiffusionTrainingConfig(BaseTrainingConfig):
    # --- model
    codec: str = "pipelines/musiccodec-24khz-music21"
    clap: str = "pipelines/music-clap"            # bundled into the export (text prompts at inference)
    patch: int = 2                                # latent frames per U-Net column
    block_out_channels: tuple = (128, 160, 192)
    layers_per_block: int = 1
    attention_head_dim: int = 32
    norm_num_groups: int = 32
    # --- diffusion
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "v_prediction"
    condition_dropout: float = 0.1                # share of examples trained with the null condition
    ema_decay: float = 0.999
    # --- data
    train_cache: str = "data/cache/music21-train-music21codec"
    validation_cache: str | None = None
    crop_seconds: float = 5.12
    mixup: str | None = "blm"                     # None, "blm" (latents) or "bam" (waveforms)
    mixup_prob: float = 0.5
    mixup_alpha: float = 5.0
    tempo_tolerance: float = 0.05
    validation_items: int = 64
    # --- optimisation
    learning_rate: float = 2e-4
    weight_decay: float = 0.01
    warmup_steps: int = 200
    max_grad_norm: float | None = 1.0
    mixed_precision: str = "bf16"
    batch_size: int = 16

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.condition_dropout <= 1.0:
            raise ValueError(f"condition_dropout must be in [0, 1], got {self.condition_dropout}")
        if self.mixup not in (None, "blm", "bam"):
            raise ValueError(f"mixup must be null, blm or bam, got {self.mixup!r}")
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.crop_seconds <= 0 or self.patch < 1:
            raise ValueError("crop_seconds must be positive and patch at least 1")


def latent_statistics(latents: list[torch.Tensor]) -> tuple[list[float], list[float]]:
    """Per-dimension mean and standard deviation over every frame of ``(hidden, frames)`` tensors."""
    total = sum(z.shape[-1] for z in latents)
    mean = sum(z.double().sum(-1) for z in latents) / total
    var = sum(((z.double() - mean[:, None]) ** 2).sum(-1) for z in latents) / total
    return mean.tolist(), var.clamp_min(1e-12).sqrt().tolist()


class DiffusionSolver(BaseSolver):
    config_class = DiffusionTrainingConfig
    name = "music_diffusion"

    def build(self) -> None:
        from diffusers import DDPMScheduler
        from diffusers.training_utils import EMAModel

        from hf_musiccodec.codecs import MusicCodecModel
        from hf_musiccodec.data.latent_crops import LatentCrops
        from hf_musiccodec.pipelines.latent_diffusion import LatentLayout, build_music_unet

        cfg = self.cfg
        self.codec = MusicCodecModel.from_pretrained(cfg.codec).eval()
        crop = crop_frames_for(cfg, self.codec.config.frame_rate)
        self.train_set = LatentCrops(cfg.train_cache, crop, seed=cfg.seed, mixup=cfg.mixup, mixup_prob=cfg.mixup_prob,
                                     mixup_alpha=cfg.mixup_alpha, tempo_tolerance=cfg.tempo_tolerance,
                                     codec=self.codec if cfg.mixup == "bam" else None)
        if self.train_set.hidden_size != self.codec.config.hidden_size:
            raise ValueError(f"{cfg.train_cache} holds {self.train_set.hidden_size}-dimensional latents, the codec "
                             f"{cfg.codec} has {self.codec.config.hidden_size}: a cache of another codec")
        self.validation_set = (LatentCrops(cfg.validation_cache, crop, seed=cfg.seed, random_crops=False)
                               if cfg.validation_cache else None)
        self.latent_mean, self.latent_std = latent_statistics(self.train_set.latents)
        self.layout = LatentLayout(self.latent_mean, self.latent_std, cfg.patch)
        self.noise_scheduler = DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps,
                                             beta_schedule=cfg.beta_schedule, prediction_type=cfg.prediction_type)
        unet = build_music_unet(self.layout.channels, self.train_set.clap_dim, cfg.block_out_channels,
                                cfg.layers_per_block, cfg.attention_head_dim, cfg.norm_num_groups)
        optimizer = torch.optim.AdamW(unet.parameters(), cfg.learning_rate, betas=tuple(cfg.betas),
                                      weight_decay=cfg.weight_decay)
        self.add_model("unet", unet, optimizer=optimizer,
                       scheduler=warmup_cosine(optimizer, cfg.warmup_steps, cfg.max_steps))
        self.ema = EMAModel(unet.parameters(), decay=cfg.ema_decay)
        self.accelerator.register_for_checkpointing(self.ema)
        logger.info("music diffusion U-Net: %.2fM parameters, crops of %d frames (%.2f s), %d train items, mixup %s",
                    sum(p.numel() for p in unet.parameters()) / 1e6, crop, crop / self.codec.config.frame_rate,
                    len(self.train_set), cfg.mixup)

    def _unwrapped(self):
        """The trained model (the U-Net here, the control branch in a ControlNet run), unwrapped."""
        return self.accelerator.unwrap_model(self._trained[0].model)

    # ------------------------------------------------------------------ steps
    def diffusion_loss(self, batch, timesteps: torch.Tensor, noise: torch.Tensor, condition_on: torch.Tensor,
                       model=None) -> torch.Tensor:
        """The v-prediction (or epsilon) MSE of ``batch`` noised to ``timesteps`` with ``noise``, over the
        columns that hold real frames; examples where ``condition_on`` is False see the null condition."""
        device = self.accelerator.device
        clean = self.layout.to_sample(batch["latents"].to(device))
        noise, timesteps = noise.to(device), timesteps.to(device)
        noisy = self.noise_scheduler.add_noise(clean, noise, timesteps)
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(clean, noise, timesteps)
        else:
            target = noise
        condition = batch["clap"].to(device) * condition_on.to(device)[:, None]
        prediction = self.predict(model or self._trained[0].model, noisy, timesteps, condition, batch)
        columns = torch.arange(clean.shape[-1], device=device)[None, :]
        real = (columns * self.layout.patch < batch["frames"].to(device)[:, None]).float()[:, None, None, :]
        error = (prediction.float() - target.float()) ** 2 * real
        return error.sum() / (real.sum() * clean.shape[1]).clamp_min(1.0)

    def predict(self, model, noisy, timesteps, condition, batch) -> torch.Tensor:
        """The trained ``model``'s prediction for ``noisy`` samples under ``condition`` (batch, dim)."""
        return model(noisy, timesteps, encoder_hidden_states=condition[:, None, :], class_labels=condition).sample

    def train_step(self, batch) -> dict:
        size = batch["latents"].shape[0]
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (size,))
        noise = torch.randn(size, self.layout.channels, 1, self.layout.frames_to_width(batch["latents"].shape[-1]))
        condition_on = torch.rand(size) >= self.cfg.condition_dropout
        loss = self.diffusion_loss(batch, timesteps, noise, condition_on)
        self.backward(loss)
        return {"loss": loss.detach(), "mixed_share": batch["mixed"].float().mean()}

    def after_optimizer_step(self) -> None:
        self.ema.step(self._unwrapped().parameters())

    def validation_cases(self) -> list:
        """``(metric suffix, batch transform or None, condition on)`` of each validation loss."""
        return [("", None, True), ("_null", None, False)]

    @torch.no_grad()
    def validate(self) -> dict:
        """The EMA model's loss on the validation items' first windows at three timesteps, for each of
        :meth:`validation_cases` (here: with and without the condition), with the same noise every time."""
        if self.validation_set is None:
            return {}
        from torch.utils.data import DataLoader, Subset

        n = min(self.cfg.validation_items, len(self.validation_set))
        loader = DataLoader(Subset(self.validation_set, range(n)), batch_size=self.cfg.batch_size)
        model = self.ema_model()
        metrics = {}
        for suffix, transform, conditioned in self.validation_cases():
            for t in VALIDATION_TIMESTEPS:
                generator = torch.Generator().manual_seed(t)
                total = count = 0.0
                for batch in loader:
                    batch = transform(batch) if transform else batch
                    size = batch["latents"].shape[0]
                    noise = torch.randn(size, self.layout.channels, 1,
                                        self.layout.frames_to_width(batch["latents"].shape[-1]), generator=generator)
                    with self.accelerator.autocast():
                        loss = self.diffusion_loss(batch, torch.full((size,), t), noise,
                                                   torch.full((size,), conditioned), model=model)
                    total += float(loss) * size
                    count += size
                metrics[f"val_loss_t{t}{suffix}"] = total / max(count, 1)
        return metrics

    # ------------------------------------------------------------------ export
    def ema_model(self):
        """A copy of the trained model holding the EMA weights, in eval mode."""
        import copy

        model = copy.deepcopy(self._unwrapped())
        self.ema.copy_to(model.parameters())
        return model.eval()

    def export_model(self):
        """A MusicDiffusionPipeline: EMA U-Net, DPM-Solver++ with the training schedule, codec and CLAP."""
        from diffusers import DPMSolverMultistepScheduler

        from hf_musiccodec.pipelines.latent_diffusion import MusicDiffusionPipeline

        clap, clap_processor = clap_for_export(self.cfg.clap)
        scheduler = DPMSolverMultistepScheduler.from_config(self.noise_scheduler.config)
        return MusicDiffusionPipeline(unet=self.ema_model(), scheduler=scheduler, codec=self.codec, clap=clap,
                                      clap_processor=clap_processor, latent_mean=self.latent_mean,
                                      latent_std=self.latent_std)


def crop_frames_for(cfg: DiffusionTrainingConfig, frame_rate: float) -> int:
    """The crop length (frames) a run trains on: whole patches, a width the U-Net halves (levels - 1)
    times without remainder, nearest ``crop_seconds``."""
    multiple = cfg.patch * 2 ** (len(cfg.block_out_channels) - 1)
    return multiple * max(1, round(cfg.crop_seconds * frame_rate / multiple))
