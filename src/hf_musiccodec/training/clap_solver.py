"""Contrastive training of :class:`~hf_musiccodec.conditioning.MusicClapModel` on captioned audio.

Data: JSONL files, one clip per line, with ``path`` (absolute, or relative to the file) and
``captions`` (a list of phrasings; one is drawn per clip and epoch) or ``caption``. That is what
``hf_musiccodec.data.captioned`` datasets give with ``ds[split].to_json(...)``; other columns are
kept for evaluation (instrument, tempo, key, ...).

Each epoch a random ``crop_seconds`` crop of every training clip is taken (seeded by
``(seed, epoch, index)``, so a resumed run sees the same crops), with a small random gain and
SpecAugment masks (``gain_db``, ``freq_masks``, ``time_masks``). Log-mel spectrograms of whole
clips are computed once (cached on disk under ``output_dir/features``) and cropped on frames,
which makes data loading free on CPU. The frozen MiniLM's token states are cached per caption
string in memory: only the trainable text layer runs per step.

Loss: symmetric InfoNCE (``MusicClapModel.forward(return_loss=True)``); learnable temperature.
Validation: text->audio and audio->text R@1 / R@10 on the validation file (whole clips,
windowed). Export: ``save_pretrained(max_shard_size="15MB")`` of the model (without MiniLM) and
the processor, one folder that loads with ``AutoModel`` / ``AutoProcessor``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from hf_musiccodec.audio.io import load_audio
from hf_musiccodec.training.base_solver import BaseSolver, BaseTrainingConfig, command_line

logger = logging.getLogger(__name__)

__all__ = ["ClapTrainingConfig", "ClapSolver", "CaptionedCrops", "read_captioned_jsonl", "retrieval_metrics"]


def read_captioned_jsonl(path) -> list[dict]:
    """Records of a captioned JSONL file; ``path`` made absolute, ``captions`` always a non-empty list."""
    path = Path(path)
    records = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            if "path" not in r:
                raise ValueError(f"{path}:{n}: record has no 'path'")
            p = Path(r["path"])
            r["path"] = str(p if p.is_absolute() else (path.parent / p).resolve())
            captions = r.get("captions") or ([r["caption"]] if r.get("caption") else [])
            captions = [c for c in captions if isinstance(c, str) and c.strip()]
            if not captions:
                raise ValueError(f"{path}:{n}: record {r['path']} has no caption")
            r["captions"] = captions
            records.append(r)
    if not records:
        raise ValueError(f"{path}: no records")
    return records


def retrieval_metrics(similarity: torch.Tensor, prefix: str = "") -> dict:
    """R@1, R@10 and mAP@10 of a (queries, items) similarity matrix whose diagonal is the match.

    With one relevant item per query, mAP@10 is the mean of 1/rank over queries whose match is in
    the top 10 (0 otherwise).
    """
    sim = similarity.float()
    n = sim.shape[0]
    if sim.shape[1] != n:
        raise ValueError(f"similarity must be square (one match per query), got {tuple(sim.shape)}")
    target = sim[torch.arange(n), torch.arange(n)]
    rank = (sim > target[:, None]).sum(1) + 1  # 1 = best; ties count in the query's favour
    k10 = rank <= 10
    return {
        f"{prefix}R@1": float((rank == 1).float().mean()),
        f"{prefix}R@10": float(k10.float().mean()),
        f"{prefix}mAP@10": float(torch.where(k10, 1.0 / rank.float(), torch.zeros_like(sim[:, 0])).mean()),
    }


class CaptionedCrops(Dataset):
    """Random fixed-length log-mel crops of captioned clips, with one phrasing per clip and epoch."""

    def __init__(self, records: list[dict], feature_extractor, crop_frames: int, seed: int = 0,
                 cache_dir=None, min_frames: int = 8, gain_db: float = 0.0, freq_masks: int = 0,
                 time_masks: int = 0):
        self.records = records
        self.gain_db, self.freq_masks, self.time_masks = float(gain_db), int(freq_masks), int(time_masks)
        self.fe = feature_extractor
        self.crop_frames = int(crop_frames)
        self.seed = int(seed)
        self.epoch = 0
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.features = [self._features(r["path"]) for r in records]
        short = [r["path"] for r, f in zip(records, self.features) if f.shape[-1] < min_frames]
        if short:
            raise ValueError(f"{len(short)} clips are shorter than {min_frames} frames, e.g. {short[0]}")

    def _features(self, path: str) -> torch.Tensor:
        fe = self.fe
        key = None
        if self.cache_dir is not None:
            stat = Path(path).stat()
            ident = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{fe.sampling_rate}|{fe.n_fft}|{fe.hop_length}|" \
                    f"{fe.n_mels}|{fe.f_min}|{fe.f_max}"
            key = self.cache_dir / f"{hashlib.sha1(ident.encode()).hexdigest()}.pt"
            if key.is_file():
                return torch.load(key)
        audio, _ = load_audio(path, sampling_rate=fe.sampling_rate, channels=1)
        mel = fe.log_mel(torch.from_numpy(np.ascontiguousarray(audio[0]))).to(torch.float16)
        if key is not None:
            key.parent.mkdir(parents=True, exist_ok=True)
            tmp = key.with_suffix(".tmp")
            torch.save(mel, tmp)
            tmp.replace(key)
        return mel

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        mel = self.features[index]
        frames = mel.shape[-1]
        start = int(rng.integers(0, max(frames - self.crop_frames, 0) + 1))
        crop = mel[:, start: start + self.crop_frames].float()
        crop = crop + float(rng.uniform(-self.gain_db, self.gain_db)) / 20  # log10 magnitude: dB / 20
        floor = math.log10(1e-5)
        for _ in range(self.freq_masks):  # SpecAugment: a band of up to 1/12 of the mel bins at the floor
            width = int(rng.integers(0, crop.shape[0] // 12 + 1))
            lo = int(rng.integers(0, crop.shape[0] - width + 1))
            crop[lo: lo + width] = floor
        for _ in range(self.time_masks):  # and a span of up to 1/20 of the crop
            width = int(rng.integers(0, crop.shape[1] // 20 + 1))
            lo = int(rng.integers(0, max(crop.shape[1] - width, 0) + 1))
            crop[:, lo: lo + width] = floor
        features = torch.full((mel.shape[0], self.crop_frames), float(self.fe.padding_value))
        features[:, : crop.shape[-1]] = crop
        mask = torch.zeros(self.crop_frames, dtype=torch.long)
        mask[: crop.shape[-1]] = 1
        captions = self.records[index]["captions"]
        caption = captions[int(rng.integers(len(captions)))]
        return {"input_features": features, "audio_attention_mask": mask, "caption": caption}


@dataclass
class ClapTrainingConfig(BaseTrainingConfig):
    output_dir: str = "runs/music-clap"
    train_file: str = ""                      # captioned JSONL (see the module docstring)
    validation_file: str | None = None
    crop_seconds: float | None = None         # None: the model's clip_seconds
    model_config: dict = field(default_factory=dict)  # MusicClapConfig overrides
    init_from: str | None = None              # a saved MusicClap folder to continue from
    validation_max_items: int = 1000
    gain_db: float = 2.0                      # augmentation: random gain in [-gain_db, gain_db] dB
    freq_masks: int = 1                       # augmentation: SpecAugment bands (up to n_mels / 12 each)
    time_masks: int = 2                       # augmentation: SpecAugment spans (up to crop / 20 each)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05                # cosine decay to this fraction of learning_rate at max_steps
    weight_decay: float = 0.01
    batch_size: int = 48
    learning_rate: float = 5e-4
    max_grad_norm: float | None = 1.0
    validate_every: int = 200
    save_every: int = 100
    log_every: int = 10

    def validate(self) -> None:
        super().validate()
        if not self.train_file:
            raise ValueError("train_file is required (a captioned JSONL file)")
        if self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("warmup_steps must be >= 0 and min_lr_ratio in [0, 1]")


class _Artifact:
    """What ``export`` saves: the model (sharded safetensors) and its processor, in one folder."""

    def __init__(self, model, processor):
        self.model, self.processor = model, processor

    def save_pretrained(self, folder) -> None:
        self.model.save_pretrained(folder, max_shard_size="15MB")
        self.processor.save_pretrained(folder)


class ClapSolver(BaseSolver):
    config_class = ClapTrainingConfig
    name = "music-clap"

    def build(self) -> None:
        from hf_musiccodec.conditioning import MusicClapConfig, MusicClapModel, build_music_clap_processor

        cfg = self.cfg
        if cfg.init_from:
            model = MusicClapModel.from_pretrained(cfg.init_from)
        else:
            model = MusicClapModel(MusicClapConfig(**cfg.model_config))
        self.processor = build_music_clap_processor(model.config)
        fe = self.processor.feature_extractor
        crop = cfg.crop_seconds or model.config.clip_seconds
        if crop > model.config.clip_seconds:
            raise ValueError(f"crop_seconds {crop} exceeds the model window clip_seconds {model.config.clip_seconds}")
        self.crop_frames = int(round(crop * fe.sampling_rate / fe.hop_length))
        cache = self.output_dir / "features"
        self.train_records = read_captioned_jsonl(cfg.train_file)
        self.train_set = CaptionedCrops(self.train_records, fe, self.crop_frames, cfg.seed, cache_dir=cache,
                                        gain_db=cfg.gain_db, freq_masks=cfg.freq_masks, time_masks=cfg.time_masks)
        self.validation_records = None
        if cfg.validation_file:
            records = read_captioned_jsonl(cfg.validation_file)[: cfg.validation_max_items]
            self.validation_records = records
            self.validation_features = [self.train_set._features(r["path"]) for r in records]
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            (no_decay if p.ndim < 2 or "norm" in name or "position" in name else decay).append(p)
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}],
                                      lr=cfg.learning_rate, betas=tuple(cfg.betas))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        self._text_cache: dict[str, torch.Tensor] = {}
        self.history: list[float] = []
        self.add_model("model", model, optimizer=optimizer, scheduler=scheduler)
        captions = [c for r in self.train_records for c in r["captions"]]
        captions += [r["captions"][0] for r in self.validation_records or []]
        self.precompute_text_states(captions, self.output_dir / "text_states.pt")

    def precompute_text_states(self, captions: list[str], cache_file: Path | None = None, chunk: int = 64) -> None:
        """Run the frozen MiniLM once over every caption (kept in memory and in ``cache_file``)."""
        if cache_file is not None and cache_file.is_file():
            self._text_cache.update(torch.load(cache_file))
        todo = list(dict.fromkeys(c for c in captions if c not in self._text_cache))
        for i in range(0, len(todo), chunk):
            self.text_states(todo[i: i + chunk])
            if i // chunk % 10 == 0:
                logger.info("MiniLM states: %d / %d new captions", min(i + chunk, len(todo)), len(todo))
        if todo and cache_file is not None and self.accelerator.is_main_process:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            torch.save(self._text_cache, tmp)
            tmp.replace(cache_file)

    def _lr_factor(self, step: int) -> float:
        cfg = self.cfg
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        progress = min(step / max(cfg.max_steps, 1), 1.0)
        return warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    # ------------------------------------------------------------------ text states (frozen MiniLM, cached)
    def text_states(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded MiniLM token states and mask of ``captions`` (each caption computed once per run)."""
        model = self.accelerator.unwrap_model(self.model)
        tok = self.processor.tokenizer
        missing = list(dict.fromkeys(c for c in captions if c not in self._text_cache))
        if missing:
            tokens = tok(missing, padding=True, truncation=True, max_length=self.processor.max_length,
                         return_tensors="pt")
            states = model.encode_text_tokens(tokens["input_ids"], tokens["attention_mask"]).cpu()
            for i, c in enumerate(missing):
                n = int(tokens["attention_mask"][i].sum())
                self._text_cache[c] = states[i, :n].to(torch.float16)
        items = [self._text_cache[c] for c in captions]
        width = max(x.shape[0] for x in items)
        states = torch.zeros(len(items), width, items[0].shape[1])
        mask = torch.zeros(len(items), width, dtype=torch.long)
        for i, x in enumerate(items):
            states[i, : x.shape[0]] = x.float()
            mask[i, : x.shape[0]] = 1
        device = self.accelerator.device
        return states.to(device), mask.to(device)

    # ------------------------------------------------------------------ steps
    def train_step(self, batch) -> dict:
        states, mask = self.text_states(list(batch["caption"]))
        out = self.model(input_features=batch["input_features"], audio_attention_mask=batch["audio_attention_mask"],
                         text_hidden_states=states, attention_mask=mask, return_loss=True)
        self.backward(out.loss)
        self.history.append(float(out.loss.detach()))
        n = out.logits_per_text.shape[0]
        hits = (out.logits_per_text.argmax(1) == torch.arange(n, device=out.logits_per_text.device)).float().mean()
        scale = self.accelerator.unwrap_model(self.model).logit_scale.detach().exp()
        return {"loss": out.loss.detach(), "batch_R@1": hits, "logit_scale": scale}

    @torch.no_grad()
    def embed_validation(self, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-norm (text, audio) embeddings of the validation clips (first phrasing, whole clips)."""
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        device = self.accelerator.device
        texts, audios = [], []
        for i in range(0, len(self.validation_records), batch_size):
            records = self.validation_records[i: i + batch_size]
            states, mask = self.text_states([r["captions"][0] for r in records])
            texts.append(model.get_text_features(text_hidden_states=states, attention_mask=mask).pooler_output)
            mels = self.validation_features[i: i + batch_size]
            width = max(m.shape[-1] for m in mels)
            pad = float(self.processor.feature_extractor.padding_value)
            feats = torch.full((len(mels), mels[0].shape[0], width), pad)
            amask = torch.zeros(len(mels), width, dtype=torch.long)
            for j, m in enumerate(mels):
                feats[j, :, : m.shape[-1]] = m.float()
                amask[j, : m.shape[-1]] = 1
            audios.append(model.get_audio_features(feats.to(device), amask.to(device)).pooler_output)
        model.train(was_training)
        return torch.cat(texts), torch.cat(audios)

    def validate(self) -> dict:
        if not self.validation_records:
            return {}
        text, audio = self.embed_validation()
        sim = text @ audio.T
        metrics = retrieval_metrics(sim, "val/t2a_")
        metrics.update(retrieval_metrics(sim.T, "val/a2t_"))
        # The best model so far by mean mAP@10 of both directions, exported to output_dir/best
        # (small data overfits; the final step is not always the best one).
        score = (metrics["val/t2a_mAP@10"] + metrics["val/a2t_mAP@10"]) / 2
        metrics["val/score"] = score
        best_file = self.output_dir / "best" / "training_state.json"
        best = json.loads(best_file.read_text())["val/score"] if best_file.is_file() else -1.0
        if score > best:
            self.export(self.output_dir / "best")
            best_file.write_text(json.dumps({"step": self.state.step, "val/score": score, **metrics}))
        return metrics

    def export_model(self):
        return _Artifact(self.accelerator.unwrap_model(self.model), self.processor)


def main(argv=None):
    return command_line(ClapSolver, argv, prog="python -m hf_musiccodec.training.train_clap",
                        description="Train the CLAP-style MusicClap model on captioned audio.")
