"""Configuration of a codec training run: a YAML/JSON file plus ``--set key=value`` overrides."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class CodecTrainingConfig:
    # --- model: a preset trained from scratch, or a checkpoint to fine-tune
    preset: str | None = "soundstream_24khz"
    model_overrides: dict = field(default_factory=dict)   # MusicCodecConfig fields changed from the preset
    init_from: str | None = None                          # folder (ours or transformers' EnCodec/DAC layout)

    # --- data: manifests (see hf_musiccodec.data) or a folder of audio files
    train_manifest: str | None = None
    validation_manifest: str | None = None                # defaults to train_manifest's "validation" split
    train_folder: str | None = None
    segment_seconds: float = 1.0
    crops_per_file: int = 16                              # random crops per file per epoch
    batch_size: int = 8
    num_workers: int = 0
    validation_items: int = 8                             # fixed validation crops
    validation_seconds: float = 5.0
    validation_bandwidths: list | None = None             # defaults to every target bandwidth

    # --- optimisation
    max_steps: int = 10_000
    learning_rate: float = 3e-4
    discriminator_learning_rate: float = 3e-4
    betas: tuple = (0.8, 0.99)
    lr_decay: float = 0.999996                            # exponential, per step (DAC)
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1000.0
    discriminator_max_grad_norm: float = 10.0
    mixed_precision: str = "no"                           # "no", "bf16" or "fp16" (where supported)

    # --- losses (DAC's weights by default)
    discriminator: str | None = "msstftd"                 # see training.discriminators.build_discriminator
    discriminator_channels: int = 32
    discriminator_kwargs: dict = field(default_factory=dict)  # e.g. n_ffts for msstftd, periods for mpd
    adversarial_start_step: int = 0                       # reconstruction-only warm-up
    adversarial_loss: str = "hinge"                       # "hinge" or "lsgan"
    mel_weight: float = 15.0
    waveform_weight: float = 0.0
    adversarial_weight: float = 1.0
    feature_matching_weight: float = 2.0
    vq_weight: float = 1.0                                # scales the model's own commitment + codebook loss
    loss_balancer: bool = False                           # EnCodec's balancer: weights become gradient shares

    # --- run
    output_dir: str = "runs/codec"
    seed: int = 0
    log_every: int = 25
    validate_every: int = 500
    save_every: int = 250
    keep_checkpoints: int = 2
    report_to: str | None = "tensorboard"
    num_threads: int | None = None                        # torch CPU threads per process (None: torch's default)

    @classmethod
    def load(cls, path: str | None = None, overrides: list[str] | None = None) -> "CodecTrainingConfig":
        values = {}
        if path:
            text = Path(path).read_text()
            values = (json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)) or {}
        for item in overrides or []:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"override {item!r} is not key=value")
            values[key.strip()] = yaml.safe_load(raw)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}; known: {sorted(known)}")
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        if not (self.train_manifest or self.train_folder):
            raise ValueError("set train_manifest or train_folder")
        if not (self.preset or self.init_from):
            raise ValueError("set preset (train from scratch) or init_from (fine-tune)")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
