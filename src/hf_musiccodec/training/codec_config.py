"""Configuration of a codec training run: a YAML/JSON file plus ``--set key=value`` overrides."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from .base_solver import BaseTrainingConfig, check_known


FREEZABLE_PARTS = ("encoder", "quantizer")


@dataclass
class CodecTrainingConfig(BaseTrainingConfig):
    """The run options of :class:`BaseTrainingConfig` (with codec defaults) and the codec's own."""

    # --- model: a preset trained from scratch, or a checkpoint to fine-tune
    preset: str | None = "soundstream_24khz"
    model_overrides: dict = field(default_factory=dict)   # MusicCodecConfig fields changed from the preset
    init_from: str | None = None                          # folder (ours or transformers' EnCodec/DAC layout)

    # --- data: manifests (see hf_musiccodec.data) or a folder of audio files
    train_manifest: str | list | None = None              # one manifest or a list (see balance_manifests)
    validation_manifest: str | list | None = None         # defaults to train_manifest's "validation" split
    balance_manifests: bool = True                        # with a list: an equal share of crops per manifest
    train_folder: str | None = None
    segment_seconds: float = 1.0
    crops_per_file: int = 16                              # random crops per file per epoch
    validation_items: int = 8                             # fixed validation crops
    validation_seconds: float = 5.0
    validation_bandwidths: list | None = None             # defaults to every target bandwidth

    # --- optimisation (DAC's)
    betas: tuple = (0.8, 0.99)
    lr_decay: float = 0.999996
    max_grad_norm: float | None = 1000.0
    discriminator_learning_rate: float = 3e-4
    discriminator_max_grad_norm: float = 10.0

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
    # Fine spectral detail that the mel loss cannot see: a semitone near 110 Hz is 6.5 Hz, and the
    # mel loss's largest window (2048 samples at 24 kHz) resolves 12 Hz. Parallel WaveGAN's STFT
    # loss at these FFT sizes (hop = size / 4) makes a wrong low pitch cost.
    hires_stft_weight: float = 0.0
    hires_fft_sizes: list = field(default_factory=lambda: [4096, 8192])

    # --- parts kept as init_from has them: ["encoder", "quantizer"] trains the decoder alone, so
    # the codes of every cached dataset (and the token LMs trained on them) stay valid
    frozen: list = field(default_factory=list)

    # --- run
    output_dir: str = "runs/codec"

    def validate(self) -> None:
        super().validate()
        if not (self.train_manifest or self.train_folder):
            raise ValueError("set train_manifest or train_folder")
        if not (self.preset or self.init_from):
            raise ValueError("set preset (train from scratch) or init_from (fine-tune)")
        if set(self.frozen) - set(FREEZABLE_PARTS):
            raise ValueError(f"frozen: parts are {', '.join(FREEZABLE_PARTS)}; got {self.frozen}")
        if self.frozen and not self.init_from:
            raise ValueError("frozen parts need init_from (a trained codec to keep them from)")
        from ..codecs import MusicCodecConfig

        codec_fields = set(MusicCodecConfig().to_dict()) | set(inspect.signature(MusicCodecConfig).parameters)
        check_known("model_overrides", self.model_overrides, codec_fields - {"kwargs"})
        if self.discriminator:
            from .discriminators import discriminator_options

            check_known(f"discriminator_kwargs for {self.discriminator!r}", self.discriminator_kwargs,
                        discriminator_options(self.discriminator))
