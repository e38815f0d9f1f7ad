"""The codec solver (on the shared loop of :mod:`.base_solver`): trains any preset from scratch
or fine-tunes loaded weights, with a GAN (discriminator + adversarial and feature-matching losses), the
multi-scale mel loss and the quantizer's losses.

    accelerate launch -m hf_musiccodec.training.train_codec --config configs/codec.yaml
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..codecs import MusicCodecConfig, MusicCodecModel
from ..data import AudioCropDataset, crop_dataset_from_manifest, scan_audio_files
from ..metrics import mel_distance, si_sdr, stft_distance
from .base_solver import BaseSolver
from .codec_config import CodecTrainingConfig
from .discriminators import build_discriminator
from .losses import (
    LossBalancer,
    MultiResolutionSTFTLoss,
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
        balance = cfg.balance_manifests
        train = crop_dataset_from_manifest(cfg.train_manifest, "train", balance, segment_seconds=cfg.segment_seconds,
                                           seed=cfg.seed, crops_per_file=cfg.crops_per_file, **common)
        validation = crop_dataset_from_manifest(cfg.validation_manifest or cfg.train_manifest,
                                                None if cfg.validation_manifest else "validation", balance,
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


class CodecSolver(BaseSolver):
    """GAN codec training on :class:`BaseSolver`: the codec (``self.model``), an optional
    discriminator, the multi-scale mel / waveform / adversarial / feature-matching losses, the
    quantizer's losses and optionally EnCodec's loss balancer."""

    config_class = CodecTrainingConfig
    name = "codec"
    progress_metric = "loss/mel"
    find_unused_parameters = True  # quantizer dropout skips codebooks

    def build(self) -> None:
        cfg = self.cfg
        model = build_codec(cfg)
        mc = model.config
        warn_if_every_code_looks_dead(cfg, mc)
        self.mel_loss = MultiScaleMelLoss(mc.sampling_rate)
        self.hires_loss = MultiResolutionSTFTLoss(cfg.hires_fft_sizes, [n // 4 for n in cfg.hires_fft_sizes],
                                                  cfg.hires_fft_sizes)  # fmt: skip
        self.loss_weights = {"mel": cfg.mel_weight, "waveform": cfg.waveform_weight, "hires_stft": cfg.hires_stft_weight,
                             "adversarial": cfg.adversarial_weight, "feature_matching": cfg.feature_matching_weight}
        self.balancer = LossBalancer(self.loss_weights) if cfg.loss_balancer else None
        if self.balancer is not None:
            self.accelerator.register_for_checkpointing(self.balancer)  # its EMA of gradient norms
        for part in cfg.frozen:
            getattr(model, part).requires_grad_(False)
        self.train_set, self.validation_set = build_datasets(cfg, mc)
        self.validation_audio = fixed_validation_batch(self.validation_set, cfg.validation_items)
        self.add_model("model", model)
        self.discriminator = None
        if cfg.discriminator:
            discriminator = build_discriminator(cfg.discriminator, in_channels=mc.audio_channels,
                                                channels=cfg.discriminator_channels, **cfg.discriminator_kwargs)
            optimizer = torch.optim.AdamW(discriminator.parameters(), cfg.discriminator_learning_rate,
                                          betas=tuple(cfg.betas))
            self.add_model("discriminator", discriminator, optimizer, max_grad_norm=cfg.discriminator_max_grad_norm)

    # ------------------------------------------------------------------ steps
    def train_step(self, batch: dict) -> dict:
        # Both optimizers step at the end of the accumulation (in the base), so the generator's
        # adversarial losses of every micro-batch see the discriminator as it was at the start of
        # the step (not after its update, as in DAC's loop): k micro-batches then make exactly the
        # update of one batch k times larger.
        real = batch["input_values"]
        self._hold_frozen_parts()
        out = self.model(real)
        adversarial = self.discriminator is not None and self.state.step >= self.cfg.adversarial_start_step
        logs = {}
        if adversarial:
            loss = discriminator_loss(self.discriminator(real), self.discriminator(out.audio_values.detach()),
                                      kind=self.cfg.adversarial_loss)
            self.backward(loss)
            logs["loss/discriminator"] = loss
        logs.update(self._generator_losses(real, out, adversarial))
        return logs

    def _generator_losses(self, real: torch.Tensor, out, adversarial: bool) -> dict:
        cfg = self.cfg
        fake = out.audio_values
        losses = {"mel": self.mel_loss(fake, real)}  # every loss here is a function of the output audio
        if cfg.waveform_weight:
            losses["waveform"] = (fake - real).abs().mean()
        if cfg.hires_stft_weight:
            losses["hires_stft"] = self.hires_loss(fake, real)
        if adversarial:
            # The generator's losses must not add gradients to the discriminator's accumulated ones:
            # its parameters are frozen for these passes, which go around DDP (no reduction to do).
            critic = self.accelerator.unwrap_model(self.discriminator)
            critic.requires_grad_(False)
            with torch.no_grad():
                real_outputs = critic(real)
            fake_outputs = critic(fake)
            critic.requires_grad_(True)
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
        self.backward(total)
        logs["loss/generator"] = total
        return logs

    def _hold_frozen_parts(self) -> None:
        """Frozen parts run in eval mode (the base sets train mode every step): a frozen encoder's
        layers stop updating statistics, and frozen codebooks stop their EMA, k-means and dead-code
        restarts. The residual stack itself stays in train mode, so quantizer dropout still varies
        the number of codebooks the decoder is trained on."""
        model = self.accelerator.unwrap_model(self.model)
        if "encoder" in self.cfg.frozen:
            model.encoder.eval()
        if "quantizer" in self.cfg.frozen:
            for layer in model.quantizer.layers:
                layer.eval()

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
        return metrics

    def _write_samples(self, folder: Path, tag: str, audio: torch.Tensor, sampling_rate: int) -> None:
        from ..audio.io import save_audio

        folder.mkdir(parents=True, exist_ok=True)
        for i, item in enumerate(audio):
            save_audio(folder / f"{i}_{tag}.wav", item.numpy(), sampling_rate)
        writer = self.tracker_writer("tensorboard")
        if writer is not None:
            for i, item in enumerate(audio):
                writer.add_audio(f"samples/{i}/{tag}", item.mean(0), self.state.step, sample_rate=sampling_rate)


def train(cfg: CodecTrainingConfig) -> Path:
    return CodecSolver(cfg).fit()
