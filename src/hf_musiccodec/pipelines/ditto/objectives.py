"""DITTO's objectives: differentiable losses on a generation's audio (or latents) against a target.

Each objective is told the output's size once (:meth:`DittoObjective.prepare`: targets of any
length are resampled to the output's frames there) and then scores an output many times
(:meth:`DittoObjective.loss`, differentiable). They combine by weighted sum. The paper's set:

- :class:`IntensityObjective`: the smoothed loudness curve in dB (MSE), e.g. a crescendo;
- :class:`MelodyObjective`: the top-1 pitch class per frame (cross-entropy on the high-passed chroma);
- :class:`StructureObjective`: a self-similarity matrix of the chroma (MSE), e.g. an ABA form;
- :class:`InpaintingObjective` / :class:`OutpaintingObjective`: the reference's latents outside a
  gap, or over its whole length at the start of a longer output (MSE on normalised codec latents:
  the decoder is fixed, so equal latents are equal audio, and no decode is needed);
- :class:`LoopObjective`: the output's last ``overlap_s`` equal to its first, generated that much
  longer and cut, so that the output played in a loop continues seamlessly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ...audio.music_features import loudness_db, melody_chroma, resample_curve, self_similarity
from ..pipeline_utils import GeneratorError

__all__ = ["DittoObjective", "IntensityObjective", "MelodyObjective", "StructureObjective", "InpaintingObjective",
           "OutpaintingObjective", "LoopObjective", "OBJECTIVES", "make_objective"]

HOP = 256          # feature frames (Music ControlNet's hop), at the pipeline's rate
STRUCTURE_POOL = 24  # chroma frames averaged per self-similarity frame (0.26 s at 24 kHz)


class DittoObjective:
    """Base: ``weight`` scales the loss. ``extra_frames_for(frame_rate)`` asks the pipeline for that
    many more latent frames than the output keeps (the loop objective's overlap)."""

    name = "objective"
    needs_audio = True  # False: the loss reads the latents only (no decode through the codec)

    def __init__(self, weight: float = 1.0):
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0):
            raise GeneratorError(f"{self.name}: weight must be a positive number, got {weight!r}")
        self.weight = float(weight)

    def extra_frames_for(self, frame_rate: float) -> int:
        return 0

    def prepare(self, pipe, frames: int, samples: int) -> None:
        """Called once per generation with the generated latent ``frames`` and audio ``samples``."""

    def loss(self, audio: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Scalar loss of ``audio`` ``(1, channels, samples)`` / normalised ``latents`` ``(1, hidden, frames)``."""
        raise NotImplementedError


def _curve(target, name: str) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(target, dtype=np.float32))
    if x.ndim != 1 or x.numel() < 2 or not torch.isfinite(x).all():
        raise GeneratorError(f"{name} target must be a finite 1-D curve of at least 2 points")
    return x


class IntensityObjective(DittoObjective):
    """``target``: loudness in dB (``(n,)``, any length: resampled to the output's frames)."""

    name = "intensity"

    def __init__(self, target, weight: float = 1.0):
        super().__init__(weight)
        self.target = _curve(target, self.name)

    def prepare(self, pipe, frames, samples):
        self.sampling_rate = pipe.sampling_rate
        self.frames = samples // HOP + 1
        self.resampled = resample_curve(self.target, self.frames)

    def loss(self, audio, latents):
        curve = loudness_db(audio.mean(1), self.sampling_rate, hop_length=HOP)[0]
        return F.mse_loss(curve, self.resampled.to(curve.device))


class MelodyObjective(DittoObjective):
    """``target``: pitch classes ``(n,)`` (0 = C ... 11 = B; -1 = no pitch there, free, as in
    ``extract_controls``; any length: nearest-resampled)."""

    name = "melody"

    def __init__(self, target, weight: float = 1.0):
        super().__init__(weight)
        x = np.asarray(target)
        if x.ndim != 1 or x.size < 1 or not np.isfinite(x).all() or ((x < -1) | (x > 11) | (x != np.round(x))).any():
            raise GeneratorError("melody target must be pitch classes: integers 0-11 (-1: none), one per frame")
        if (x < 0).all():
            raise GeneratorError("melody target has no pitched frame (all -1)")
        self.target = torch.as_tensor(x.astype(np.int64))

    def prepare(self, pipe, frames, samples):
        self.sampling_rate = pipe.sampling_rate
        n = samples // HOP + 1
        index = torch.clamp((torch.arange(n) * self.target.numel() / n).long(), max=self.target.numel() - 1)
        self.resampled = self.target[index]
        if (self.resampled < 0).all():
            raise GeneratorError("melody target has no pitched frame at the output's length")

    def loss(self, audio, latents):
        chroma = melody_chroma(audio.mean(1), self.sampling_rate, hop_length=HOP)[0]  # (12, frames)
        # frames without a target pitch (-1) are left out of the mean
        return F.nll_loss(chroma.clamp_min(1e-8).log().T, self.resampled.to(chroma.device), ignore_index=-1)


def _structure(audio: torch.Tensor, sr: int) -> torch.Tensor:
    chroma = melody_chroma(audio.mean(1), sr, hop_length=HOP)[0]
    pooled = F.avg_pool1d(chroma[None], STRUCTURE_POOL, ceil_mode=True)[0]
    return self_similarity(pooled)


class StructureObjective(DittoObjective):
    """``target``: a self-similarity matrix ``(n, n)`` (any size: resampled), e.g. of a reference
    (:meth:`from_audio`) or drawn as blocks (an ABA form: 1 where sections repeat)."""

    name = "structure"

    def __init__(self, target, weight: float = 1.0):
        super().__init__(weight)
        x = torch.as_tensor(np.asarray(target, dtype=np.float32))
        if x.ndim != 2 or x.shape[0] != x.shape[1] or x.shape[0] < 2 or not torch.isfinite(x).all():
            raise GeneratorError("structure target must be a finite square matrix (n, n), n >= 2")
        self.target = x

    @staticmethod
    def from_audio(audio, sampling_rate: int) -> np.ndarray:
        """The self-similarity matrix a reference clip (at the pipeline's rate) would give."""
        x = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(1, -1, np.shape(audio)[-1])
        return _structure(x, sampling_rate).numpy()

    def prepare(self, pipe, frames, samples):
        self.sampling_rate = pipe.sampling_rate
        n = math.ceil((samples // HOP + 1) / STRUCTURE_POOL)
        self.resampled = F.interpolate(self.target[None, None], size=(n, n), mode="bilinear", align_corners=True)[0, 0]

    def loss(self, audio, latents):
        ssm = _structure(audio, self.sampling_rate)
        return F.mse_loss(ssm, self.resampled.to(ssm.device))


class _ReferenceObjective(DittoObjective):
    """The output's normalised latents equal the reference's where ``self.keep`` is True."""

    needs_audio = False

    def __init__(self, audio, sampling_rate, weight: float = 1.0):
        super().__init__(weight)
        self.audio, self.sampling_rate = audio, sampling_rate

    def _encode(self, pipe) -> torch.Tensor:
        """The reference's normalised latents ``(1, hidden, frames)``; sets ``reference_samples``."""
        sample, self.reference_samples = pipe.encode_audio(self.audio, self.sampling_rate)
        return pipe.layout.to_frames(sample, math.ceil(self.reference_samples / pipe.codec.config.hop_length))

    def loss(self, audio, latents):
        diff = (latents - self.reference.to(latents.device)) * self.keep.to(latents.device)
        return diff.square().sum() / (self.keep.sum() * latents.shape[1]).clamp_min(1.0)


class InpaintingObjective(_ReferenceObjective):
    """Keep ``audio`` (at ``sampling_rate``) outside ``[start_s, end_s)``; the gap is generated.
    The output is as long as the reference."""

    name = "inpainting"

    def __init__(self, audio, sampling_rate, start_s: float, end_s: float, weight: float = 1.0):
        super().__init__(audio, sampling_rate, weight)
        if not (isinstance(start_s, (int, float)) and isinstance(end_s, (int, float)) and 0 <= start_s < end_s):
            raise GeneratorError(f"inpainting needs 0 <= start_s < end_s, got {start_s!r}, {end_s!r}")
        self.start_s, self.end_s = float(start_s), float(end_s)

    def prepare(self, pipe, frames, samples):
        self.reference = self._encode(pipe)[..., :frames]
        if self.start_s * pipe.frame_rate >= self.reference.shape[-1]:
            raise GeneratorError(f"inpainting: start_s {self.start_s:g} is past the reference's end")
        self.keep = torch.ones(1, 1, self.reference.shape[-1])
        self.keep[..., int(self.start_s * pipe.frame_rate): math.ceil(self.end_s * pipe.frame_rate)] = 0.0

    def loss(self, audio, latents):
        return super().loss(audio, latents[..., : self.keep.shape[-1]])


class OutpaintingObjective(_ReferenceObjective):
    """Keep ``audio`` as the output's beginning and continue it to ``audio_length_in_s``."""

    name = "outpainting"

    def prepare(self, pipe, frames, samples):
        reference = self._encode(pipe)
        kept = reference.shape[-1]
        if kept >= frames:
            raise GeneratorError("outpainting: audio_length_in_s must be longer than the reference")
        self.reference = F.pad(reference[..., :kept], (0, frames - kept))
        self.keep = torch.zeros(1, 1, frames)
        self.keep[..., :kept] = 1.0


class LoopObjective(DittoObjective):
    """The output, played in a loop, continues seamlessly: it is generated ``overlap_s`` longer and
    those last frames are made equal to its first ones (normalised latents), then cut off."""

    name = "looping"
    needs_audio = False

    def __init__(self, overlap_s: float = 0.5, weight: float = 1.0):
        super().__init__(weight)
        if not (isinstance(overlap_s, (int, float)) and 0 < overlap_s <= 5):
            raise GeneratorError(f"looping: overlap_s must be in (0, 5] seconds, got {overlap_s!r}")
        self.overlap_s = float(overlap_s)

    def extra_frames_for(self, frame_rate: float) -> int:
        return math.ceil(self.overlap_s * frame_rate)

    def prepare(self, pipe, frames, samples):
        self.width = self.extra_frames_for(pipe.frame_rate)

    def loss(self, audio, latents):
        return F.mse_loss(latents[..., -self.width:], latents[..., : self.width])


OBJECTIVES = {cls.name: cls for cls in (IntensityObjective, MelodyObjective, StructureObjective, InpaintingObjective,
                                        OutpaintingObjective, LoopObjective)}


def make_objective(name: str, target) -> DittoObjective:
    """An objective from its name and target: a curve (intensity), pitch classes (melody), a matrix
    (structure), ``dict(audio=, sampling_rate=[, start_s=, end_s=])`` (in/outpainting), the overlap
    in seconds or None (looping)."""
    if name not in OBJECTIVES:
        raise GeneratorError(f"unknown objective {name!r}: use {', '.join(OBJECTIVES)}")
    if name in ("inpainting", "outpainting"):
        if not isinstance(target, dict) or "audio" not in target:
            raise GeneratorError(f"{name} target must be dict(audio=..., sampling_rate=...{', start_s=, end_s=' if name == 'inpainting' else ''})")
        return OBJECTIVES[name](**target)
    if name == "looping":
        return LoopObjective() if target is None else LoopObjective(target)
    if target is None:
        raise GeneratorError(f"the {name} objective needs a target")
    return OBJECTIVES[name](target)
