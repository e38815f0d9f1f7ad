"""The convention every generator pipeline follows, and a loader for any pipeline folder.

Convention: ``pipe = Pipeline.from_pretrained(folder)`` (offline), ``pipe.sampling_rate`` (Hz), and
``pipe(prompt, audio_length_in_s=..., generator=torch.Generator().manual_seed(s))`` returning an
output whose ``.audios`` is ``(batch, channels, samples)`` (one item per prompt).

:func:`load_generator` opens a folder of this package (``model_index.json`` naming a class exported
by ``hf_musiccodec``) or a transformers text-to-audio model folder (MusicGen's ``config.json``),
wrapped to the convention. :func:`check_generator_output` checks one call's output against it.
Every problem is a one-line :class:`GeneratorError`.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "GeneratorError",
    "TextToAudioAdapter",
    "load_generator",
    "check_sampling_rate",
    "check_generator_output",
    "user_waveform",
    "clap_text_embeddings",
    "clap_audio_embeddings",
    "CodecPipelineMixin",
]

# model_type values of transformers models that its "text-to-audio" pipeline generates with.
TEXT_TO_AUDIO_MODEL_TYPES = ("musicgen", "musicgen_melody")


class GeneratorError(ValueError):
    """A pipeline folder that cannot be loaded, or a generator that breaks the convention."""


class TextToAudioAdapter:
    """A transformers ``text-to-audio`` pipeline (MusicGen) called with this package's convention.

    ``audio_length_in_s`` becomes ``max_new_tokens`` at the audio encoder's frame rate, plus the
    ``num_codebooks - 1`` steps the delay pattern costs; transformers samples from the global RNG,
    so ``generator`` seeds that (its ``initial_seed()``).
    """

    def __init__(self, folder):
        from transformers import pipeline

        self.pipe = pipeline("text-to-audio", model=str(folder), device="cpu")
        self.sampling_rate = int(self.pipe.sampling_rate)
        self.frame_rate = float(self.pipe.model.config.audio_encoder.frame_rate)
        self.delay_steps = int(self.pipe.model.config.decoder.num_codebooks) - 1

    def __call__(self, prompt, audio_length_in_s: float = 10.0, generator: torch.Generator | None = None, **kwargs):
        from diffusers.pipelines.pipeline_utils import AudioPipelineOutput

        if generator is not None:
            torch.manual_seed(generator.initial_seed())
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        steps = math.ceil(audio_length_in_s * self.frame_rate) + self.delay_steps
        forward = {"do_sample": True, "max_new_tokens": steps, **kwargs}
        outputs = self.pipe(prompts, forward_params=forward)
        audios = [np.atleast_2d(np.asarray(o["audio"], dtype=np.float32)) for o in outputs]
        return AudioPipelineOutput(audios=np.stack(audios))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise GeneratorError(f"cannot read {path}: {e}") from None


def load_generator(folder):
    """Load the generator saved in ``folder``; raises :class:`GeneratorError` in one line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GeneratorError(f"generator folder {folder} does not exist")
    if (folder / "model_index.json").is_file():
        name = _read_json(folder / "model_index.json").get("_class_name")
        if not isinstance(name, str):
            raise GeneratorError(f"{folder / 'model_index.json'} has no _class_name")
        # getattr on the package, not an import of a pipeline module: the root exports every
        # pipeline class lazily, so only the one named here gets imported.
        cls = getattr(importlib.import_module("hf_musiccodec"), name, None)
        if cls is None or not hasattr(cls, "from_pretrained"):
            raise GeneratorError(f"{folder}: _class_name {name!r} is not a pipeline class of hf_musiccodec")
        try:
            pipe = cls.from_pretrained(folder)
        except Exception as e:  # a broken folder or class: whatever it raises, report it in one line
            raise GeneratorError(f"{name}.from_pretrained({folder}) failed: {type(e).__name__}: {e}") from None
    elif (folder / "config.json").is_file():
        model_type = _read_json(folder / "config.json").get("model_type")
        if model_type not in TEXT_TO_AUDIO_MODEL_TYPES:
            raise GeneratorError(f"{folder}: model_type {model_type!r} is not a text-to-audio model "
                                 f"({', '.join(TEXT_TO_AUDIO_MODEL_TYPES)})")
        pipe = TextToAudioAdapter(folder)
    else:
        raise GeneratorError(f"{folder} has neither model_index.json (a pipeline) nor config.json (a model)")
    check_sampling_rate(pipe)
    return pipe


def check_sampling_rate(pipe) -> int:
    """``pipe.sampling_rate`` as a positive int."""
    sr = getattr(pipe, "sampling_rate", None)
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise GeneratorError(f"{type(pipe).__name__}.sampling_rate must be a positive integer, got {sr!r}")
    return int(sr)


def check_generator_output(output, batch: int, sampling_rate: int, audio_length_in_s: float,
                           tolerance: float = 0.1) -> np.ndarray:
    """``output.audios`` as float32 ``(batch, channels, samples)`` numpy, checked against the call.

    ``batch`` is the number of prompts given; the length must be at least ``1 - tolerance`` of
    ``audio_length_in_s`` (codec frame rounding makes lengths inexact; longer is allowed).
    """
    audios = getattr(output, "audios", None)
    if audios is None:
        raise GeneratorError(f"generator output {type(output).__name__} has no .audios")
    if isinstance(audios, torch.Tensor):
        audios = audios.detach().cpu().float().numpy()
    if not isinstance(audios, np.ndarray):
        raise GeneratorError(f".audios must be a numpy array or torch tensor, got {type(audios).__name__}")
    if audios.ndim != 3 or audios.shape[0] != batch or audios.shape[1] not in (1, 2):
        raise GeneratorError(f".audios must be (batch={batch}, channels=1 or 2, samples), got shape {audios.shape}")
    expected = audio_length_in_s * sampling_rate
    if audios.shape[2] < (1 - tolerance) * expected:
        raise GeneratorError(f".audios has {audios.shape[2]} samples, asked for {audio_length_in_s:g} s "
                             f"= {expected:.0f} at {sampling_rate} Hz")
    if not np.isfinite(audios).all():
        raise GeneratorError(".audios contains NaN or infinite values")
    return audios.astype(np.float32, copy=False)


def user_waveform(audio, sampling_rate, target_sampling_rate: int, channels: int, name: str,
                  min_seconds: float) -> np.ndarray:
    """A user's waveform as float32 (channels, samples) at ``target_sampling_rate`` and ``channels``;
    NaN, silence, a missing rate or too short a clip is a one-line :class:`GeneratorError`."""
    from hf_musiccodec.audio.io import is_silent, match_channels, resample, validate_waveform

    if sampling_rate is None:
        raise GeneratorError(f"{name}_sampling_rate is required with {name}")
    if isinstance(sampling_rate, bool) or not isinstance(sampling_rate, (int, np.integer)) or sampling_rate <= 0:
        raise GeneratorError(f"{name}_sampling_rate must be a positive integer, got {sampling_rate!r}")
    try:
        x = validate_waveform(audio, name)
    except ValueError as e:
        raise GeneratorError(str(e)) from None
    x = x[None] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[0] > 2:
        raise GeneratorError(f"{name} must be (samples,) or (channels<=2, samples), got shape {x.shape}")
    if x.shape[-1] < min_seconds * sampling_rate:
        raise GeneratorError(f"{name} is {x.shape[-1] / sampling_rate:.2f} s; at least {min_seconds:g} s needed")
    if is_silent(x):
        raise GeneratorError(f"{name} is silent")
    x = resample(x, int(sampling_rate), int(target_sampling_rate))
    return match_channels(x, channels).astype(np.float32)


@torch.no_grad()
def clap_text_embeddings(clap, clap_processor, prompts: list[str], device) -> torch.Tensor:
    """CLAP text embeddings (len(prompts), dim) of the prompts; an empty prompt gets zeros (no condition)."""
    dim = clap.config.projection_dim
    out = torch.zeros(len(prompts), dim, device=device)
    given = [i for i, p in enumerate(prompts) if p.strip()]
    if given:
        text = clap_processor(text=[prompts[i] for i in given], return_tensors="pt")
        features = clap.get_text_features(**{k: v.to(clap.device) for k, v in text.items()})
        out[given] = features.pooler_output.to(device, out.dtype)
    return out


@torch.no_grad()
def clap_audio_embeddings(clap, clap_processor, audios, sampling_rate: int, device) -> torch.Tensor:
    """CLAP audio embeddings (len(audios), dim) of mono waveforms (each (samples,) at ``sampling_rate``;
    CLAP embeds a long clip window by window)."""
    features = clap_processor.feature_extractor([np.asarray(a, dtype=np.float32) for a in audios],
                                                sampling_rate=int(sampling_rate), return_tensors="pt")
    out = clap.get_audio_features(**{k: v.to(clap.device) for k, v in features.items()})
    return out.pooler_output.to(device)


class CodecPipelineMixin:
    """What every generator pipeline over a codec shares: ``sampling_rate`` and ``frame_rate`` of its
    ``codec``, ``num_timesteps`` of the last call, and ``save_pretrained`` in 15 MB safetensors shards."""

    @property
    def sampling_rate(self) -> int:
        return int(self.codec.config.sampling_rate)

    @property
    def frame_rate(self) -> float:
        return float(self.codec.config.frame_rate)

    @property
    def num_timesteps(self) -> int:
        """Steps of the current (or last) call, as diffusers pipelines report their denoising steps."""
        return self._num_timesteps

    def save_pretrained(self, save_directory, **kwargs):
        kwargs.setdefault("max_shard_size", "15MB")
        kwargs.setdefault("safe_serialization", True)
        super().save_pretrained(save_directory, **kwargs)
