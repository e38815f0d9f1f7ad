"""Music ControlNet: the latent diffusion pipeline with a control branch for melody, dynamics and rhythm.

    pipe = MusicControlNetPipeline.from_pretrained(folder)
    controls = pipe.extract_controls(reference, sampling_rate=sr)          # at pipe.control_frame_rate
    out = pipe("a chorale for brass", melody=controls.melody, dynamics=controls.dynamics,
               audio_length_in_s=10, generator=torch.Generator().manual_seed(0))
    pipe(prompt, rhythm=controls.rhythm, control_mask={"rhythm": first_half})   # partial controls

The control branch is diffusers' ``ControlNetModel`` made by ``ControlNetModel.from_unet`` from the
pipeline's U-Net (a copy of its encoder, zero convolutions on every residual), reading the
``(18, 1, width)`` control image of :func:`.controls.control_condition` at the U-Net's column rate
(``conditioning_embedding_out_channels`` of one entry: no downsampling, since the controls are
already at the latent's resolution). Any subset of the controls, each over any part of the time,
conditions it; omitted ones are zeros with their mask row off, as in training. Everything else
(prompt, guidance, schedulers, audio-to-audio, inpainting, re-ranking) is
:class:`MusicDiffusionPipeline`'s.
"""

from __future__ import annotations

import numpy as np
import torch

from ..latent_diffusion.pipeline_music_diffusion import MusicDiffusionPipeline
from ..pipeline_utils import GeneratorError
from .controls import CONTROL_CHANNELS, MusicControls, control_condition, reference_controls

__all__ = ["MusicControlNetPipeline"]


class MusicControlNetPipeline(MusicDiffusionPipeline):
    """Components: :class:`MusicDiffusionPipeline`'s and ``controlnet`` (diffusers ``ControlNetModel``)."""

    model_cpu_offload_seq = "clap->controlnet->unet->codec"

    def __init__(self, unet, scheduler, codec, clap, clap_processor, controlnet, latent_mean=None, latent_std=None):
        super().__init__(unet=unet, scheduler=scheduler, codec=codec, clap=clap, clap_processor=clap_processor,
                         latent_mean=latent_mean, latent_std=latent_std)
        self.register_modules(controlnet=controlnet)
        if controlnet.config.conditioning_channels != CONTROL_CHANNELS:
            raise ValueError(f"the ControlNet reads {controlnet.config.conditioning_channels} channels, the controls "
                             f"have {CONTROL_CHANNELS}")
        self._control, self._control_scale = None, 1.0

    @property
    def control_frame_rate(self) -> float:
        """Control frames a second: one per U-Net column (:func:`.controls.reference_controls`'s rate)."""
        return self.frame_rate / self.layout.patch

    def extract_controls(self, audio, sampling_rate: int, frames: int | None = None) -> MusicControls:
        """Melody, dynamics, rhythm and structure of a reference at :attr:`control_frame_rate`."""
        return reference_controls(self, audio, sampling_rate, frames)

    def denoise(self, sample, t, condition):
        if self._control is None:
            return super().denoise(sample, t, condition)
        control = self._control
        if control.shape[-1] != sample.shape[-1]:  # controls given for another length: nearest frames
            index = torch.clamp((torch.arange(sample.shape[-1]) * control.shape[-1] / sample.shape[-1]).long(),
                                max=control.shape[-1] - 1)
            control = control[..., index.to(control.device)]
        down, mid = self.controlnet(sample, t, encoder_hidden_states=condition[:, None, :], class_labels=condition,
                                    controlnet_cond=control.expand(sample.shape[0], -1, -1, -1).to(sample.dtype),
                                    conditioning_scale=self._control_scale, return_dict=False)
        return self.unet(sample, t, encoder_hidden_states=condition[:, None, :], class_labels=condition,
                         down_block_additional_residuals=down, mid_block_additional_residual=mid).sample

    @torch.no_grad()
    def __call__(self, prompt="", melody=None, dynamics=None, rhythm=None, control_mask=None,
                 controlnet_conditioning_scale: float = 1.0, **kwargs):
        """:meth:`MusicDiffusionPipeline.__call__` with controls (any subset; each an array over the
        output's control frames, any length: resampled to the nearest frames):

        Args:
            melody: ``(n,)`` pitch classes 0-11 (-1: no pitch there).
            dynamics: ``(n,)`` level in dB.
            rhythm: ``(2, n)`` beat and downbeat activations in [0, 1].
            control_mask: ``(n,)`` booleans for every given control, or a dict name -> ``(n,)``
                (True where the control applies; elsewhere the model is free).
            controlnet_conditioning_scale: scales the control branch's residuals (0: no control).
        """
        if not (isinstance(controlnet_conditioning_scale, (int, float)) and controlnet_conditioning_scale >= 0):
            raise GeneratorError(f"controlnet_conditioning_scale must be a number >= 0, got {controlnet_conditioning_scale!r}")
        given = {k: v for k, v in (("melody", melody), ("dynamics", dynamics), ("rhythm", rhythm)) if v is not None}
        if given:
            lengths = {np.shape(v)[-1] for v in given.values()}
            if len(lengths) != 1:
                raise GeneratorError(f"the controls must have the same number of frames, got {sorted(lengths)}")
            frames = lengths.pop()
            try:
                image = control_condition(frames, control_mask=control_mask, **given)
            except ValueError as e:
                raise GeneratorError(str(e)) from None
            self._control = torch.from_numpy(image)[None, :, None, :].to(self.unet.device)
        elif control_mask is not None:
            raise GeneratorError("control_mask needs at least one control (melody, dynamics or rhythm)")
        self._control_scale = float(controlnet_conditioning_scale)
        try:
            return super().__call__(prompt, **kwargs)
        finally:
            self._control = None
