"""Latent diffusion for music (MusicLDM's recipe) as a diffusers pipeline, over a codec's latents.

    pipe = MusicDiffusionPipeline.from_pretrained("pipelines/music-diffusion")   # offline
    out = pipe("a slow chorale for strings", audio_length_in_s=10, num_inference_steps=25,
               guidance_scale=3.0, generator=torch.Generator().manual_seed(0))
    out.audios                                   # (batch, channels, samples) at pipe.sampling_rate
    pipe(prompt, num_candidates=5)               # MusicLDM: keep the best of 5 by CLAP score
    pipe(prompt, audio=clip, sampling_rate=sr, strength=0.6)              # audio-to-audio
    pipe(prompt, audio=clip, sampling_rate=sr, inpaint_start_s=2, inpaint_end_s=4)   # inpainting
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)      # any scheduler

Reused whole from diffusers: ``UNet2DConditionModel`` (the denoiser: ``ControlNetModel.from_unet``
works on it), the schedulers, ``DiffusionPipeline`` (loading, saving, progress bar). From this
package: the codec (:class:`MusicCodecModel`) is the autoencoder *and* the vocoder: the latent is
its encoder output before quantization and its decoder turns latents into audio
(:mod:`.latent_layout` says how a latent becomes the U-Net's sample), and the CLAP model conditions
it, as MusicLDM: trained on CLAP *audio* embeddings, prompted with CLAP *text* embeddings. The
embedding reaches the U-Net twice: as the one cross-attention token and as the class embedding
added to the timestep's (``class_embed_type="projection"``, which ControlNetModel also has).
The null condition (the unconditional branch of classifier-free guidance, an empty prompt) is the
zero vector, as in training's condition dropout.

Folder layout: ``unet/``, ``scheduler/``, ``codec/``, ``clap/``, ``clap_processor/``,
``model_index.json`` (with the latent normalisation: ``latent_mean``, ``latent_std``).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

# Imported for diffusers' loader, which resolves each component's module from sys.modules.
from ...codecs import MusicCodecModel  # noqa: F401
from ...conditioning import MusicClapModel, MusicClapProcessor  # noqa: F401
from ..pipeline_utils import (
    CodecPipelineMixin,
    GeneratorError,
    clap_audio_embeddings,
    clap_text_embeddings,
    user_waveform,
)
from .latent_layout import LatentLayout

__all__ = ["MusicDiffusionPipeline", "MusicDiffusionPipelineOutput"]

MAX_SECONDS = 60.0
MIN_INPUT_S = 0.25
OUTPUT_TYPES = ("np", "pt", "latent", "mel")


@dataclass
class MusicDiffusionPipelineOutput(BaseOutput):
    """
    audios: ``(batch, channels, samples)`` numpy (``output_type="np"``) or torch (``"pt"``); for
        ``"latent"`` the denoised U-Net samples ``(batch, channels, 1, width)`` (pass them back as
        ``latents=``), for ``"mel"`` the log-mel spectrograms ``(batch, channels, n_mels, frames)``.
    clap_scores: ``(batch,)`` CLAP score of each output with its prompt when candidates were ranked.
    """

    audios: np.ndarray | torch.Tensor
    clap_scores: np.ndarray | None = None


class MusicDiffusionPipeline(CodecPipelineMixin, DiffusionPipeline):
    """Components: ``unet`` (``UNet2DConditionModel``), ``scheduler`` (any diffusers scheduler),
    ``codec`` (:class:`MusicCodecModel`: encoder and decoder of the latent), ``clap`` +
    ``clap_processor`` (prompts, re-ranking). ``latent_mean`` / ``latent_std``: the normalisation
    of the codec's latent dimensions the U-Net was trained with."""

    model_cpu_offload_seq = "clap->unet->codec"
    _callback_tensor_inputs = ["latents", "prompt_embeds", "negative_prompt_embeds"]

    def __init__(self, unet, scheduler, codec, clap, clap_processor, latent_mean=None, latent_std=None):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler, codec=codec, clap=clap, clap_processor=clap_processor)
        hidden = codec.config.hidden_size
        latent_mean = [0.0] * hidden if latent_mean is None else [float(v) for v in latent_mean]
        latent_std = [1.0] * hidden if latent_std is None else [float(v) for v in latent_std]
        self.register_to_config(latent_mean=latent_mean, latent_std=latent_std)
        if unet.config.in_channels % hidden:
            raise ValueError(f"the U-Net's {unet.config.in_channels} channels are not a multiple of the codec's "
                             f"{hidden} latent dimensions")
        self.layout = LatentLayout(latent_mean, latent_std, unet.config.in_channels // hidden)

    # ------------------------------------------------------------------ steps
    def check_inputs(self, prompt, negative_prompt, audio_length_in_s, num_inference_steps, guidance_scale,
                     num_waveforms_per_prompt, num_candidates, output_type, strength, inpaint, audio):
        """Step 1: every argument checked, a one-line :class:`GeneratorError` otherwise; returns the prompts."""
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, (list, tuple)) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise GeneratorError("prompt must be a string or a non-empty list of strings")
        if negative_prompt is not None:
            negatives = [negative_prompt] * len(prompts) if isinstance(negative_prompt, str) else negative_prompt
            if not isinstance(negatives, (list, tuple)) or len(negatives) != len(prompts) or \
                    not all(isinstance(p, str) for p in negatives):
                raise GeneratorError("negative_prompt must be a string or a list of strings, one per prompt")
        limit = self.clap.config.text_max_length
        for p in list(prompts) + ([] if negative_prompt is None else list(negatives)):
            if len(self.clap_processor.tokenizer(p)["input_ids"]) > limit:
                raise GeneratorError(f"prompt {p[:40]!r}... is longer than {limit} tokens")
        if audio is None and not (isinstance(audio_length_in_s, (int, float)) and not isinstance(audio_length_in_s, bool)
                                  and 0 < audio_length_in_s <= MAX_SECONDS):
            raise GeneratorError(f"audio_length_in_s must be in (0, {MAX_SECONDS:g}] seconds, got {audio_length_in_s!r}")
        for name, value in (("num_inference_steps", num_inference_steps),
                            ("num_waveforms_per_prompt", num_waveforms_per_prompt), ("num_candidates", num_candidates)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
                raise GeneratorError(f"{name} must be an integer in [1, 1000], got {value!r}")
        if not (isinstance(guidance_scale, (int, float)) and math.isfinite(guidance_scale) and guidance_scale >= 0):
            raise GeneratorError(f"guidance_scale must be a number >= 0, got {guidance_scale!r}")
        if output_type not in OUTPUT_TYPES:
            raise GeneratorError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")
        if not (isinstance(strength, (int, float)) and 0 < strength <= 1):
            raise GeneratorError(f"strength must be in (0, 1], got {strength!r}")
        if (strength < 1 or inpaint is not None) and audio is None:
            raise GeneratorError("strength < 1 (audio-to-audio) and inpainting need the input audio")
        return list(prompts), (None if negative_prompt is None else list(negatives))

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], negative_prompts: list[str] | None, repeats: int,
                      guidance: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Step 2: CLAP text embeddings ``(len(prompts) * repeats, dim)`` and, with guidance, those of
        the negative prompts (the null condition, zeros, without them)."""
        device = self.unet.device
        embeds = clap_text_embeddings(self.clap, self.clap_processor, prompts, device).repeat_interleave(repeats, 0)
        if not guidance:
            return embeds, None
        negatives = negative_prompts or [""] * len(prompts)
        negative = clap_text_embeddings(self.clap, self.clap_processor, negatives, device)
        return embeds, negative.repeat_interleave(repeats, 0)

    def encode_audio(self, audio, sampling_rate) -> tuple[torch.Tensor, int]:
        """The U-Net sample ``(1, channels, 1, width)`` of a user's waveform, and its length in samples."""
        x = user_waveform(audio, sampling_rate, self.sampling_rate, self.codec.config.audio_channels, "audio",
                          MIN_INPUT_S)
        if x.shape[-1] > MAX_SECONDS * self.sampling_rate:
            raise GeneratorError(f"audio is longer than {MAX_SECONDS:g} s")
        with torch.no_grad():
            latents = self.codec.encode_latents(torch.from_numpy(x)[None].to(self.codec.device, self.codec.dtype))
        return self.layout.to_sample(latents.float()).to(self.unet.device), x.shape[-1]

    def get_timesteps(self, num_inference_steps: int, strength: float) -> torch.Tensor:
        """Step 3: the scheduler's timesteps, the last ``strength`` share of them for audio-to-audio
        (as diffusers' img2img pipelines)."""
        device = self.unet.device
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        start = num_inference_steps - min(max(int(round(num_inference_steps * strength)), 1), num_inference_steps)
        timesteps = self.scheduler.timesteps[start * self.scheduler.order:]
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(start * self.scheduler.order)
        return timesteps

    def prepare_latents(self, batch: int, width: int, generator, latents=None, init=None, timestep=None):
        """Step 4: Gaussian noise ``(batch, channels, 1, width)`` scaled for the scheduler, the caller's
        ``latents``, or ``init`` (an encoded input) noised to ``timestep``. Returns (latents, noise)."""
        shape = (batch, self.layout.channels, 1, width)
        device = self.unet.device
        if latents is not None:
            latents = torch.as_tensor(latents).to(device, torch.float32)
            if tuple(latents.shape) != shape:
                raise GeneratorError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
            return latents * self.scheduler.init_noise_sigma, None
        noise = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        if init is None:
            return noise * self.scheduler.init_noise_sigma, noise
        return self.scheduler.add_noise(init.expand(batch, -1, -1, -1), noise, timestep.reshape(1).expand(batch)), noise

    def decode_latents(self, latents: torch.Tensor, frames: int) -> torch.Tensor:
        """Step 6: U-Net samples -> waveforms ``(batch, channels, frames * hop)`` through the codec's
        decoder (differentiable)."""
        codec_latents = self.layout.to_latents(latents, frames).to(self.codec.dtype)
        return self.codec.decode_latents(codec_latents).float()

    def predict_noise(self, latents, t, embeds, negative, guidance_scale: float, scheduler=None) -> torch.Tensor:
        """The U-Net's output at step ``t`` with classifier-free guidance (one batch for both branches);
        ``scheduler`` (default the pipeline's) scales the input."""
        guided = negative is not None
        model_input = torch.cat([negative, embeds]) if guided else embeds
        sample = torch.cat([latents] * 2) if guided else latents
        sample = (scheduler or self.scheduler).scale_model_input(sample, t)
        out = self.denoise(sample, t, model_input)
        if not guided:
            return out
        uncond, cond = out.chunk(2)
        return uncond + guidance_scale * (cond - uncond)

    def denoise(self, sample: torch.Tensor, t, condition: torch.Tensor) -> torch.Tensor:
        """One U-Net evaluation on a batch of (scaled) samples and their CLAP conditions ``(batch, dim)``;
        a control branch (Music ControlNet) adds its residuals here."""
        return self.unet(sample, t, encoder_hidden_states=condition[:, None, :], class_labels=condition).sample

    def _rank_by_clap(self, audio: torch.Tensor, embeds: torch.Tensor, keep: int, candidates: int):
        """MusicLDM's re-ranking: of every ``candidates`` consecutive outputs keep the ``keep`` whose
        CLAP audio embedding is nearest the prompt's text embedding. Returns (indices, scores)."""
        mono = audio.mean(1).cpu().numpy()
        audio_embeds = clap_audio_embeddings(self.clap, self.clap_processor, list(mono), self.sampling_rate, "cpu")
        text = torch.nn.functional.normalize(embeds.float().cpu(), dim=-1)
        scores = (torch.nn.functional.normalize(audio_embeds.float(), dim=-1) * text).sum(-1)
        groups = scores.reshape(-1, candidates)
        order = groups.argsort(dim=1, descending=True)[:, :keep]
        index = (order + torch.arange(groups.shape[0])[:, None] * candidates).reshape(-1)
        return index, scores[index].numpy()

    # ------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] = "",
        negative_prompt: str | list[str] | None = None,
        audio_length_in_s: float = 10.0,
        num_inference_steps: int = 25,
        guidance_scale: float = 3.0,
        num_waveforms_per_prompt: int = 1,
        num_candidates: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        audio=None,
        sampling_rate: int | None = None,
        strength: float = 1.0,
        inpaint_start_s: float | None = None,
        inpaint_end_s: float | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ):
        """Generate music for ``prompt`` (a string or a list: one output group per prompt).

        Args:
            negative_prompt: what guidance steers away from (default: the null condition).
            guidance_scale: classifier-free guidance; <= 1 runs the conditional branch alone.
            num_waveforms_per_prompt: outputs per prompt.
            num_candidates: MusicLDM's re-ranking: generate this many per output and keep the one with
                the highest CLAP score (``.clap_scores``).
            latents: initial noise ``(batch, channels, 1, width)`` (e.g. DITTO's optimised x_T).
            audio, sampling_rate: an input for audio-to-audio (``strength`` < 1: start from it noised
                to that share of the schedule) or inpainting (``inpaint_start_s`` / ``inpaint_end_s``:
                that time range is generated, the rest kept). Its length sets the output's.
            output_type: "np", "pt", "latent" or "mel".
            callback_on_step_end: ``f(pipe, step, timestep, tensors) -> dict`` after each step; the
                tensors named in ``callback_on_step_end_tensor_inputs`` (default ``["latents"]``), and
                a returned ``latents`` replaces the current one. ``pipe._interrupt = True`` stops early.
        """
        inpaint = None if inpaint_start_s is None and inpaint_end_s is None else (inpaint_start_s, inpaint_end_s)
        # 1. check inputs
        prompts, negatives = self.check_inputs(prompt, negative_prompt, audio_length_in_s, num_inference_steps,
                                               guidance_scale, num_waveforms_per_prompt, num_candidates,
                                               output_type, strength, inpaint, audio)
        tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]
        unknown = set(tensor_inputs) - set(self._callback_tensor_inputs)
        if unknown:
            raise GeneratorError(f"callback_on_step_end_tensor_inputs may name {self._callback_tensor_inputs}, "
                                 f"not {sorted(unknown)}")
        self._interrupt = False
        per_prompt = num_waveforms_per_prompt * num_candidates
        batch = len(prompts) * per_prompt
        guidance = guidance_scale > 1.0

        # 2. encode the prompts (CLAP text embeddings) and the input audio, if any
        embeds, negative = self.encode_prompt(prompts, negatives, per_prompt, guidance)
        init = None
        if audio is not None:
            init, samples = self.encode_audio(audio, sampling_rate)
            audio_length_in_s = samples / self.sampling_rate
        samples = int(round(audio_length_in_s * self.sampling_rate))
        frames = math.ceil(samples / self.codec.config.hop_length)
        width = self.layout.frames_to_width(frames)
        if init is not None:
            init = init[..., :width]
        keep = self._inpaint_keep_mask(inpaint, width, frames) if inpaint is not None else None

        # 3. timesteps (the last `strength` share of them for audio-to-audio)
        timesteps = self.get_timesteps(num_inference_steps, strength)
        self._num_timesteps = len(timesteps)

        # 4. initial latents: noise, the caller's, or the input noised to the first timestep
        latents, noise = self.prepare_latents(batch, width, generator, latents,
                                              init if strength < 1 else None, timesteps[:1])
        if keep is not None and noise is None:
            noise = randn_tensor(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)

        # 5. denoise
        extra = {"generator": generator} if "generator" in inspect.signature(self.scheduler.step).parameters else {}
        with self.progress_bar(total=len(timesteps)) as progress:
            for i, t in enumerate(timesteps):
                if self._interrupt:
                    break
                model_output = self.predict_noise(latents, t, embeds, negative, guidance_scale)
                latents = self.scheduler.step(model_output, t, latents, **extra).prev_sample
                if keep is not None:  # inpainting: the kept range is the input, noised to the next step
                    known = init.expand(batch, -1, -1, -1)
                    if i + 1 < len(timesteps):
                        known = self.scheduler.add_noise(known, noise, timesteps[i + 1:i + 2].expand(batch))
                    latents = keep * known + (1 - keep) * latents
                if callback_on_step_end is not None:
                    local = {"latents": latents, "prompt_embeds": embeds, "negative_prompt_embeds": negative}
                    changed = callback_on_step_end(self, i, t, {k: local[k] for k in tensor_inputs}) or {}
                    latents = changed.get("latents", latents)
                progress.update()

        # 6. decode, 7. keep the best candidates by CLAP score
        scores, waveforms = None, None
        if output_type != "latent" or num_candidates > 1:
            waveforms = self.decode_latents(latents, frames)[..., :samples]
        if num_candidates > 1:
            index, scores = self._rank_by_clap(waveforms, embeds, num_waveforms_per_prompt, num_candidates)
            waveforms, latents = waveforms[index], latents[index]
        if output_type == "latent":
            result = latents
        elif output_type == "mel":
            result = self.mel_spectrogram(waveforms)
        else:
            result = waveforms
        self.maybe_free_model_hooks()
        if output_type == "np":
            result = result.cpu().numpy()
        if not return_dict:
            return (result,)
        return MusicDiffusionPipelineOutput(audios=result, clap_scores=scores)

    def _inpaint_keep_mask(self, inpaint, width: int, frames: int) -> torch.Tensor:
        """``(1, 1, 1, width)``: 1 where the input is kept, 0 in the inpainted range (in whole patches)."""
        start, end = inpaint
        seconds = frames / self.frame_rate
        start = 0.0 if start is None else start
        end = seconds if end is None else end
        if not (isinstance(start, (int, float)) and isinstance(end, (int, float)) and 0 <= start < end):
            raise GeneratorError(f"inpaint range must satisfy 0 <= inpaint_start_s < inpaint_end_s, got {start!r}, {end!r}")
        if start >= seconds:
            raise GeneratorError(f"inpaint_start_s {start:g} is past the input's end ({seconds:.2f} s)")
        patch_seconds = self.layout.patch / self.frame_rate
        first, last = int(start / patch_seconds), min(math.ceil(end / patch_seconds), width)
        keep = torch.ones(1, 1, 1, width, device=self.unet.device)
        keep[..., first:last] = 0.0
        return keep

    def mel_spectrogram(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Log-mel spectrograms ``(batch, channels, 64, frames)`` of output waveforms (``output_type="mel"``:
        a picture of the result, 64 bins at 10 ms hops)."""
        from ...audio.spectral import log_mel_spectrogram

        hop = self.sampling_rate // 100
        return log_mel_spectrogram(waveforms, self.sampling_rate, 4 * hop, 64, hop)
