"""DITTO: inference-time control of a trained latent diffusion model by optimising its initial noise.

    pipe = DittoPipeline.from_pretrained("pipelines/ditto")            # the bundled diffusion model's parts
    out = pipe("a slow chorale for strings", objective="intensity", target=np.linspace(-40, -10, 50),
               num_optimization_steps=20, optimization_lr=0.05, audio_length_in_s=6,
               generator=torch.Generator().manual_seed(0))
    out.audios, out.losses             # the result; the objective after each optimisation step
    pipe(prompt, objective=["melody", "looping"], target={"melody": pitch_classes, "looping": 0.5})
    pipe(prompt, objective="inpainting", target=dict(audio=clip, sampling_rate=sr, start_s=2, end_s=3))

No training: the noise ``x_T`` is a parameter, the whole sampler (deterministic DDIM, ``eta = 0``,
``num_inference_steps`` steps with classifier-free guidance) and the codec's decoder run forward,
the objective's loss on the output goes back to ``x_T`` and Adam takes a step, ``num_optimization_steps``
times. Each sampler step (and the decode) is a gradient checkpoint (``torch.utils.checkpoint``):
backward recomputes one step at a time, so memory stays about flat in the number of sampler steps
(``gradient_checkpointing=False`` keeps every step's activations, for comparison). The objectives
(:mod:`.objectives`) are the paper's: intensity, melody, structure, in/outpainting, looping; they
combine. ``num_optimization_steps=0`` is the plain generation with the same sampler.

The components are :class:`MusicDiffusionPipeline`'s (this class subclasses it; DDIM replaces the
folder's scheduler for the optimisation, built from its config, because its step is a pure function
that a checkpoint can recompute: a multistep solver's history is not).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DDIMScheduler
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from torch.utils.checkpoint import checkpoint

from ..latent_diffusion.pipeline_music_diffusion import MAX_SECONDS, MusicDiffusionPipeline
from ..pipeline_utils import GeneratorError
from .objectives import DittoObjective, make_objective

__all__ = ["DittoPipeline", "DittoPipelineOutput"]


@dataclass
class DittoPipelineOutput(BaseOutput):
    """
    audios: ``(1, channels, samples)`` numpy (``output_type="np"``) or torch.
    losses: the weighted objective before each optimisation step and after the last
        (``num_optimization_steps + 1`` values: ``losses[0]`` is the plain generation's).
    objective_losses: the same per objective, by name.
    latents: the optimised initial noise ``x_T`` (pass it to ``MusicDiffusionPipeline(latents=...)``
        with a DDIM scheduler and the same steps for the same output).
    seconds: wall time of the optimisation.
    """

    audios: np.ndarray | torch.Tensor
    losses: list[float]
    objective_losses: dict[str, list[float]]
    latents: torch.Tensor
    seconds: float


class DittoPipeline(MusicDiffusionPipeline):
    """:class:`MusicDiffusionPipeline`'s components, called with DITTO's objectives."""

    def _objectives(self, objective, target) -> list[DittoObjective]:
        several = isinstance(objective, (list, tuple))  # then target is a dict: name -> its target
        items = objective if several else [objective]
        if not items or any(o is None for o in items):
            raise GeneratorError("objective must be a name, an objective or a list of them")
        if several and target is not None and not isinstance(target, dict):
            raise GeneratorError("with a list of objectives, target is a dict: objective name -> its target")
        out = []
        for item in items:
            if isinstance(item, DittoObjective):
                out.append(item)
            elif isinstance(item, str):
                out.append(make_objective(item, target.get(item) if several and target else target))
            else:
                raise GeneratorError(f"objective must be a name or a DittoObjective, got {type(item).__name__}")
        return out

    def _sampler(self, num_inference_steps: int) -> DDIMScheduler:
        config = {k: v for k, v in self.scheduler.config.items() if not k.startswith("_")}
        ddim = DDIMScheduler.from_config(config)
        ddim.set_timesteps(num_inference_steps, device=self.unet.device)
        return ddim

    def _sample(self, noise, ddim, embeds, negative, guidance_scale, frames, samples, decode: bool,
                use_checkpoint: bool):
        """x_T -> (audio or None, normalised latents): DDIM through the U-Net, then the codec's decoder."""
        def step(x, t):
            out = self.predict_noise(x, t, embeds, negative, guidance_scale, scheduler=ddim)
            return ddim.step(out, t, x, eta=0.0).prev_sample

        x = noise
        for t in ddim.timesteps:
            x = checkpoint(step, x, t, use_reentrant=False) if use_checkpoint else step(x, t)
        latents = self.layout.to_frames(x, frames)
        if not decode:
            return None, latents
        decode_fn = lambda z: self.codec.decode_latents(self.layout.denormalize(z).to(self.codec.dtype)).float()  # noqa: E731
        audio = checkpoint(decode_fn, latents, use_reentrant=False) if use_checkpoint else decode_fn(latents)
        return audio[..., :samples], latents

    def __call__(
        self,
        prompt: str = "",
        objective=None,
        target=None,
        negative_prompt: str | None = None,
        audio_length_in_s: float = 10.0,
        num_inference_steps: int = 20,
        guidance_scale: float = 3.0,
        num_optimization_steps: int = 20,
        optimization_lr: float = 0.05,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        gradient_checkpointing: bool = True,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end=None,
    ):
        """Optimise the initial noise so that the generation for ``prompt`` meets ``objective``.

        Args:
            objective: a name (``intensity``, ``melody``, ``structure``, ``inpainting``,
                ``outpainting``, ``looping``), a :class:`DittoObjective`, or a list of them (summed).
            target: the named objective's target (see :func:`.objectives.make_objective`), or, for a
                list of names, a dict name -> target. Intensity curves, pitch classes and matrices of
                any length are resampled to the output's frames.
            num_inference_steps: DDIM steps of the sampler optimised through.
            num_optimization_steps: Adam steps on the noise (0: plain generation).
            optimization_lr: Adam's learning rate.
            latents: the initial noise to start from (default: drawn from ``generator``).
            callback_on_step_end: ``f(pipe, step, loss, {"latents": x_T})`` after each optimisation step;
                ``pipe._interrupt = True`` stops early.
        """
        # 1. check inputs and build the objectives
        objectives = self._objectives(objective, target)
        if not isinstance(prompt, str):
            raise GeneratorError("DittoPipeline optimises one generation: prompt must be a string")
        if output_type not in ("np", "pt"):
            raise GeneratorError(f"output_type must be 'np' or 'pt', got {output_type!r}")
        self.check_inputs(prompt, negative_prompt, audio_length_in_s, num_inference_steps, guidance_scale, 1, 1,
                          output_type, 1.0, None, None)
        if isinstance(num_optimization_steps, bool) or not isinstance(num_optimization_steps, int) \
                or not 0 <= num_optimization_steps <= 1000:
            raise GeneratorError(f"num_optimization_steps must be an integer in [0, 1000], got {num_optimization_steps!r}")
        if not (isinstance(optimization_lr, (int, float)) and math.isfinite(optimization_lr) and optimization_lr > 0):
            raise GeneratorError(f"optimization_lr must be a positive number, got {optimization_lr!r}")
        self._interrupt = False

        # 2. encode the prompt, size the output (+ what the objectives add), prepare the objectives
        guidance = guidance_scale > 1.0
        embeds, negative = self.encode_prompt([prompt], [negative_prompt] if negative_prompt else None, 1, guidance)
        samples = int(round(audio_length_in_s * self.sampling_rate))
        frames = math.ceil(samples / self.codec.config.hop_length)
        extra = max(o.extra_frames_for(self.frame_rate) for o in objectives)
        frames_total = frames + extra
        samples_total = samples + extra * self.codec.config.hop_length
        if samples_total > MAX_SECONDS * self.sampling_rate:
            raise GeneratorError(f"the output with the objectives' extra frames is longer than {MAX_SECONDS:g} s")
        for o in objectives:
            o.prepare(self, frames_total, samples_total)
        decode = any(o.needs_audio for o in objectives)

        # 3. the initial noise, a parameter
        ddim = self._sampler(num_inference_steps)
        self._num_timesteps = num_optimization_steps
        width = self.layout.frames_to_width(frames_total)
        noise, _ = self.prepare_latents(1, width, generator, latents)
        noise = noise.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([noise], lr=optimization_lr)

        def evaluate(with_grad: bool):
            with torch.set_grad_enabled(with_grad):
                audio, z = self._sample(noise, ddim, embeds, negative, guidance_scale, frames_total, samples_total,
                                        decode, gradient_checkpointing and with_grad)
                parts = {o.name: o.loss(audio, z) for o in objectives}
                total = sum(o.weight * parts[o.name] for o in objectives)
            return total, parts, audio, z

        # 4. optimise: the whole sampler forward, the loss back to x_T, one Adam step
        losses, by_name = [], {o.name: [] for o in objectives}
        frozen = [p for m in (self.unet, self.codec) for p in m.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        start = time.perf_counter()
        try:
            with self.progress_bar(total=num_optimization_steps) as progress:
                for i in range(num_optimization_steps):
                    if self._interrupt:
                        break
                    optimizer.zero_grad(set_to_none=True)
                    total, parts, _, _ = evaluate(with_grad=True)
                    total.backward()
                    optimizer.step()
                    losses.append(total.item())
                    for name, value in parts.items():
                        by_name[name].append(value.item())
                    if callback_on_step_end is not None:
                        callback_on_step_end(self, i, losses[-1], {"latents": noise.detach()})
                    progress.set_postfix(loss=f"{losses[-1]:.4f}")
                    progress.update()
            # 5. the generation from the optimised noise (and its loss)
            total, parts, audio, z = evaluate(with_grad=False)
        finally:
            for p in frozen:
                p.requires_grad_(True)
        seconds = time.perf_counter() - start
        losses.append(float(total))
        for name, value in parts.items():
            by_name[name].append(float(value))

        # 6. decode (the kept frames only)
        if audio is None:
            with torch.no_grad():
                audio = self.codec.decode_latents(self.layout.denormalize(z).to(self.codec.dtype)).float()
        audio = audio[..., :samples].detach()
        self.maybe_free_model_hooks()
        result = audio.cpu().numpy() if output_type == "np" else audio
        if not return_dict:
            return (result,)
        return DittoPipelineOutput(audios=result, losses=losses, objective_losses=by_name, latents=noise.detach(),
                                   seconds=seconds)
