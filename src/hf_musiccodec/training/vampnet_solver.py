"""Training of VampNet (masked acoustic token modeling) on a latent cache's codes.

Each example is a crop of the cached codes; a share ``cos(pi/2 * r)`` of its tokens, ``r``
uniform per example, is masked (VampNet's schedule: from everything masked to almost nothing),
and the loss is the cross-entropy on the masked tokens only. The lowest
``num_conditioning_codebooks`` codebooks are never masked (a coarse-to-fine model). When the
cache has CLAP audio embeddings (:mod:`~hf_musiccodec.data.condition_cache`) the model sees the
crop's embedding with ``condition_prob`` and the null condition otherwise, so one model vamps with
and without a text or reference condition (and classifier-free guidance can mix the two).

The run exports a :class:`~hf_musiccodec.pipelines.vampnet.VampNetPipeline` folder (``model/``):
the codec, the model and, if given, CLAP for text conditioning.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from .base_solver import BaseSolver, BaseTrainingConfig
from .clap_export import clap_for_export
from .schedules import warmup_cosine

logger = logging.getLogger(__name__)

__all__ = ["VampNetTrainingConfig", "VampNetSolver"]

# Masking ratios r of the validation (masked share cos(pi/2 r): 92 %, 71 %, 38 %)
VALIDATION_RATIOS = (0.25, 0.5, 0.75)


@dataclass
class VampNetTrainingConfig(BaseTrainingConfig):
    # --- model
    codec: str = "pipelines/musiccodec-24khz"
    num_codebooks: int = 4                        # the codec's lowest codebooks the model reads
    num_conditioning_codebooks: int = 0           # > 0: a coarse-to-fine model (those are always given)
    init_from: str | None = None                  # a VampNetPipeline folder or VampNet model folder to fine-tune
    coarse_pipeline: str | None = None            # coarse-to-fine runs: the VampNetPipeline whose coarse model
                                                  # the export pairs with the trained one
    hidden_size: int = 256
    num_layers: int = 6
    num_heads: int = 4
    ffn_dim: int = 1024
    dropout: float = 0.1
    # --- data
    train_cache: str = "data/cache/music21-train"
    validation_cache: str | None = None
    crop_seconds: float = 6.0
    use_conditions: bool = True                   # CLAP audio embeddings from the caches' conditions
    condition_prob: float = 0.5                   # share of examples that see their CLAP embedding
    clap: str | None = "pipelines/music-clap"     # bundled into the export (text conditioning at inference)
    validation_items: int = 64
    # --- optimisation
    learning_rate: float = 6e-4
    betas: tuple = (0.9, 0.95)
    weight_decay: float = 0.05
    warmup_steps: int = 200
    max_grad_norm: float | None = 1.0
    mixed_precision: str = "bf16"
    batch_size: int = 12

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.condition_prob <= 1.0:
            raise ValueError(f"condition_prob must be in [0, 1], got {self.condition_prob}")
        if self.crop_seconds <= 0:
            raise ValueError("crop_seconds must be positive")
        if self.num_conditioning_codebooks > 0 and not self.coarse_pipeline:
            raise ValueError("a coarse-to-fine run (num_conditioning_codebooks > 0) needs coarse_pipeline: the "
                             "VampNetPipeline whose coarse model its export pairs with")


class VampNetSolver(BaseSolver):
    config_class = VampNetTrainingConfig
    name = "vampnet"

    def build(self) -> None:
        from hf_musiccodec.codecs import MusicCodecModel
        from hf_musiccodec.data.token_crops import TokenCrops

        cfg = self.cfg
        self.codec = MusicCodecModel.from_pretrained(cfg.codec).eval()
        if cfg.num_codebooks > self.codec.num_codebooks:
            raise ValueError(f"the codec has {self.codec.num_codebooks} codebooks, num_codebooks is {cfg.num_codebooks}")
        crop = math.ceil(cfg.crop_seconds * self.codec.config.frame_rate)
        kw = dict(num_codebooks=cfg.num_codebooks, crop_frames=crop, pad_code=0, seed=cfg.seed,
                  conditions=cfg.use_conditions)
        self.train_set = TokenCrops(cfg.train_cache, **kw)
        self.validation_set = (TokenCrops(cfg.validation_cache, **{**kw, "random_crops": False})
                               if cfg.validation_cache else None)
        model = self._build_model(crop)
        decay = [p for p in model.parameters() if p.ndim >= 2]
        rest = [p for p in model.parameters() if p.ndim < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                       {"params": rest, "weight_decay": 0.0}], cfg.learning_rate,
                                      betas=tuple(cfg.betas))  # fmt: skip
        self.add_model("vampnet", model, optimizer=optimizer,
                       scheduler=warmup_cosine(optimizer, cfg.warmup_steps, cfg.max_steps))
        logger.info("VampNet: %.2fM parameters, %d codebooks (%d given), crops of %d frames",
                    sum(p.numel() for p in model.parameters()) / 1e6, cfg.num_codebooks,
                    cfg.num_conditioning_codebooks, crop)

    def _build_model(self, crop_frames: int):
        from hf_musiccodec.models.vampnet import VampNetConfig, VampNetModel

        cfg = self.cfg
        if cfg.init_from:
            from pathlib import Path

            folder = Path(cfg.init_from)
            return VampNetModel.from_pretrained(folder / "vampnet" if (folder / "model_index.json").is_file() else folder)
        condition_dim = self.train_set.conditions.clap_dim if self.train_set.has_clap else 0
        config = VampNetConfig(
            codebook_size=self.codec.codebook_size, num_codebooks=cfg.num_codebooks,
            num_conditioning_codebooks=cfg.num_conditioning_codebooks, frame_rate=self.codec.config.frame_rate,
            context_frames=crop_frames, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
            num_heads=cfg.num_heads, ffn_dim=cfg.ffn_dim, dropout=cfg.dropout, condition_dim=condition_dim or 0)
        return VampNetModel(config)

    # ------------------------------------------------------------------ steps
    def masked_loss(self, batch, ratios: torch.Tensor, condition_on: torch.Tensor, model=None,
                    generator: torch.Generator | None = None):
        """The model's output on ``batch`` with masks drawn at ``ratios`` (one per example)."""
        from hf_musiccodec.pipelines.vampnet.masks import random_mask

        device = self.accelerator.device
        codes = batch["codes"].to(device)
        frames = torch.arange(codes.shape[-1], device=device)[None, :] < batch["frames"].to(device)[:, None]
        mask = random_mask(codes, ratios, generator=generator)
        condition = batch["clap"].to(device) if "clap" in batch and self._unwrapped().config.condition_dim else None
        model = model or self.vampnet
        return model(codes, mask=mask, condition_embeds=condition,
                     condition_mask=None if condition is None else condition_on.to(device),
                     padding_mask=frames, labels=codes), mask

    def _unwrapped(self):
        return self.accelerator.unwrap_model(self.vampnet)

    def train_step(self, batch) -> dict:
        size = batch["codes"].shape[0]
        ratios = torch.rand(size)
        condition_on = torch.rand(size) < self.cfg.condition_prob
        out, mask = self.masked_loss(batch, ratios, condition_on)
        self.backward(out.loss)
        return {"loss": out.loss.detach(), "masked_share": mask.float().mean()}

    @torch.no_grad()
    def validate(self) -> dict:
        """Cross-entropy and accuracy on the masked tokens of the validation items' first windows, at
        three masking ratios, with the same masks every time (and no condition)."""
        if self.validation_set is None:
            return {}
        from torch.utils.data import DataLoader, Subset

        n = min(self.cfg.validation_items, len(self.validation_set))
        loader = DataLoader(Subset(self.validation_set, range(n)), batch_size=self.cfg.batch_size)
        model = self._unwrapped().eval()
        metrics = {}
        for r in VALIDATION_RATIOS:
            generator = torch.Generator().manual_seed(int(r * 1000))
            loss = correct = count = 0.0
            for batch in loader:
                size = batch["codes"].shape[0]
                with self.accelerator.autocast():
                    out, mask = self.masked_loss(batch, torch.full((size,), r), torch.zeros(size, dtype=torch.bool),
                                                 model=model, generator=generator)
                n_cond = model.config.num_conditioning_codebooks
                frames = torch.arange(mask.shape[-1])[None, :] < batch["frames"][:, None]
                scored = (mask[:, n_cond:].cpu() & frames[:, None, :])
                hits = out.logits.argmax(-1).cpu() == batch["codes"][:, n_cond:]
                loss += float(out.loss) * int(scored.sum())
                correct += int((hits & scored).sum())
                count += int(scored.sum())
            metrics[f"val_loss_r{r:g}"] = loss / max(count, 1)
            metrics[f"val_acc_r{r:g}"] = correct / max(count, 1)
        return metrics

    # ------------------------------------------------------------------ export
    def export_model(self):
        """A VampNetPipeline: the trained model as ``vampnet`` or, for a coarse-to-fine run, as
        ``coarse_to_fine`` beside the coarse model of ``coarse_pipeline``."""
        from hf_musiccodec.pipelines.vampnet.pipeline_vampnet import VampNetPipeline

        model = self._unwrapped()
        if model.config.num_conditioning_codebooks:
            if "_coarse" not in self.__dict__:
                self._coarse = VampNetPipeline.from_pretrained(self.cfg.coarse_pipeline)
            coarse = self._coarse
            return VampNetPipeline(codec=self.codec, vampnet=coarse.vampnet, coarse_to_fine=model, clap=coarse.clap,
                                   clap_processor=coarse.clap_processor)
        clap, clap_processor = clap_for_export(self.cfg.clap) if model.config.condition_dim else (None, None)
        return VampNetPipeline(codec=self.codec, vampnet=model, clap=clap, clap_processor=clap_processor)
