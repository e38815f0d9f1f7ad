"""VampNet as a diffusers pipeline: vamp on an input's codec tokens with the paper's prompts.

    pipe = VampNetPipeline.from_pretrained("pipelines/vampnet")
    out = pipe(audio, sampling_rate=sr, periodic_prompt=16, upper_codebook_mask=2,
               generator=torch.Generator().manual_seed(0))
    out.audios      # (batch, channels, samples) at pipe.sampling_rate
    out.mask        # (batch, codebooks, frames) True = generated: the prompt as a token grid
    pipe.loop(audio, sampling_rate=sr, num_loops=4, feedback=0.5)   # unloop: each pass vamps the last

Every prompt of the paper is a keyword (they combine as :mod:`.masks` describes): ``prefix_s`` /
``suffix_s`` (continuation, inpainting), ``periodic_prompt`` + ``periodic_width`` (+
``periodic_random_roll``), ``beat_mask_width_ms`` (frames after each beat from librosa's
tracker), ``onset_mask_width_ms``, ``upper_codebook_mask`` (codebooks from this index up are
regenerated), ``keep_lower_codebooks``, ``dropout``; or a ready ``mask``. With none of them
everything is generated: ``audio`` then only sets the length (``audio_length_in_s`` without
audio gives unconditional generation). ``prompt`` (text through CLAP's text embedding) or
``condition_audio`` (its CLAP audio embedding) steers a model trained with the CLAP condition.

Audio longer than the model's trained context is vamped in consecutive windows of that length.
Folder layout: ``codec/``, ``vampnet/``, optional ``coarse_to_fine/``, ``clap/``, ``clap_processor/``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

# Imported for diffusers' loader, which resolves each component's module from sys.modules.
from ...codecs import MusicCodecModel  # noqa: F401
from ...conditioning import MusicClapModel, MusicClapProcessor  # noqa: F401
from ...models.vampnet import VampNetModel
from ..pipeline_utils import (
    CodecPipelineMixin,
    GeneratorError,
    clap_audio_embeddings,
    clap_text_embeddings,
    user_waveform,
)
from . import masks as M
from .sampling import VampSamplingOptions, vamp

__all__ = ["VampNetPipeline", "VampNetPipelineOutput"]

MIN_INPUT_S = 0.25
# the prompt keywords and the values that ask for no prompt
RECIPE_DEFAULTS = dict(prefix_s=0.0, suffix_s=0.0, periodic_prompt=0, periodic_width=1, periodic_random_roll=False,
                       beat_mask_width_ms=0.0, onset_mask_width_ms=0.0, upper_codebook_mask=None,
                       keep_lower_codebooks=0, dropout=0.0)


@dataclass
class VampNetPipelineOutput(BaseOutput):
    """
    audios: (batch, channels, samples) numpy (``output_type="np"``) or torch.
    codes: (batch, codebooks, frames) the generated tokens (all codebooks the codec decoded).
    mask: (batch, codebooks, frames) bool, True where tokens were generated (the coarse model's).
    bits_per_second: bit rate of the kept tokens (the prompt), per example on average.
    """

    audios: np.ndarray | torch.Tensor
    codes: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    bits_per_second: float | None = None


class VampNetPipeline(CodecPipelineMixin, DiffusionPipeline):
    """Components: ``codec`` (MusicCodecModel), ``vampnet`` (the coarse VampNetModel), optional
    ``coarse_to_fine`` (a VampNetModel whose conditioning codebooks are the coarse ones), optional
    ``clap`` + ``clap_processor`` (text / reference conditioning). ``num_timesteps``: sampling passes of
    the last call, over all windows and models."""

    _optional_components = ["coarse_to_fine", "clap", "clap_processor"]
    model_cpu_offload_seq = "vampnet->coarse_to_fine->codec"

    def __init__(self, codec, vampnet: VampNetModel, coarse_to_fine: VampNetModel | None = None, clap=None,
                 clap_processor=None):
        super().__init__()
        self.register_modules(codec=codec, vampnet=vampnet, coarse_to_fine=coarse_to_fine, clap=clap,
                              clap_processor=clap_processor)  # fmt: skip

    # ------------------------------------------------------------------ properties
    @property
    def num_codebooks(self) -> int:
        """Codebooks of the output: the coarse model's, or the coarse-to-fine model's when there is one."""
        return (self.coarse_to_fine or self.vampnet).config.num_codebooks

    # ------------------------------------------------------------------ steps
    def encode_audio(self, audio, sampling_rate, name: str = "audio") -> torch.Tensor:
        """Codes (1, num_codebooks, frames) of a user's waveform."""
        return self._encode_checked(self._checked_audio(audio, sampling_rate, name))

    def _checked_audio(self, audio, sampling_rate, name: str = "audio") -> np.ndarray:
        """The user's waveform, checked, at the codec's rate and channels (one-line errors)."""
        return user_waveform(audio, sampling_rate, self.sampling_rate, self.codec.config.audio_channels, name,
                             MIN_INPUT_S)

    def _encode_checked(self, x: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(x)[None].to(self.codec.device, self.codec.dtype)
        codes = self.codec.encode(x, bandwidth=self._bandwidth()).audio_codes[0]
        return codes[:, : self.num_codebooks].long()

    def _bandwidth(self) -> float:
        """The lowest of the codec's bandwidths that has the codebooks this pipeline needs."""
        cfg = self.codec.config
        for bandwidth in sorted(cfg.target_bandwidths):
            if cfg.num_quantizers_for_bandwidth(bandwidth) >= self.num_codebooks:
                return bandwidth
        raise GeneratorError(f"the codec has no bandwidth with {self.num_codebooks} codebooks")

    def build_mask(self, codes: torch.Tensor, audio: np.ndarray | None = None, prefix_s: float = 0.0,
                   suffix_s: float = 0.0, periodic_prompt: int = 0, periodic_width: int = 1,
                   periodic_random_roll: bool = False, beat_mask_width_ms: float = 0.0,
                   onset_mask_width_ms: float = 0.0, upper_codebook_mask: int | None = None,
                   keep_lower_codebooks: int = 0, dropout: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """The coarse model's mask (True = generate) for the prompts asked for; ``audio`` (at the
        pipeline's rate) is needed for beats and onsets."""
        for name, value in (("prefix_s", prefix_s), ("suffix_s", suffix_s), ("beat_mask_width_ms", beat_mask_width_ms),
                            ("onset_mask_width_ms", onset_mask_width_ms)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise GeneratorError(f"{name} must be a number >= 0, got {value!r}")
        k = self.vampnet.config.num_codebooks
        for name, value, high in (("periodic_prompt", periodic_prompt, None), ("periodic_width", periodic_width, None),
                                  ("upper_codebook_mask", upper_codebook_mask, k),
                                  ("keep_lower_codebooks", keep_lower_codebooks, k)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0
                                      or (high is not None and value > high)):
                raise GeneratorError(f"{name} must be an integer in [0, {high if high is not None else 'inf'}], "
                                     f"got {value!r}")
        if periodic_width < 1:
            raise GeneratorError("periodic_width must be at least 1 frame")
        if not (isinstance(dropout, (int, float)) and 0 <= dropout <= 1):
            raise GeneratorError(f"dropout must be in [0, 1], got {dropout!r}")
        coarse = codes[:, :k]
        fr = self.frame_rate
        prompts = [M.prefix_suffix_mask(coarse, round(prefix_s * fr), round(suffix_s * fr))]
        if periodic_prompt:
            prompts.append(M.periodic_mask(coarse, periodic_prompt, periodic_width, periodic_random_roll, generator))
        if beat_mask_width_ms or onset_mask_width_ms:
            if audio is None:
                raise GeneratorError("beat and onset prompts need the input audio")
            from .rhythm import beat_times, onset_times

            if beat_mask_width_ms:
                prompts.append(M.beat_mask(coarse, beat_times(audio, self.sampling_rate), fr, beat_mask_width_ms / 1000))
            if onset_mask_width_ms:
                prompts.append(M.onset_mask(coarse, onset_times(audio, self.sampling_rate), fr,
                                            onset_mask_width_ms / 1000))
        mask = M.mask_and(*prompts)
        if keep_lower_codebooks:
            mask = M.keep_lower_codebooks(mask, keep_lower_codebooks)
        if upper_codebook_mask is not None:
            mask = M.codebook_mask(mask, upper_codebook_mask)
        if dropout:
            mask = M.dropout_mask(mask, dropout, generator)
        return mask

    @torch.no_grad()
    def encode_condition(self, prompt, condition_audio, condition_audio_sampling_rate, batch: int):
        """The CLAP embedding (batch, dim) the model is conditioned on, or None."""
        if prompt is None and condition_audio is None:
            return None
        if not self.vampnet.config.condition_dim or self.clap is None:
            raise GeneratorError("this VampNet was trained without a condition: prompt and condition_audio "
                                 "need a pipeline with CLAP")
        device = self.vampnet.device
        if condition_audio is not None:
            rate = self.clap_processor.feature_extractor.sampling_rate
            x = user_waveform(condition_audio, condition_audio_sampling_rate, rate, 1, "condition_audio", MIN_INPUT_S)
            embedding = clap_audio_embeddings(self.clap, self.clap_processor, [x[0]], rate, device)
        else:
            if not isinstance(prompt, str):
                raise GeneratorError("prompt must be a string")
            if len(self.clap_processor.tokenizer(prompt)["input_ids"]) > self.clap.config.text_max_length:
                raise GeneratorError(f"prompt is longer than {self.clap.config.text_max_length} tokens")
            if not prompt.strip():
                return None
            embedding = clap_text_embeddings(self.clap, self.clap_processor, [prompt], device)
        return embedding.expand(batch, -1)

    def _vamp_windows(self, model, codes, mask, options, generator, condition, on_step) -> torch.Tensor:
        """``vamp`` over consecutive windows of the model's trained context."""
        window = model.config.context_frames
        out = []
        for begin in range(0, codes.shape[-1], window):
            part = slice(begin, begin + window)
            out.append(vamp(model, codes[..., part], mask[..., part], options, generator, condition, on_step))
        return torch.cat(out, dim=-1)

    def _vamp(self, codes, mask, options, coarse_to_fine_steps, generator, condition, callback) -> torch.Tensor:
        """The coarse model over ``mask``, then the coarse-to-fine model (if any) on the frames it changed."""
        k = self.vampnet.config.num_codebooks

        def on_step(step, current):
            self._done += 1
            self._progress.update(1)
            if callback is not None:
                callback(self, self._done - 1, self._done - 1, {"codes": current, "mask": mask})
            return self._interrupt

        coarse = self._vamp_windows(self.vampnet, codes[:, :k], mask, options, generator, condition, on_step)
        codes = torch.cat([coarse, codes[:, k:]], dim=1)
        if self.coarse_to_fine is not None and not self._interrupt:
            changed = mask.any(dim=1, keepdim=True).expand(-1, codes.shape[1], -1)
            fine_mask = M.keep_lower_codebooks(changed, k)
            fine_options = VampSamplingOptions(**{**options.__dict__, "num_steps": coarse_to_fine_steps,
                                                  "guidance_scale": 1.0})
            codes = self._vamp_windows(self.coarse_to_fine, codes, fine_mask, fine_options, generator, None, on_step)
        return codes

    def _start_progress(self, frames: int, options: VampSamplingOptions, coarse_to_fine_steps: int, passes: int):
        def windows(model):
            return math.ceil(frames / model.config.context_frames) if model is not None else 0

        per_pass = windows(self.vampnet) * options.num_steps + windows(self.coarse_to_fine) * coarse_to_fine_steps
        self._num_timesteps = passes * per_pass
        self._progress, self._done = self.progress_bar(total=self._num_timesteps), 0

    def _prepare(self, audio, sampling_rate, prompt, audio_length_in_s, recipe: dict, mask, condition_audio,
                 condition_audio_sampling_rate, options: VampSamplingOptions, num_waveforms_per_prompt: int,
                 generator, output_type: str):
        """Steps 1-3 of a call: checked inputs, the input's codes, the condition, and a function that
        draws the mask (called again by each pass of a loop)."""
        # 1. check inputs
        if output_type not in ("np", "pt"):
            raise GeneratorError(f"output_type must be 'np' or 'pt', got {output_type!r}")
        if not (isinstance(num_waveforms_per_prompt, int) and num_waveforms_per_prompt >= 1):
            raise GeneratorError(f"num_waveforms_per_prompt must be a positive integer, got {num_waveforms_per_prompt!r}")
        try:
            options.validate()
        except ValueError as e:
            raise GeneratorError(str(e)) from None
        n, device = num_waveforms_per_prompt, self.vampnet.device

        # 2. encode the input audio (or start from nothing but mask tokens)
        if audio is not None:
            checked = self._checked_audio(audio, sampling_rate)  # resampled once, for the codes and the beats
            codes, waveform = self._encode_checked(checked), checked.mean(axis=0)
        else:
            asked = sorted(k for k, v in recipe.items() if v != RECIPE_DEFAULTS[k])
            if asked:
                raise GeneratorError(f"{', '.join(asked)} need input audio: without audio everything is generated")
            if not (isinstance(audio_length_in_s, (int, float)) and 0 < audio_length_in_s <= 600):
                raise GeneratorError("give audio (with sampling_rate) or audio_length_in_s in (0, 600] seconds")
            frames = math.ceil(audio_length_in_s * self.frame_rate)
            codes, waveform = torch.zeros(1, self.num_codebooks, frames, dtype=torch.long, device=device), None
        codes = codes.to(device).expand(n, -1, -1).contiguous()

        # 3. encode the condition, check the mask or the prompts that make it
        condition = self.encode_condition(prompt, condition_audio, condition_audio_sampling_rate, n)
        k = self.vampnet.config.num_codebooks
        if mask is not None:
            mask = torch.as_tensor(mask, dtype=torch.bool, device=device)
            mask = mask[None] if mask.ndim == 2 else mask
            if mask.shape[1:] != (k, codes.shape[-1]) or mask.shape[0] not in (1, n):
                raise GeneratorError(f"mask must be ({n} or 1, {k}, {codes.shape[-1]}), got {tuple(mask.shape)}")
            given = mask.expand(n, -1, -1)

            def draw_mask():
                return given
        elif audio is None:
            def draw_mask():
                return M.full_mask(codes[:, :k])
        else:
            def draw_mask():
                return self.build_mask(codes, waveform, generator=generator, **recipe).to(device)
            draw_mask()  # a bad recipe fails here, before any sampling
        return codes, waveform, condition, draw_mask

    def _output(self, codes, mask, samples: int | None, output_type: str, return_dict: bool, passes: int = 1):
        """Step 6 of a call: decode the codes (``passes`` equal parts of a loop, each cut to ``samples``)."""
        self._progress.close()
        n = codes.shape[0]
        audio = self.codec.decode(codes[None].to(self.codec.device), [None] * n).audio_values.float()
        if samples is not None:
            # each pass's frames cover its samples and the encoder's padding up to a whole frame: drop
            # that padding from every pass, so that pass i starts at i x samples (a loop keeps its period)
            per_pass = audio.shape[-1] // passes
            audio = torch.cat([audio[..., i * per_pass: i * per_pass + samples] for i in range(passes)], dim=-1)
        self.maybe_free_model_hooks()
        audios = audio.cpu().numpy() if output_type == "np" else audio
        if not return_dict:
            return (audios,)
        bps = M.bits_per_second(mask, self.vampnet.config.codebook_size, self.frame_rate)
        return VampNetPipelineOutput(audios=audios, codes=codes.cpu(), mask=mask.cpu(), bits_per_second=bps)

    @torch.no_grad()
    def __call__(
        self,
        audio=None,
        sampling_rate: int | None = None,
        prompt: str | None = None,
        audio_length_in_s: float | None = None,
        prefix_s: float = 0.0,
        suffix_s: float = 0.0,
        periodic_prompt: int = 0,
        periodic_width: int = 1,
        periodic_random_roll: bool = False,
        beat_mask_width_ms: float = 0.0,
        onset_mask_width_ms: float = 0.0,
        upper_codebook_mask: int | None = None,
        keep_lower_codebooks: int = 0,
        dropout: float = 0.0,
        mask: torch.Tensor | None = None,
        condition_audio=None,
        condition_audio_sampling_rate: int | None = None,
        num_inference_steps: int = 24,
        coarse_to_fine_steps: int = 12,
        temperature: float = 1.0,
        mask_temperature: float = 10.5,
        typical_mass: float | None = 0.15,
        top_p: float | None = None,
        guidance_scale: float = 1.0,
        num_waveforms_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ):
        """Vamp on ``audio`` (samples,) or (channels, samples) at ``sampling_rate``.

        Returns :class:`VampNetPipelineOutput`; ``num_waveforms_per_prompt`` variations of the
        input (each its own samples, and its own mask draw where the recipe is random).
        ``callback_on_step_end(pipe, step, step, {"codes": ..., "mask": ...})`` runs after each
        sampling pass; ``pipe._interrupt = True`` stops early (the rest is filled from that pass).
        """
        recipe = dict(prefix_s=prefix_s, suffix_s=suffix_s, periodic_prompt=periodic_prompt,
                      periodic_width=periodic_width, periodic_random_roll=periodic_random_roll,
                      beat_mask_width_ms=beat_mask_width_ms, onset_mask_width_ms=onset_mask_width_ms,
                      upper_codebook_mask=upper_codebook_mask, keep_lower_codebooks=keep_lower_codebooks,
                      dropout=dropout)  # fmt: skip
        options = VampSamplingOptions(num_steps=num_inference_steps, temperature=temperature,
                                      mask_temperature=mask_temperature, typical_mass=typical_mass, top_p=top_p,
                                      guidance_scale=guidance_scale)  # fmt: skip
        self._interrupt = False
        # 1.-3. check inputs, encode the audio and the condition
        codes, waveform, condition, draw_mask = self._prepare(
            audio, sampling_rate, prompt, audio_length_in_s, recipe, mask, condition_audio,
            condition_audio_sampling_rate, options, num_waveforms_per_prompt, generator, output_type)
        # 4. build the mask from the prompts
        mask = draw_mask()
        # 5. vamp: the coarse codebooks, then the fine ones where the coarse changed
        self._start_progress(codes.shape[-1], options, coarse_to_fine_steps, passes=1)
        codes = self._vamp(codes, mask, options, coarse_to_fine_steps, generator, condition, callback_on_step_end)
        # 6. decode
        samples = (waveform.shape[-1] if waveform is not None else int(round(audio_length_in_s * self.sampling_rate)))
        return self._output(codes, mask, samples, output_type, return_dict)

    @torch.no_grad()
    def loop(self, audio, sampling_rate: int | None = None, num_loops: int = 4, feedback: float = 0.5,
             generator: torch.Generator | None = None, output_type: str = "np", return_dict: bool = True,
             callback_on_step_end=None, num_inference_steps: int = 24, coarse_to_fine_steps: int = 12,
             temperature: float = 1.0, mask_temperature: float = 10.5, typical_mass: float | None = 0.15,
             top_p: float | None = None, guidance_scale: float = 1.0, prompt: str | None = None,
             condition_audio=None, condition_audio_sampling_rate: int | None = None, mask=None, **recipe):
        """Unloop: vamp the loop ``audio`` ``num_loops`` times, each pass on the last one's output.

        Each pass keeps the recipe's prompt tokens (``recipe`` takes the prompt keywords of
        ``__call__``: ``periodic_prompt``, ``upper_codebook_mask``, ...; the mask is drawn again
        each pass, so ``periodic_random_roll`` or ``dropout`` move the prompt onto generated
        material) and, after the first pass, also keeps each token the last pass generated with
        probability ``feedback``: 0 regenerates all of them (every pass a fresh variation around
        the prompt), values near 1 let the loop evolve slowly, 1 repeats the first pass.
        ``.audios`` is (1, channels, num_loops x the input's length): the passes one after another;
        ``.mask`` the masks actually used, side by side.
        """
        if isinstance(num_loops, bool) or not isinstance(num_loops, int) or not 1 <= num_loops <= 64:
            raise GeneratorError(f"num_loops must be an integer in [1, 64], got {num_loops!r}")
        if not (isinstance(feedback, (int, float)) and 0 <= feedback <= 1):
            raise GeneratorError(f"feedback must be in [0, 1], got {feedback!r}")
        if set(recipe) - set(RECIPE_DEFAULTS):
            raise GeneratorError(f"unknown loop arguments: {', '.join(sorted(set(recipe) - set(RECIPE_DEFAULTS)))}")
        options = VampSamplingOptions(num_steps=num_inference_steps, temperature=temperature,
                                      mask_temperature=mask_temperature, typical_mass=typical_mass, top_p=top_p,
                                      guidance_scale=guidance_scale)  # fmt: skip
        self._interrupt = False
        original, waveform, condition, draw_mask = self._prepare(
            audio, sampling_rate, prompt, None, recipe, mask, condition_audio, condition_audio_sampling_rate,
            options, 1, generator, output_type)
        self._start_progress(original.shape[-1], options, coarse_to_fine_steps, passes=num_loops)
        current, passes, masks = original, [], []
        for i in range(num_loops):
            if self._interrupt:
                break
            mask = draw_mask()
            if i > 0 and feedback > 0:  # carry part of what the last pass generated as prompt
                carried = torch.rand(mask.shape, generator=generator).to(mask.device) < feedback
                mask = mask & ~carried
            masks.append(mask)
            current = self._vamp(current, mask, options, coarse_to_fine_steps, generator, condition,
                                 callback_on_step_end)
            passes.append(current)
        codes, mask = torch.cat(passes, dim=-1), torch.cat(masks, dim=-1)
        return self._output(codes, mask, waveform.shape[-1], output_type, return_dict, passes=len(passes))
