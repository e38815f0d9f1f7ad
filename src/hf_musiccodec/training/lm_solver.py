"""Training of the text-to-music token LM (transformers' MusicGen) on a latent cache's codes.

What transformers' MusicGen lacks for training, added here: the delay pattern on the labels
(:mod:`~hf_musiccodec.pipelines.text_to_music.delay_pattern`), condition dropout for
classifier-free guidance, the extra conditions (CLAP token, melody tokens) of
:class:`MusicConditioner`, frozen codec and text encoder, and LoRA through ``peft``.

Per example the conditions are drawn from torch's per-micro-batch RNG (the same on every
process and in a resumed run): with ``drop_all`` every condition is off (the unconditional model
guidance needs); otherwise text is on unless ``text_dropout`` drops it (or the item has no
caption), the CLAP audio embedding is on with ``clap_prob``, the melody with ``melody_prob``, the
beat-phase tokens with ``rhythm_prob`` and the key with ``key_prob`` (these two where the item has
beats / a known key).

The run exports a :class:`TextToMusicPipeline` folder (``model/``): the MusicGen folder
(loadable by ``pipeline("text-to-audio")``), the conditioner, the tokenizer and, if given, CLAP.
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

__all__ = ["LMTrainingConfig", "LMSolver"]


# the conditioner's parameters of each condition (their names' common prefix), for fresh_conditions
CONDITION_PARAMETERS = {"clap": "clap_", "melody": "melody_", "rhythm": "rhythm_", "key": "key_"}


@dataclass
class LMTrainingConfig(BaseTrainingConfig):
    # --- model: fresh over a codec, or a MusicGen folder to fine-tune (ours or the official layout)
    codec: str = "pipelines/musiccodec-24khz"
    bandwidth: float | None = 1.5                 # kbps of the codec's codes the LM predicts
    init_from: str | None = None                  # a TextToMusicPipeline folder or a MusicGen folder
    hidden_size: int = 256
    num_layers: int = 6
    num_heads: int = 4
    ffn_dim: int = 1024
    dropout: float = 0.1
    melody_stride: int = 3
    rhythm_vocab: int = 0                         # > 0: a beat-phase condition (phases per beat)
    key_condition: bool = False                   # a key condition (tonic triad tokens)
    decoder_inputs: bool = False                  # rhythm / key also added to the decoder input per frame
    fresh_conditions: tuple = ()                  # with init_from: these conditions' weights start afresh
    lora_rank: int = 0                            # > 0: train LoRA adapters (peft) instead of the decoder
    lora_alpha: float = 16.0
    # --- data
    train_cache: str = "data/cache/music21-train"
    validation_cache: str | None = None
    crop_seconds: float = 10.0
    use_conditions: bool = True                   # melody / CLAP from the caches' conditions.safetensors
    clap: str | None = "pipelines/music-clap"     # bundled into the export (text embedding at inference)
    max_text_tokens: int = 64
    validation_items: int = 64
    # --- condition dropout
    drop_all: float = 0.1
    text_dropout: float = 0.2
    clap_prob: float = 0.3
    melody_prob: float = 0.3
    rhythm_prob: float = 0.5
    key_prob: float = 0.5
    # --- wrong-key contrast (see LMSolver.key_contrast): > 0 adds its hinge loss with this weight
    key_contrast_weight: float = 0.0
    key_contrast_seconds: float = 1.5             # the crop's start, where no context tells the key yet
    key_contrast_margin: float = 0.1              # nats per token the right key must win by
    # --- optimisation (audiocraft's MusicGen: AdamW, betas (0.9, 0.95), clip 1)
    learning_rate: float = 1e-3
    betas: tuple = (0.9, 0.95)
    weight_decay: float = 0.1
    warmup_steps: int = 500
    max_grad_norm: float | None = 1.0
    mixed_precision: str = "bf16"
    batch_size: int = 8

    def validate(self) -> None:
        super().validate()
        if isinstance(self.fresh_conditions, str):
            self.fresh_conditions = (self.fresh_conditions,)
        unknown = set(self.fresh_conditions) - set(CONDITION_PARAMETERS)
        if unknown:
            raise ValueError(f"fresh_conditions: {sorted(unknown)} are not conditions ({', '.join(CONDITION_PARAMETERS)})")
        for name in ("drop_all", "text_dropout", "clap_prob", "melody_prob", "rhythm_prob", "key_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.crop_seconds <= 0:
            raise ValueError("crop_seconds must be positive")
        if self.key_contrast_weight and not self.key_condition:
            raise ValueError("key_contrast_weight needs key_condition")
        if self.key_contrast_weight and not 0 < self.key_contrast_seconds <= self.crop_seconds:
            raise ValueError("key_contrast_seconds must be in (0, crop_seconds]")


class LMSolver(BaseSolver):
    config_class = LMTrainingConfig
    name = "text_to_music"
    find_unused_parameters = True  # a batch without melody / CLAP gives those projections no gradient

    def build(self) -> None:
        from hf_musiccodec.data.token_crops import TokenCrops
        from hf_musiccodec.pipelines.text_to_music.conditioner import MusicConditioner, MusicConditionerConfig
        from hf_musiccodec.pipelines.text_to_music.modeling import load_lm_tokenizer

        cfg = self.cfg
        musicgen, conditioner = self._build_models()
        musicgen.text_encoder.requires_grad_(False)
        musicgen.audio_encoder.requires_grad_(False).eval()
        self.tokenizer = load_lm_tokenizer(_tokenizer_folder(cfg.init_from))
        decoder_cfg = musicgen.decoder.config
        codec = musicgen.audio_encoder
        crop = self.crop_frames(codec)
        if crop + decoder_cfg.num_codebooks > decoder_cfg.max_position_embeddings:
            raise ValueError(f"crop_seconds {cfg.crop_seconds} needs {crop} positions; the decoder has "
                             f"{decoder_cfg.max_position_embeddings}")
        kw = dict(num_codebooks=decoder_cfg.num_codebooks, crop_frames=crop, pad_code=decoder_cfg.pad_token_id,
                  seed=cfg.seed, conditions=cfg.use_conditions, rhythm_vocab=cfg.rhythm_vocab)
        self.train_set = TokenCrops(cfg.train_cache, **kw)
        self.validation_set = (TokenCrops(cfg.validation_cache, **{**kw, "random_crops": False})
                               if cfg.validation_cache else None)
        attributes = dict(rhythm_vocab=cfg.rhythm_vocab, key_condition=cfg.key_condition,
                          decoder_input_size=decoder_cfg.hidden_size if cfg.decoder_inputs else 0)
        if (cfg.rhythm_vocab or cfg.key_condition) and not self.train_set.has_melody:
            raise ValueError(f"rhythm / key conditions need {cfg.train_cache}'s conditions.safetensors")
        if conditioner is None:
            conditioner = MusicConditioner(MusicConditionerConfig(
                hidden_size=musicgen.text_encoder.config.hidden_size,
                clap_dim=self.train_set.conditions.clap_dim if self.train_set.has_clap else 0,
                melody_vocab=13 if self.train_set.has_melody else 0, melody_stride=cfg.melody_stride, **attributes))
        elif cfg.fresh_conditions or any(getattr(conditioner.config, k) != v for k, v in attributes.items()):
            conditioner = _with_attributes(conditioner, attributes, fresh=cfg.fresh_conditions)
        self._musicgen_unwrapped = musicgen
        trainable = [p for p in musicgen.parameters() if p.requires_grad]
        decay = [p for p in trainable if p.ndim >= 2]
        rest = [p for p in trainable if p.ndim < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                       {"params": rest, "weight_decay": 0.0}], cfg.learning_rate,
                                      betas=tuple(cfg.betas))  # fmt: skip
        self.add_model("musicgen", musicgen, optimizer=optimizer, scheduler=self._schedule(optimizer))
        if any(True for _ in conditioner.parameters()):
            cond_opt = torch.optim.AdamW(conditioner.parameters(), cfg.learning_rate, betas=tuple(cfg.betas))
            self.add_model("conditioner", conditioner, optimizer=cond_opt, scheduler=self._schedule(cond_opt))
        else:  # text only: nothing of its own to train
            self.conditioner = conditioner
        n = sum(p.numel() for p in trainable)
        logger.info("text-to-music LM: %.2fM trainable parameters, %d codebooks, crops of %d frames", n / 1e6,
                    decoder_cfg.num_codebooks, crop)

    def _schedule(self, optimizer):
        return warmup_cosine(optimizer, self.cfg.warmup_steps, self.cfg.max_steps)

    def _build_models(self):
        from hf_musiccodec.codecs import MusicCodecModel
        from hf_musiccodec.pipelines.text_to_music.modeling import build_text_to_music_model
        from hf_musiccodec.pipelines.text_to_music.pipeline_text_to_music import load_musicgen_parts

        cfg = self.cfg
        if cfg.init_from:
            musicgen, conditioner = load_musicgen_parts(cfg.init_from)
        else:
            codec = MusicCodecModel.from_pretrained(cfg.codec)
            # The position table is the trained context: the pipeline generates longer audio in
            # windows of this many frames.
            crop = self.crop_frames(codec)
            k = codec.num_quantizers_for_bandwidth(cfg.bandwidth)
            musicgen = build_text_to_music_model(codec, cfg.bandwidth, hidden_size=cfg.hidden_size,
                                                 num_layers=cfg.num_layers, num_heads=cfg.num_heads,
                                                 ffn_dim=cfg.ffn_dim, dropout=cfg.dropout,
                                                 max_position_embeddings=crop + k)  # fmt: skip
            conditioner = None
        if cfg.lora_rank > 0:
            musicgen = self._with_lora(musicgen)
        return musicgen, conditioner

    def crop_frames(self, codec) -> int:
        """Codec frames per training crop."""
        return math.ceil(self.cfg.crop_seconds * codec.config.frame_rate)

    def _with_lora(self, musicgen):
        """LoRA adapters on the decoder's attention and feed-forward layers; everything else frozen."""
        from peft import LoraConfig, inject_adapter_in_model

        cfg = self.cfg
        musicgen.requires_grad_(False)
        targets = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
        lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, target_modules=targets, lora_dropout=0.0)
        inject_adapter_in_model(lora, musicgen.decoder)
        return musicgen

    # ------------------------------------------------------------------ steps
    def condition_flags(self, batch_size: int, has_text: torch.Tensor, has_rhythm: torch.Tensor | None = None,
                        has_key: torch.Tensor | None = None) -> dict:  # fmt: skip
        """Which conditions each example sees (drawn from torch's RNG: see the module docstring)."""
        cfg = self.cfg
        keep = torch.rand(batch_size) >= cfg.drop_all
        flags = {
            "text": keep & has_text & (torch.rand(batch_size) >= cfg.text_dropout),
            "clap": keep & (torch.rand(batch_size) < cfg.clap_prob),
            "melody": keep & (torch.rand(batch_size) < cfg.melody_prob),
        }
        if has_rhythm is not None:
            flags["rhythm"] = keep & has_rhythm & (torch.rand(batch_size) < cfg.rhythm_prob)
        if has_key is not None:
            flags["key"] = keep & has_key & (torch.rand(batch_size) < cfg.key_prob)
        return flags

    def encode_conditions(self, batch, flags: dict, unwrapped: bool = False):
        """MusicGen's ``encoder_outputs`` and ``attention_mask`` for a batch, with the conditions ``flags``
        turn on, and the conditioner's per-frame decoder inputs (or None)."""
        device = self.accelerator.device
        text, text_mask = self.text_states(list(batch["caption"]))
        cond = self.accelerator.unwrap_model(self.conditioner).config
        extra = {}
        if "clap" in batch and cond.clap_dim:
            extra.update(clap=batch["clap"].to(device), clap_on=flags["clap"].to(device))
        if "melody" in batch and cond.melody_vocab:
            extra.update(melody=batch["melody"].to(device), melody_on=flags["melody"].to(device))
        if "rhythm" in batch and cond.rhythm_vocab:
            extra.update(rhythm=batch["rhythm"].to(device), rhythm_on=flags.get("rhythm", _off(batch)).to(device))
        if "key" in batch and cond.key_condition:
            extra.update(key=batch["key"].to(device), key_on=flags.get("key", _off(batch)).to(device))
        text_mask = text_mask * flags["text"].to(device)[:, None]
        conditioner = self.accelerator.unwrap_model(self.conditioner) if unwrapped else self.conditioner
        return conditioner(text, text_mask, frames=batch["codes"].shape[-1], **extra)

    def text_states(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen MiniLM states (B, L, 384) and mask (B, L) of captions, each computed once per run:
        MiniLM is 3x the LM's size, and the captions repeat every epoch. One caption per call, so
        its states never depend on which batch first needed it (a resumed run computes the same)."""
        cache = self.__dict__.setdefault("_text_cache", {})
        musicgen = self.accelerator.unwrap_model(self.musicgen)
        for caption in dict.fromkeys(c for c in captions if c not in cache):
            tokens = self.tokenizer([caption], truncation=True, max_length=self.cfg.max_text_tokens,
                                    return_tensors="pt").to(self.accelerator.device)  # fmt: skip
            with torch.no_grad():
                cache[caption] = musicgen.text_encoder(**tokens).last_hidden_state[0].to("cpu", torch.bfloat16)
        length = max(cache[c].shape[0] for c in captions)
        out = torch.zeros(len(captions), length, cache[captions[0]].shape[-1])
        mask = torch.zeros(len(captions), length, dtype=torch.long)
        for i, caption in enumerate(captions):
            n = cache[caption].shape[0]
            out[i, :n], mask[i, :n] = cache[caption].float(), 1
        return out.to(self.accelerator.device), mask.to(self.accelerator.device)

    def lm_loss(self, batch, flags: dict, unwrapped: bool = False):
        """Forward of a batch; ``unwrapped`` skips the DDP wrappers (validation runs on the main
        process alone, and a wrapped forward there would wait for the other ranks)."""
        from hf_musiccodec.pipelines.text_to_music.delay_pattern import training_inputs
        from hf_musiccodec.pipelines.text_to_music.modeling import frame_inputs_added

        states, mask, frame_inputs = self.encode_conditions(batch, flags, unwrapped)
        musicgen = self.accelerator.unwrap_model(self.musicgen)
        inputs, labels = training_inputs(musicgen.decoder, batch["codes"].to(self.accelerator.device))
        model = musicgen if unwrapped else self.musicgen
        # decoder input position p predicts codebook 0's frame p: it gets that frame's additions
        with frame_inputs_added(musicgen, frame_inputs):
            out = model(encoder_outputs=(states,), attention_mask=mask, decoder_input_ids=inputs, labels=labels)
        return out, labels

    def train_step(self, batch) -> dict:
        captions = list(batch["caption"])
        flags = self.condition_flags(len(captions), _has_text(captions), *_has_attributes(batch))
        out, _ = self.lm_loss(batch, flags)
        loss, logs = out.loss, {"loss": out.loss.detach(), "text_on": flags["text"].float().mean()}
        if self.cfg.key_contrast_weight and flags.get("key") is not None and flags["key"].any():
            contrast, gap = self.key_contrast(batch, flags)
            loss = loss + self.cfg.key_contrast_weight * contrast
            logs.update({"key_contrast": contrast.detach(), "key_gap": gap})
        self.backward(loss)
        return logs

    def key_contrast(self, batch, flags: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Hinge loss ``relu(margin - (nll(wrong key) - nll(right key)))`` on the first
        ``key_contrast_seconds`` of the crops whose key is on, and the mean gap (nats per token).

        Why: after a second of music the codes themselves tell the key, so the plain loss gains
        almost nothing from the key condition (0.005 nats per token here) and the model learns to
        ignore it, yet at generation time the first notes are drawn from the condition alone. The
        wrong key is the parallel one (same tonic, other mode) for half the crops, so the mode
        must matter, and any other key for the rest. A second, short forward (single process: DDP
        allows one forward per backward)."""
        if self.accelerator.num_processes > 1:
            raise ValueError("key_contrast_weight runs in one process only")
        rows = flags["key"].nonzero()[:, 0]
        musicgen = self.accelerator.unwrap_model(self.musicgen)
        frames = math.ceil(self.cfg.key_contrast_seconds * musicgen.audio_encoder.config.frame_rate)
        start = _batch_start(batch, rows, frames)
        key = start["key"]
        parallel = torch.rand(len(rows)) < 0.5
        wrong = torch.where(parallel, (key + 12) % 24, (key + torch.randint(1, 24, (len(rows),))) % 24)
        both = {name: value + value if isinstance(value, list) else torch.cat([value, value])
                for name, value in start.items()}
        both["key"] = torch.cat([key, wrong])
        both_flags = {name: torch.cat([on[rows], on[rows]]) for name, on in flags.items()}
        out, labels = self.lm_loss(both, both_flags)
        nll = _nll_per_example(out.logits, labels, musicgen.decoder.config.pad_token_id)
        right, wrong_nll = nll.chunk(2)
        gap = wrong_nll - right
        return torch.relu(self.cfg.key_contrast_margin - gap).mean(), gap.detach().mean()

    @torch.no_grad()
    def validate(self) -> dict:
        """Cross-entropy and top-1 accuracy per codebook on the validation items' first windows,
        with the text only (the text-to-music use), with no condition at all and, for a model with
        rhythm / key conditions, with the text and those (``attributes``)."""
        if self.validation_set is None:
            return {}
        from torch.utils.data import DataLoader, Subset

        n = min(self.cfg.validation_items, len(self.validation_set))
        loader = DataLoader(Subset(self.validation_set, range(n)), batch_size=self.cfg.batch_size)
        for model in (self.musicgen, self.conditioner):
            model.eval()
        sums: dict = {}
        for batch in loader:
            size = len(batch["caption"])
            has_text = _has_text(batch["caption"])
            off = torch.zeros(size, dtype=torch.bool)
            rows = [("text", {"text": has_text, "clap": off, "melody": off}),
                    ("none", {"text": off, "clap": off, "melody": off})]
            has_rhythm, has_key = _has_attributes(batch)
            if has_rhythm is not None or has_key is not None:
                rows.append(("attributes", {"text": has_text, "clap": off, "melody": off,
                                            "rhythm": off if has_rhythm is None else has_rhythm,
                                            "key": off if has_key is None else has_key}))
            for name, flags in rows:
                with self.accelerator.autocast():
                    out, labels = self.lm_loss(batch, flags, unwrapped=True)
                sums[f"val_loss_{name}"] = sums.get(f"val_loss_{name}", 0.0) + float(out.loss) * size
                if name == "text":
                    k = labels.shape[-1]
                    pred = _label_logits(out.logits, labels).argmax(-1).transpose(1, 2).cpu()
                    valid = labels.cpu() != self.accelerator.unwrap_model(self.musicgen).decoder.config.pad_token_id
                    for c in range(k):
                        acc = float((pred[..., c] == labels.cpu()[..., c])[valid[..., c]].float().mean())
                        sums[f"val_acc_cb{c}"] = sums.get(f"val_acc_cb{c}", 0.0) + acc * size
        return {k: v / n for k, v in sums.items()}

    # ------------------------------------------------------------------ export
    def export_model(self):
        from hf_musiccodec.pipelines.text_to_music.pipeline_text_to_music import TextToMusicPipeline

        musicgen = self.accelerator.unwrap_model(self.musicgen)
        if self.cfg.lora_rank > 0:
            import copy

            from peft.tuners.tuners_utils import BaseTunerLayer

            musicgen = copy.deepcopy(musicgen)
            for module in musicgen.decoder.modules():
                if isinstance(module, BaseTunerLayer):
                    module.merge()
            musicgen = _without_lora(musicgen)
        clap, clap_processor = clap_for_export(self.cfg.clap)
        return TextToMusicPipeline(musicgen=musicgen, conditioner=self.accelerator.unwrap_model(self.conditioner),
                                   tokenizer=self.tokenizer, clap=clap, clap_processor=clap_processor)


def _off(batch) -> torch.Tensor:
    return torch.zeros(len(batch["caption"]), dtype=torch.bool)


# per-frame fields of a TokenCrops batch (the codes' last axis is frames too)
_FRAME_FIELDS = ("codes", "melody", "rhythm")


def _batch_start(batch, rows: torch.Tensor, frames: int) -> dict:
    """The examples ``rows`` of a batch, cut to their first ``frames`` frames."""
    out = {}
    for name, value in batch.items():
        if isinstance(value, list):
            out[name] = [value[i] for i in rows.tolist()]
        elif torch.is_tensor(value):
            value = value[rows]
            out[name] = value[..., :frames] if name in _FRAME_FIELDS else value
    return out


def _label_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MusicGen's logits (B*K, L', V) as (B, K, L, V), aligned with labels (B, L, K)."""
    b, length, k = labels.shape
    return logits.reshape(b, k, -1, logits.shape[-1])[:, :, -length:]


def _nll_per_example(logits: torch.Tensor, labels: torch.Tensor, pad: int) -> torch.Tensor:
    """Mean cross-entropy (nats per token) of each example over its non-pad labels (B, L, K)."""
    b, length, k = labels.shape
    logits = _label_logits(logits, labels).float()
    target = labels.transpose(1, 2)
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 2), target.flatten(), reduction="none",
                                         ignore_index=pad).view(b, k, length)
    valid = (target != pad).float()
    return (ce * valid).sum((1, 2)) / valid.sum((1, 2)).clamp(min=1)


def _has_attributes(batch) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(B,) bool each: which examples have beats / a known key (None: the batch has none)."""
    rhythm = batch["rhythm_valid"].bool() if "rhythm_valid" in batch else None
    key = (batch["key"] >= 0) if "key" in batch else None
    return rhythm, key


def _with_attributes(conditioner, attributes: dict, fresh=()):
    """A copy of a trained conditioner with rhythm / key conditions added (fresh weights for
    those, the trained ones kept), for fine-tuning a model to them; the conditions named in
    ``fresh`` also start from new weights."""
    from hf_musiccodec.pipelines.text_to_music.conditioner import MusicConditioner, MusicConditionerConfig

    config = MusicConditionerConfig(**{**conditioner.config.to_dict(), **attributes})
    grown = MusicConditioner(config)
    prefixes = tuple(CONDITION_PARAMETERS[name] for name in fresh)
    kept = {k: v for k, v in conditioner.state_dict().items() if not k.startswith(prefixes)}
    missing, unexpected = grown.load_state_dict(kept, strict=False)
    if unexpected:
        raise ValueError(f"cannot drop conditions from a trained conditioner: {unexpected}")
    logger.info("conditioner: added %s (new weights: %s)", attributes, missing)
    return grown


def _has_text(captions) -> torch.Tensor:
    """(B,) bool: which captions say anything (an uncaptioned item trains without text)."""
    return torch.tensor([bool(c.strip()) for c in captions])


def _without_lora(musicgen):
    """Replace merged LoRA layers by their base layers, so the export is a plain MusicGen."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(musicgen.decoder.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, BaseTunerLayer):
                setattr(module, child_name, child.get_base_layer())
    return musicgen


def _tokenizer_folder(init_from: str | None):
    """Where the fine-tuned model's tokenizer is (an official MusicGen folder has T5's); None: MiniLM's."""
    if not init_from:
        return None
    from pathlib import Path

    folder = Path(init_from)
    for candidate in (folder / "tokenizer", folder):
        if (candidate / "tokenizer_config.json").is_file():
            return candidate
    raise ValueError(f"{init_from} has no tokenizer (tokenizer_config.json): save the model's tokenizer with it")
