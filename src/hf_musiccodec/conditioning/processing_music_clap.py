"""Feature extractor and processor of :class:`~hf_musiccodec.conditioning.MusicClapModel`.

``MusicClapFeatureExtractor``: audio at any rate -> mono -> resampled (soxr) -> log10 mel
``input_features`` (batch, n_mels, frames) + ``audio_attention_mask`` (batch, frames). A batch of
clips of different lengths is padded to the longest; the model embeds audio longer than one
window window by window and averages, so nothing is cut unless ``max_seconds`` says so.

``MusicClapProcessor``: the feature extractor + MiniLM's tokenizer, called like
``ClapProcessor``: ``processor(text=..., audio=..., sampling_rate=...)``. Every input problem is
a one-line ``ValueError``.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor

from hf_musiccodec.audio.io import resample
from hf_musiccodec.audio.spectral import log_mel_spectrogram

__all__ = ["MusicClapFeatureExtractor", "MusicClapProcessor"]


class MusicClapFeatureExtractor(SequenceFeatureExtractor):
    model_input_names = ["input_features", "audio_attention_mask"]

    def __init__(
        self,
        sampling_rate: int = 16_000,
        n_fft: int = 2048,
        hop_length: int = 320,
        n_mels: int = 96,
        f_min: float = 20.0,
        f_max: float | None = 8000.0,
        max_seconds: float | None = None,
        padding_value: float = -5.0,
        **kwargs,
    ):
        kwargs.pop("feature_size", None)  # saved by to_dict; always n_mels
        super().__init__(feature_size=n_mels, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.f_min = float(f_min)
        self.f_max = None if f_max is None else float(f_max)
        self.max_seconds = max_seconds

    @classmethod
    def from_model_config(cls, config) -> "MusicClapFeatureExtractor":
        return cls(sampling_rate=config.sampling_rate, n_fft=config.n_fft, hop_length=config.hop_length,
                   n_mels=config.n_mels, f_min=config.f_min, f_max=config.f_max)

    # ------------------------------------------------------------------ checks
    def _clips(self, audio) -> list[np.ndarray]:
        """Normalise the accepted layouts to a list of mono float32 clips (each checked)."""
        if isinstance(audio, torch.Tensor):
            audio = audio.detach().cpu().float().numpy()
        if isinstance(audio, np.ndarray):
            if audio.ndim == 1:
                items = [audio]
            elif audio.ndim == 2:
                items = list(audio)  # (batch, samples): a batch of mono clips, as ClapFeatureExtractor
            else:
                raise ValueError(f"audio array must be (samples,) or (batch, samples), got shape {audio.shape}; "
                                 f"pass a list of (channels, samples) arrays for multichannel clips")
        elif isinstance(audio, (list, tuple)):
            if not audio:
                raise ValueError("audio is an empty list")
            if all(np.isscalar(v) for v in audio):
                items = [np.asarray(audio, dtype=np.float32)]
            else:
                items = list(audio)
        else:
            raise ValueError(f"audio must be a numpy array, a torch tensor or a list of them, "
                             f"got {type(audio).__name__}")
        clips = []
        for i, clip in enumerate(items):
            if isinstance(clip, torch.Tensor):
                clip = clip.detach().cpu().float().numpy()
            clip = np.asarray(clip)
            numeric = np.issubdtype(clip.dtype, np.floating) or np.issubdtype(clip.dtype, np.integer)
            if clip.dtype == object or not numeric:
                raise ValueError(f"audio clip {i}: expected numbers, got dtype {clip.dtype}")
            if np.issubdtype(clip.dtype, np.integer):
                raise ValueError(f"audio clip {i}: integer samples ({clip.dtype}); pass float audio in [-1, 1]")
            if clip.ndim == 2:
                if clip.shape[0] > 8 or clip.shape[0] >= clip.shape[1]:
                    raise ValueError(f"audio clip {i}: 2-D clips must be (channels, samples) with few channels, "
                                     f"got shape {clip.shape}")
                clip = clip.mean(0)
            elif clip.ndim != 1:
                raise ValueError(f"audio clip {i}: expected (samples,) or (channels, samples), got shape {clip.shape}")
            if clip.size == 0:
                raise ValueError(f"audio clip {i} is empty (0 samples)")
            if not np.isfinite(clip).all():
                bad = int(np.size(clip) - np.isfinite(clip).sum())
                raise ValueError(f"audio clip {i} has {bad} NaN or infinite samples")
            clips.append(clip.astype(np.float32, copy=False))
        return clips

    # ------------------------------------------------------------------ features
    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(..., samples)`` at ``sampling_rate`` -> ``(..., n_mels, frames)`` (the model's features)."""
        return log_mel_spectrogram(waveform, self.sampling_rate, self.n_fft, self.n_mels, self.hop_length,
                                   fmin=self.f_min, fmax=self.f_max, power=1.0, clamp_eps=1e-5)

    def __call__(
        self,
        audio,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        max_seconds: float | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Audio -> ``input_features`` and ``audio_attention_mask``.

        Args:
            audio: one clip ``(samples,)``; a batch ``(batch, samples)``; or a list of clips, each
                ``(samples,)`` or ``(channels, samples)`` (downmixed), any lengths.
            sampling_rate: rate of ``audio`` (required: it is resampled to ``self.sampling_rate``).
            max_seconds: keep only the first seconds of each clip (default ``self.max_seconds``: all).
        """
        if kwargs:
            raise ValueError(f"unexpected arguments {sorted(kwargs)}")
        if sampling_rate is None:
            raise ValueError(f"pass sampling_rate= (the rate of the audio; it is resampled to {self.sampling_rate} Hz)")
        if not isinstance(sampling_rate, (int, np.integer)) or sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be a positive integer, got {sampling_rate!r}")
        clips = [resample(c, int(sampling_rate), self.sampling_rate) for c in self._clips(audio)]
        limit = max_seconds if max_seconds is not None else self.max_seconds
        if limit is not None:
            clips = [c[: max(1, int(limit * self.sampling_rate))] for c in clips]
        frames = [len(c) // self.hop_length + 1 for c in clips]  # centred STFT
        width = max(frames)
        features = torch.full((len(clips), self.n_mels, width), float(self.padding_value))
        mask = torch.zeros(len(clips), width, dtype=torch.long)
        for i, clip in enumerate(clips):
            mel = self.log_mel(torch.from_numpy(np.ascontiguousarray(clip)))
            features[i, :, : mel.shape[-1]] = mel
            mask[i, : mel.shape[-1]] = 1
        data = {"input_features": features, "audio_attention_mask": mask}
        if return_tensors in ("np", "numpy"):
            data = {k: v.numpy() for k, v in data.items()}
        elif return_tensors not in ("pt", None):
            raise ValueError(f"return_tensors must be 'pt' or 'np', got {return_tensors!r}")
        return BatchFeature(data)


class MusicClapProcessor(ProcessorMixin):
    """Feature extractor + tokenizer, used like ``ClapProcessor``.

    ``processor(text=[...])`` -> ``input_ids``, ``attention_mask``; ``processor(audio=...,
    sampling_rate=sr)`` -> ``input_features``, ``audio_attention_mask``; both at once -> all four
    (feed ``model(**inputs, return_loss=True)``). Captions longer than ``max_length`` tokens are
    truncated, with a warning.
    """

    def __init__(self, feature_extractor, tokenizer, max_length: int = 96):
        super().__init__(feature_extractor, tokenizer)
        self.max_length = int(max_length)

    def check_text(self, text) -> list[str]:
        if isinstance(text, str):
            text = [text]
        if not isinstance(text, (list, tuple)) or not text:
            raise ValueError(f"text must be a string or a non-empty list of strings, got {type(text).__name__}")
        for i, t in enumerate(text):
            if not isinstance(t, str):
                raise ValueError(f"text {i} is {type(t).__name__}, expected str")
            if not t.strip():
                raise ValueError(f"text {i} is empty")
        return list(text)

    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        audio=None,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        max_seconds: float | None = None,
        **kwargs,
    ) -> BatchFeature:
        kwargs.pop("padding", None)  # always padded to the longest
        if kwargs:
            raise ValueError(f"unexpected arguments {sorted(kwargs)}")
        if text is None and audio is None:
            raise ValueError("give text=, audio= or both")
        data = {}
        if text is not None:
            texts = self.check_text(text)
            tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                    return_tensors=return_tensors)
            long = [i for i, n in enumerate(self.tokenizer(texts)["input_ids"]) if len(n) > self.max_length]
            if long:
                warnings.warn(f"texts {long} exceed {self.max_length} tokens and are truncated", stacklevel=2)
            data["input_ids"] = tokens["input_ids"]
            data["attention_mask"] = tokens["attention_mask"]
        if audio is not None:
            data.update(self.feature_extractor(audio, sampling_rate=sampling_rate, return_tensors=return_tensors,
                                               max_seconds=max_seconds))
        return BatchFeature(data)

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "input_features", "audio_attention_mask"]
