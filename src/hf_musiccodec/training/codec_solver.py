"""The codec solver: one Accelerate loop that trains any preset from scratch or fine-tunes
loaded weights, with a GAN (discriminator + adversarial and feature-matching losses), the
multi-scale mel loss and the quantizer's losses.

    accelerate launch -m hf_musiccodec.training.train_codec --config configs/codec.yaml
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..codecs import MusicCodecConfig, MusicCodecModel
from ..data import AudioCropDataset, crop_dataset_from_manifest, scan_audio_files
from ..metrics import mel_distance, si_sdr, stft_distance
from .checkpoints import CheckpointManager, TrainState
from .codec_config import CodecTrainingConfig
from .discriminators import build_discriminator
from .losses import (
    LossBalancer,
    MultiScaleMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)

logger = logging.getLogger(__name__)


def build_codec(cfg: CodecTrainingConfig) -> MusicCodecModel:
    if cfg.init_from:
        loaded = MusicCodecModel.from_pretrained(cfg.init_from)
        if not cfg.model_overrides:
            return loaded
        return transplant(loaded, MusicCodecConfig.from_dict({**loaded.config.to_dict(), **cfg.model_overrides}))
    return MusicCodecModel(MusicCodecConfig.from_preset(cfg.preset, **cfg.model_overrides))


def transplant(source: MusicCodecModel, config: MusicCodecConfig) -> MusicCodecModel:
    """A model of ``config`` that starts from every weight of ``source`` whose name and shape still
    fit (e.g. a trained encoder and codebooks under a new decoder); the rest start fresh."""
    model = MusicCodecModel(config)
    target = model.state_dict()
    fits = {k: v for k, v in source.state_dict().items() if k in target and target[k].shape == v.shape}
    model.load_state_dict(fits, strict=False)
    fresh = sorted(set(target) - set(fits))
    if fresh:
        modules = sorted({k.split(".")[0] for k in fresh})
        logger.warning("init_from: %d of %d tensors start fresh (in %s)", len(fresh), len(target), ", ".join(modules))
    return model


def build_datasets(cfg: CodecTrainingConfig, model_config) -> tuple[AudioCropDataset, AudioCropDataset]:
    common = dict(sampling_rate=model_config.sampling_rate, channels=model_config.audio_channels)
    if cfg.train_manifest:
        train = crop_dataset_from_manifest(cfg.train_manifest, "train", segment_seconds=cfg.segment_seconds,
                                           seed=cfg.seed, crops_per_file=cfg.crops_per_file, **common)
        validation = crop_dataset_from_manifest(cfg.validation_manifest or cfg.train_manifest,
                                                None if cfg.validation_manifest else "validation",
                                                segment_seconds=cfg.validation_seconds, seed=cfg.seed + 1, **common)
    else:
        paths = sorted(scan_audio_files(cfg.train_folder))
        train = AudioCropDataset(paths, segment_seconds=cfg.segment_seconds, seed=cfg.seed,
                                 crops_per_file=cfg.crops_per_file, **common)
        validation = AudioCropDataset(paths, segment_seconds=cfg.validation_seconds, seed=cfg.seed + 1, **common)
    return train, validation


def warn_if_every_code_looks_dead(cfg: CodecTrainingConfig, mc) -> None:
    """Dead-code restart compares each code's EMA count of assignments per step with a threshold;
    above the average count a batch can give, codes are re-drawn at every step and mean nothing."""
    if mc.quantizer_type != "euclidean" or mc.threshold_ema_dead_code <= 0:
        return
    per_code = cfg.batch_size * cfg.segment_seconds * mc.frame_rate / mc.codebook_size
    if mc.threshold_ema_dead_code > per_code / 2:
        logger.warning("threshold_ema_dead_code=%g but a batch assigns only %.2f vectors per code on average: "
                       "most codes will be restarted at every step; lower it below %.2f",
                       mc.threshold_ema_dead_code, per_code, per_code / 2)


def fixed_validation_batch(dataset: AudioCropDataset, items: int) -> torch.Tensor:
    """The same crops at every validation, so the metrics are comparable across steps."""
    n = min(items, len(dataset))
    stride = max(1, len(dataset) // n)
    return torch.stack([dataset[i * stride]["input_values"] for i in range(n)])


class CodecSolver:
    def __init__(self, cfg: CodecTrainingConfig):
        self.cfg = cfg
        self.output_dir = Path(cfg.output_dir)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        ddp = DistributedDataParallelKwargs(find_unused_parameters=True)  # quantizer dropout skips codebooks
        self.accelerator = Accelerator(
            gradient_accumulation_steps=cfg.gradient_accumulation_steps, mixed_precision=cfg.mixed_precision,
            log_with=cfg.report_to, project_dir=str(self.output_dir), kwargs_handlers=[ddp],
            # Accelerate treats a multi-process launch as distributed CPU training only when told to
            # use the CPU; without it every process would think it is alone.
            cpu=not torch.cuda.is_available(),
        )
        set_seed(cfg.seed, device_specific=True)
        self.model = build_codec(cfg)
        mc = self.model.config
        warn_if_every_code_looks_dead(cfg, mc)
        self.discriminator = (build_discriminator(cfg.discriminator, in_channels=mc.audio_channels,
                                                  channels=cfg.discriminator_channels, **cfg.discriminator_kwargs)
                              if cfg.discriminator else None)
        self.mel_loss = MultiScaleMelLoss(mc.sampling_rate)
        self.loss_weights = {"mel": cfg.mel_weight, "waveform": cfg.waveform_weight,
                             "adversarial": cfg.adversarial_weight, "feature_matching": cfg.feature_matching_weight}
        self.balancer = LossBalancer(self.loss_weights) if cfg.loss_balancer else None
        self.train_set, self.validation_set = build_datasets(cfg, mc)
        self.validation_audio = fixed_validation_batch(self.validation_set, cfg.validation_items)

        self.optimizer = torch.optim.AdamW(self.model.parameters(), cfg.learning_rate, betas=tuple(cfg.betas))
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, cfg.lr_decay)
        loader = DataLoader(self.train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                            num_workers=cfg.num_workers, generator=torch.Generator().manual_seed(cfg.seed))
        prepared = [self.model, self.optimizer, self.scheduler, loader]
        if self.discriminator is not None:
            self.d_optimizer = torch.optim.AdamW(self.discriminator.parameters(), cfg.discriminator_learning_rate,
                                                 betas=tuple(cfg.betas))
            self.d_scheduler = torch.optim.lr_scheduler.ExponentialLR(self.d_optimizer, cfg.lr_decay)
            prepared += [self.discriminator, self.d_optimizer, self.d_scheduler]
        prepared = self.accelerator.prepare(*prepared)
        self.model, self.optimizer, self.scheduler, self.loader = prepared[:4]
        if self.discriminator is not None:
            self.discriminator, self.d_optimizer, self.d_scheduler = prepared[4:]

        self.state = TrainState()
        self.accelerator.register_for_checkpointing(self.state)
        self.checkpoints = CheckpointManager(self.output_dir / "checkpoints", cfg.keep_checkpoints)

    # ------------------------------------------------------------------ steps
    def _discriminator_step(self, real: torch.Tensor, fake: torch.Tensor) -> dict:
        self.d_optimizer.zero_grad(set_to_none=True)
        loss = discriminator_loss(self.discriminator(real), self.discriminator(fake.detach()),
                                  kind=self.cfg.adversarial_loss)
        self.accelerator.backward(loss)
        if self.accelerator.sync_gradients:
            self.accelerator.clip_grad_norm_(self.discriminator.parameters(), self.cfg.discriminator_max_grad_norm)
        self.d_optimizer.step()
        self.d_scheduler.step()
        return {"loss/discriminator": loss.detach()}

    def _generator_step(self, real: torch.Tensor, out, adversarial: bool) -> dict:
        cfg = self.cfg
        fake = out.audio_values
        losses = {"mel": self.mel_loss(fake, real)}  # every loss here is a function of the output audio
        if cfg.waveform_weight:
            losses["waveform"] = (fake - real).abs().mean()
        if adversarial:
            with torch.no_grad():
                real_outputs = self.discriminator(real)
            fake_outputs = self.discriminator(fake)
            losses["adversarial"] = generator_adversarial_loss(fake_outputs, kind=cfg.adversarial_loss)
            losses["feature_matching"] = feature_matching_loss(real_outputs, fake_outputs)
        logs = {f"loss/{name}": value for name, value in losses.items()}
        logs["loss/vq"] = out.vq_loss
        if self.balancer is not None:
            # The balanced gradient on the output replaces the weighted sum; one backward pass
            # carries it and the VQ losses (which do not go through the output).
            grad, logs["loss/balanced"] = self.balancer.compute_gradient(losses, fake)
            total = (fake * grad.detach()).sum() + cfg.vq_weight * out.vq_loss
        else:
            total = sum(self.loss_weights[name] * value for name, value in losses.items()) + cfg.vq_weight * out.vq_loss
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(total)
        if self.accelerator.sync_gradients:
            logs["grad_norm/generator"] = self.accelerator.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        logs["loss/generator"] = total
        return {k: v.detach() if torch.is_tensor(v) else v for k, v in logs.items()}

    def train_step(self, batch: dict) -> dict:
        real = batch["input_values"]
        adversarial = self.discriminator is not None and self.state.step >= self.cfg.adversarial_start_step
        models = [self.model] + ([self.discriminator] if self.discriminator is not None else [])
        with self.accelerator.accumulate(*models):
            self.model.train()
            out = self.model(real)
            logs = {}
            if adversarial:
                logs.update(self._discriminator_step(real, out.audio_values))
            logs.update(self._generator_step(real, out, adversarial))
        return logs

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> dict:
        model = self.accelerator.unwrap_model(self.model).eval()
        cfg, mc = self.cfg, model.config
        audio = self.validation_audio.to(self.accelerator.device)
        bandwidths = cfg.validation_bandwidths or mc.target_bandwidths or [None]
        metrics = {}
        samples = self.output_dir / "samples" / f"step_{self.state.step}"
        for bandwidth in bandwidths:
            enc = model.encode(audio, bandwidth=bandwidth)
            decoded = model.decode(enc.audio_codes, enc.audio_scales, last_frame_pad_length=enc.last_frame_pad_length,
                                   latents=enc.latents).audio_values[..., : audio.shape[-1]]
            tag = "continuous" if bandwidth is None else f"{bandwidth:g}kbps"
            ref, est = audio.float().cpu(), decoded.float().cpu()
            metrics[f"val/{tag}/mel_distance"] = mel_distance(ref, est, mc.sampling_rate)
            metrics[f"val/{tag}/stft_distance"] = stft_distance(ref, est)
            metrics[f"val/{tag}/si_sdr"] = si_sdr(ref, est)
            self._write_samples(samples, tag, est[:2], mc.sampling_rate)
        self._write_samples(samples, "reference", audio[:2].float().cpu(), mc.sampling_rate)
        model.train()
        return metrics

    def _write_samples(self, folder: Path, tag: str, audio: torch.Tensor, sampling_rate: int) -> None:
        from ..audio.io import save_audio

        folder.mkdir(parents=True, exist_ok=True)
        for i, item in enumerate(audio):
            save_audio(folder / f"{i}_{tag}.wav", item.numpy(), sampling_rate)
        if self.cfg.report_to == "tensorboard":
            writer = self.accelerator.get_tracker("tensorboard", unwrap=True)
            for i, item in enumerate(audio):
                writer.add_audio(f"samples/{i}/{tag}", item.mean(0), self.state.step, sample_rate=sampling_rate)

    # ------------------------------------------------------------------ the loop
    def resume(self) -> None:
        latest = self.checkpoints.latest()
        if latest is not None:
            self.accelerator.load_state(str(latest))
            self.accelerator.print(f"resumed from {latest} at step {self.state.step}")

    def batches(self):
        """Endless batches, positioned where a resumed run stopped."""
        per_epoch = len(self.loader)
        if per_epoch == 0:
            raise ValueError(f"batch_size {self.cfg.batch_size} is larger than the {len(self.train_set)} training items")
        epoch, skip = divmod(self.state.step, per_epoch)
        for epoch in itertools.count(epoch):
            self.train_set.set_epoch(epoch)
            self.loader.set_epoch(epoch) if hasattr(self.loader, "set_epoch") else None
            loader = self.accelerator.skip_first_batches(self.loader, skip) if skip else self.loader
            skip = 0
            yield from loader

    def fit(self) -> Path:
        cfg, acc = self.cfg, self.accelerator
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if acc.is_main_process:
            (self.output_dir / "training_config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        if cfg.report_to:
            acc.init_trackers("codec", config={k: v for k, v in cfg.to_dict().items()
                                               if isinstance(v, (int, float, str, bool))})
        self.resume()
        progress = tqdm(total=cfg.max_steps, initial=self.state.step, disable=not acc.is_local_main_process,
                        desc="codec", dynamic_ncols=True)
        started, logs = time.time(), {}
        for batch in self.batches():
            if self.state.step >= cfg.max_steps:
                break
            logs = self.train_step(batch)
            if not acc.sync_gradients:
                continue
            self.state.step += 1
            progress.update(1)
            step = self.state.step
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                scalars = {k: float(acc.reduce(v, "mean")) if torch.is_tensor(v) else float(v) for k, v in logs.items()}
                scalars["lr"] = self.scheduler.get_last_lr()[0]
                scalars["steps_per_second"] = step / max(time.time() - started, 1e-9)
                acc.log(scalars, step=step)
                progress.set_postfix(mel=f"{scalars['loss/mel']:.3f}")
                acc.print(json.dumps({"step": step, **{k: round(v, 5) for k, v in scalars.items()}}))
            if step % cfg.validate_every == 0 or step == cfg.max_steps:
                if acc.is_main_process:
                    metrics = self.validate()
                    acc.log(metrics, step=step)
                    acc.print(json.dumps({"step": step, **{k: round(v, 4) for k, v in metrics.items()}}))
                acc.wait_for_everyone()
            if step % cfg.save_every == 0 or step == cfg.max_steps:
                self.checkpoints.save(acc, step)
                self.export(self.output_dir / "model")
        progress.close()
        acc.end_training()
        return self.output_dir / "model"

    def export(self, folder: Path) -> None:
        """The generator alone, loadable with ``MusicCodecModel.from_pretrained`` (written atomically)."""
        import os
        import shutil

        if not self.accelerator.is_main_process:
            return
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.accelerator.unwrap_model(self.model).save_pretrained(tmp)
        (tmp / "training_state.json").write_text(json.dumps({"step": self.state.step}))
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)


def train(cfg: CodecTrainingConfig) -> Path:
    return CodecSolver(cfg).fit()
