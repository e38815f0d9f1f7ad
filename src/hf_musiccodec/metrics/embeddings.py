"""Audio embeddings for set-level metrics (FAD, novelty).

An *audio embedding* is any callable ``embedding(audio, sr) -> (frames, dim)`` or ``(dim,)`` taking
numpy audio shaped ``(samples,)`` or ``(channels, samples)``. Give it a ``name`` attribute: tables
must say which embedding a Fréchet distance was computed with (scores from different embeddings
are not comparable).

* :class:`MelStatsEmbedding` (``"mel-stats"``): not learned, needs no weights; mean and standard
  deviation of log-mel bands over 1 s windows.
* :class:`ClapAudioEmbedding` (``"clap"``): adapter for any CLAP-style model with
  ``get_audio_features`` and its feature extractor / processor.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterable, Optional, Union

import numpy as np
import torch

from hf_musiccodec.audio.io import resample
from hf_musiccodec.audio.spectral import log_mel_spectrogram
from hf_musiccodec.metrics._checks import matrix, mono

__all__ = ["AudioEmbedding", "MelStatsEmbedding", "ClapAudioEmbedding", "embed_audio"]

AudioEmbedding = Callable[[np.ndarray, int], np.ndarray]


class MelStatsEmbedding:
    """Per-window log-mel statistics: ``(windows, 2 * n_mels)`` = mean and std of each band.

    Audio is resampled to ``sampling_rate`` first so that clips at any rate share one feature
    space. A clip shorter than a window gives one row from all its frames.
    """

    name = "mel-stats"

    def __init__(
        self,
        sampling_rate: int = 16_000,
        n_mels: int = 64,
        n_fft: int = 1024,
        hop_length: int = 256,
        window_seconds: float = 1.0,
        hop_seconds: float = 0.5,
    ):
        if window_seconds <= 0 or hop_seconds <= 0:
            raise ValueError(f"window and hop must be positive, got {window_seconds} s and {hop_seconds} s")
        self.sampling_rate = sampling_rate
        self.n_mels = n_mels
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.window = max(1, round(window_seconds * sampling_rate / hop_length))
        self.hop = max(1, round(hop_seconds * sampling_rate / hop_length))

    def __call__(self, audio, sr: int) -> np.ndarray:
        x = resample(mono(audio, sr), sr, self.sampling_rate)
        logmel = log_mel_spectrogram(
            torch.from_numpy(x), self.sampling_rate, self.n_fft, self.n_mels, self.hop_length, power=2.0
        ).numpy()  # (n_mels, frames)
        starts = range(0, max(1, logmel.shape[1] - self.window + 1), self.hop)
        windows = [logmel[:, s : s + self.window] for s in starts]
        return np.stack([np.concatenate([w.mean(1), w.std(1)]) for w in windows])


class ClapAudioEmbedding:
    """Wraps a CLAP-style model as an audio embedding: ``(dim,)`` per clip.

    Args:
        model: any module with ``get_audio_features(**features)`` returning a ``(1, dim)`` tensor or
            an output whose ``pooler_output`` is one (transformers >= 5 ``ClapModel``).
        processor: the model's feature extractor, or a processor holding one as
            ``.feature_extractor`` (``ClapProcessor``); called as ``fe([audio], sampling_rate=sr,
            return_tensors="pt")``.
        sampling_rate: rate the model expects; defaults to the feature extractor's ``sampling_rate``.
    """

    name = "clap"

    def __init__(self, model, processor, sampling_rate: Optional[int] = None):
        if not hasattr(model, "get_audio_features"):
            raise ValueError(f"{type(model).__name__} has no get_audio_features: not a CLAP-style model")
        if getattr(model, "training", False):
            warnings.warn("CLAP model is in training mode: its dropout makes embeddings random; call .eval()")
        self.model = model
        self.feature_extractor = getattr(processor, "feature_extractor", processor)
        self.sampling_rate = sampling_rate or getattr(self.feature_extractor, "sampling_rate", None)
        if not self.sampling_rate:
            raise ValueError("sampling_rate not given and the processor has no sampling_rate")

    @torch.no_grad()
    def __call__(self, audio, sr: int) -> np.ndarray:
        x = resample(mono(audio, sr), sr, self.sampling_rate)
        features = self.feature_extractor([x], sampling_rate=self.sampling_rate, return_tensors="pt")
        param = next(iter(self.model.parameters()), None)
        if param is not None:  # follow the model's device and float dtype
            features = {
                k: v.to(param.device, param.dtype if v.is_floating_point() else v.dtype) for k, v in features.items()
            }
        out = self.model.get_audio_features(**features)
        out = getattr(out, "pooler_output", out)
        return out.float().cpu().numpy().reshape(-1)


def embed_audio(audios: Iterable, sr: int, embedding: Union[AudioEmbedding, None] = None) -> np.ndarray:
    """Embed every clip and stack all rows: ``(total_frames, dim)``.

    ``embedding`` defaults to :class:`MelStatsEmbedding`. Each row counts as one sample for the
    statistics, as in FAD with VGGish (one row per ~1 s window).
    """
    embedding = embedding or MelStatsEmbedding()
    rows = [matrix(embedding(a, sr), f"embedding of clip {i}") for i, a in enumerate(audios)]
    if not rows:
        raise ValueError("no audio clips to embed")
    dims = {r.shape[1] for r in rows}
    if len(dims) > 1:
        raise ValueError(f"embedding returned different sizes {sorted(dims)}")
    return np.concatenate(rows)
