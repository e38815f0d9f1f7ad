"""Text-to-music with a token LM: the pipeline audiocraft's MusicGen users expect, on transformers' MusicGen.

    pipe = TextToMusicPipeline.from_pretrained(folder)  # e.g. the model/ folder a train_lm run exports
    out = pipe("a slow waltz for piano in D minor", audio_length_in_s=10, generator=torch.Generator().manual_seed(0))
    out.audios  # (batch, channels, samples) at pipe.sampling_rate

Beyond a text prompt it takes an audio prompt to continue (``audio_prompt``), a reference tune
whose melody to follow (``melody``: MusicGen-melody's argmax chroma, here as condition tokens),
the prompt's CLAP text embedding as an extra condition (``use_clap``: MusicLM's idea, the model
saw CLAP *audio* embeddings in training), a tempo and a key (``bpm``, ``key``, or read from the
prompt: ``conditioning.prompt_attributes``) for a model trained with rhythm / key conditions, and
lengths beyond the trained context (windows that overlap by ``window_overlap_s``, each continuing
the last seconds of the previous one).

Folder layout (``save_pretrained``): ``musicgen/`` (a transformers MusicGen folder with the
tokenizer: ``pipeline("text-to-audio", model=<folder>/musicgen)`` runs it), ``conditioner/``,
``tokenizer/``, optional ``clap/`` + ``clap_processor/``, ``model_index.json``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.pipelines.pipeline_utils import AudioPipelineOutput

# Imported for diffusers' loader, which resolves each component's module from sys.modules.
from ...conditioning import MusicClapModel, MusicClapProcessor  # noqa: F401
from ...conditioning.frozen_minilm import FrozenMiniLMModel  # noqa: F401
from ...conditioning.musical_attributes import NUM_KEYS, beat_grid, beat_phase_tokens, key_index
from ...conditioning.prompt_attributes import BPM_RANGE, TEMPO_BANDS, parse_prompt_attributes
from ..pipeline_utils import CodecPipelineMixin, GeneratorError, clap_text_embeddings, user_waveform
from .conditioner import MusicConditioner
from .sampling import ConditionGuidance, SamplingOptions, sample_window

__all__ = ["TextToMusicPipeline", "load_musicgen_parts"]

MAX_PROMPT_TOKENS = 64        # the training length of prompts
MIN_AUDIO_PROMPT_S = 0.5


class TextToMusicPipeline(CodecPipelineMixin, DiffusionPipeline):
    """Components: ``musicgen`` (``MusicgenForConditionalGeneration`` over a MusicCodecModel),
    ``conditioner`` (:class:`MusicConditioner`), ``tokenizer`` (MiniLM's), optional ``clap`` and
    ``clap_processor`` (MusicClap, for ``use_clap``)."""

    _optional_components = ["clap", "clap_processor"]
    model_cpu_offload_seq = "musicgen"

    def __init__(self, musicgen, conditioner: MusicConditioner, tokenizer, clap=None, clap_processor=None):
        super().__init__()
        self.register_modules(musicgen=musicgen, conditioner=conditioner, tokenizer=tokenizer, clap=clap,
                              clap_processor=clap_processor)  # fmt: skip

    # ------------------------------------------------------------------ properties
    @property
    def codec(self):
        return self.musicgen.audio_encoder

    @property
    def context_frames(self) -> int:
        """Frames the decoder can attend to in one window (its position table, minus the delay)."""
        decoder = self.musicgen.decoder.config
        return decoder.max_position_embeddings - decoder.num_codebooks

    def save_pretrained(self, save_directory, **kwargs):
        super().save_pretrained(save_directory, **kwargs)  # 15 MB safetensors shards (CodecPipelineMixin)
        # the MusicGen folder alone is a transformers text-to-audio model: it needs the tokenizer
        self.tokenizer.save_pretrained(Path(save_directory) / "musicgen")

    # ------------------------------------------------------------------ steps
    def check_inputs(self, prompt, audio_length_in_s, guidance_scale, num_waveforms_per_prompt) -> list[str]:
        prompts = [""] if prompt is None else [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise GeneratorError("prompt must be a string or a non-empty list of strings")
        for p in prompts:
            n = len(self.tokenizer(p)["input_ids"])
            if n > MAX_PROMPT_TOKENS:
                raise GeneratorError(f"prompt has {n} tokens; at most {MAX_PROMPT_TOKENS}: {p[:40]!r}...")
        if not (isinstance(audio_length_in_s, (int, float)) and math.isfinite(audio_length_in_s)
                and 0 < audio_length_in_s <= 600):
            raise GeneratorError(f"audio_length_in_s must be in (0, 600] seconds, got {audio_length_in_s!r}")
        if guidance_scale is not None and not (isinstance(guidance_scale, (int, float)) and guidance_scale >= 0):
            raise GeneratorError(f"guidance_scale must be a number >= 0 or None, got {guidance_scale!r}")
        if not (isinstance(num_waveforms_per_prompt, int) and num_waveforms_per_prompt >= 1):
            raise GeneratorError(f"num_waveforms_per_prompt must be a positive integer, got {num_waveforms_per_prompt!r}")
        return prompts

    def _audio(self, audio, sampling_rate, name: str, min_seconds: float) -> np.ndarray:
        return user_waveform(audio, sampling_rate, self.sampling_rate, self.codec.config.audio_channels, name,
                             min_seconds)

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], use_clap: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """MiniLM token states and mask of the prompts (empty prompt: no text), and their CLAP text embeddings."""
        device = self.musicgen.device
        tokens = self.tokenizer(prompts, padding=True, truncation=True, max_length=MAX_PROMPT_TOKENS,
                                return_tensors="pt").to(device)  # fmt: skip
        states = self.musicgen.text_encoder(**tokens).last_hidden_state
        has_text = torch.tensor([bool(p.strip()) for p in prompts], device=device)
        mask = tokens["attention_mask"] * has_text[:, None]
        clap = None
        if use_clap:
            if self.clap is None or not self.conditioner.config.clap_dim:
                raise GeneratorError("use_clap needs a pipeline with a CLAP model and a conditioner trained with it")
            # an empty prompt has no CLAP text embedding: its token stays off (zeros, masked)
            clap = clap_text_embeddings(self.clap, self.clap_processor, prompts, device)
        return states, mask, clap

    def melody_tokens(self, melody, melody_sampling_rate, frames: int) -> torch.Tensor:
        from ...data.condition_cache import MELODY_SILENT, melody_tokens

        if not self.conditioner.config.melody_vocab:
            raise GeneratorError("this pipeline's conditioner was not trained with a melody condition")
        x = self._audio(melody, melody_sampling_rate, "melody", MIN_AUDIO_PROMPT_S)
        tune = melody_tokens(x, self.sampling_rate, self.frame_rate, min(frames, math.ceil(
            x.shape[-1] / self.sampling_rate * self.frame_rate)))
        out = torch.full((frames,), MELODY_SILENT, dtype=torch.long)  # past the tune's end: no melody
        out[: len(tune)] = torch.from_numpy(tune.astype(np.int64))
        return out

    def check_attributes(self, bpm, key) -> int | None:
        """Validates ``bpm`` / ``key`` (a key name or index); returns the key index."""
        cond = self.conditioner.config
        if bpm is not None:
            if not cond.rhythm_vocab:
                raise GeneratorError("bpm needs a model trained with a rhythm condition (this one has none)")
            if not (isinstance(bpm, (int, float)) and BPM_RANGE[0] <= bpm <= BPM_RANGE[1]):
                raise GeneratorError(f"bpm must be {BPM_RANGE[0]:g}-{BPM_RANGE[1]:g}, got {bpm!r}")
        if key is None:
            return None
        if not cond.key_condition:
            raise GeneratorError("key needs a model trained with a key condition (this one has none)")
        if isinstance(key, str):
            try:
                return key_index(key)
            except ValueError as e:
                raise GeneratorError(str(e)) from None
        if isinstance(key, int) and 0 <= key < NUM_KEYS:
            return key
        raise GeneratorError(f"key must be a key name such as 'F# minor' or an index 0-{NUM_KEYS - 1}, got {key!r}")

    def prepare_attributes(self, prompts: list[str], n: int, frames: int, bpm, key: int | None, read_prompt: bool,
                           generator) -> dict:  # fmt: skip
        """The conditioner's rhythm and key inputs for every waveform: the tempo and key given,
        else those each prompt states; a tempo band draws a tempo in it and a bare mode a tonic
        (from ``generator``). Empty for a model without these conditions."""
        cond = self.conditioner.config
        if not (cond.rhythm_vocab or cond.key_condition):
            return {}
        batch = len(prompts) * n
        rhythm = torch.zeros(batch, frames, dtype=torch.long)
        rhythm_on = torch.zeros(batch, dtype=torch.bool)
        keys = torch.full((batch,), -1, dtype=torch.long)
        for i, prompt in enumerate(prompts):
            try:
                stated = parse_prompt_attributes(prompt) if read_prompt else None
            except ValueError as e:
                raise GeneratorError(str(e)) from None
            for b in range(i * n, (i + 1) * n):
                tempo = bpm if bpm is not None else stated.bpm if stated else None
                if tempo is None and stated and stated.tempo_band:
                    low, high = TEMPO_BANDS[stated.tempo_band]
                    tempo = low + (high - low) * float(torch.rand((), generator=generator))
                if tempo is not None and cond.rhythm_vocab:
                    grid = beat_grid(tempo, self.frame_rate, frames)
                    rhythm[b] = torch.from_numpy(beat_phase_tokens(grid, 0, frames, cond.rhythm_vocab))
                    rhythm_on[b] = True
                k = key if key is not None else stated.key if stated else None
                if k is None and stated and stated.mode:
                    k = int(torch.randint(12, (), generator=generator)) + 12 * (stated.mode == "minor")
                if k is not None and cond.key_condition:
                    keys[b] = k
        device = self.musicgen.device
        out = {}
        if cond.rhythm_vocab:
            out.update(rhythm=rhythm.to(device), rhythm_on=rhythm_on.to(device))
        if cond.key_condition:
            out.update(key=keys.to(device), key_on=(keys >= 0).to(device))
        return out

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        audio_length_in_s: float = 10.0,
        guidance_scale: float | None = None,
        num_waveforms_per_prompt: int = 1,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float = 0.0,
        do_sample: bool = True,
        audio_prompt=None,
        audio_prompt_sampling_rate: int | None = None,
        melody=None,
        melody_sampling_rate: int | None = None,
        use_clap: bool = False,
        bpm: float | None = None,
        key: str | int | None = None,
        read_prompt_attributes: bool = True,
        key_guidance_scale: float = 0.0,
        window_overlap_s: float = 5.0,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ):
        """Generate ``audio_length_in_s`` seconds per prompt and waveform.

        ``guidance_scale`` and ``top_k`` default to ``musicgen.generation_config`` (3 and 250 as
        trained here); ``guidance_scale`` 1 or 0 turns guidance off.

        ``audio_prompt`` (channels, samples) at ``audio_prompt_sampling_rate``: the output starts
        with it (re-encoded) and continues it; ``audio_length_in_s`` counts it. ``melody``: a tune
        at ``melody_sampling_rate`` whose melody the output follows from its start. ``bpm`` and
        ``key`` ("F# minor" or 0-23) set the rhythm / key conditions; otherwise, with
        ``read_prompt_attributes``, the tempo and key the prompt states do. Longer than the
        context: windows, each continuing the last ``window_overlap_s`` of the previous.
        ``key_guidance_scale`` > 0 adds the key's own guidance term, ``s * (cond - cond without
        the key)``, to the logits when a key is set (one more forward row per waveform): it
        strengthens a key the model hears only weakly beside the text.
        ``callback_on_step_end(pipe, step, frame, {"codes": delayed buffer})`` after every token
        step (diffusers' convention; ``pipe._interrupt = True`` stops early).
        """
        # 1. check inputs (guidance and top-k default to the model's generation_config, as in transformers)
        defaults = self.musicgen.generation_config
        guidance_scale = defaults.guidance_scale if guidance_scale is None else guidance_scale
        top_k = defaults.top_k if top_k is None else top_k
        if not (isinstance(key_guidance_scale, (int, float)) and key_guidance_scale >= 0):
            raise GeneratorError(f"key_guidance_scale must be a number >= 0, got {key_guidance_scale!r}")
        prompts = self.check_inputs(prompt, audio_length_in_s, guidance_scale, num_waveforms_per_prompt)
        key = self.check_attributes(bpm, key)
        if output_type not in ("np", "pt"):
            raise GeneratorError(f"output_type must be 'np' or 'pt', got {output_type!r}")
        self._interrupt = False
        n = num_waveforms_per_prompt
        batch = len(prompts) * n
        frames = math.ceil(audio_length_in_s * self.frame_rate)
        device = self.musicgen.device

        # 2. encode the prompt (and the melody, the CLAP text embedding)
        text, text_mask, clap = self.encode_prompt(prompts, use_clap)
        text, text_mask = text.repeat_interleave(n, 0), text_mask.repeat_interleave(n, 0)
        clap = clap.repeat_interleave(n, 0) if clap is not None else None
        tune = None
        if melody is not None:
            tune = self.melody_tokens(melody, melody_sampling_rate, frames).to(device)[None].expand(batch, -1)
        attributes = self.prepare_attributes(prompts, n, frames, bpm, key, read_prompt_attributes, generator)

        # 3. prepare the audio prompt's codes
        codes = torch.zeros(batch, self.musicgen.decoder.num_codebooks, 0, dtype=torch.long, device=device)
        if audio_prompt is not None:
            x = self._audio(audio_prompt, audio_prompt_sampling_rate, "audio_prompt", MIN_AUDIO_PROMPT_S)
            x = torch.from_numpy(x)[None].to(device, self.codec.dtype)
            codes = self.codec.encode(x).audio_codes[0][..., :frames].long().expand(batch, -1, -1)

        # 4. generate the tokens, window by window
        options = SamplingOptions(guidance_scale=guidance_scale, temperature=temperature, top_k=top_k, top_p=top_p,
                                  do_sample=do_sample)  # fmt: skip
        window = self.context_frames
        overlap = min(max(int(window_overlap_s * self.frame_rate), 1), window // 2)
        plan = self.window_plan(frames, codes.shape[-1], window, overlap)
        self._num_timesteps = self._steps(frames, codes.shape[-1], window, overlap, codes.shape[1])
        progress = self.progress_bar(total=self._num_timesteps)
        done = [0]

        def on_step(step, sequence):
            done[0] += 1
            progress.update(1)
            if callback_on_step_end is not None:
                callback_on_step_end(self, done[0] - 1, done[0] - 1, {"codes": sequence})
            return self._interrupt

        for begin, length in plan:
            if self._interrupt:
                break
            extra = {}
            if clap is not None:  # an empty prompt has no CLAP token
                extra.update(clap=clap, clap_on=text_mask.any(-1))
            if tune is not None:
                extra["melody"] = tune[:, begin : begin + length]
            if attributes:
                extra.update(attributes)
                if "rhythm" in attributes:
                    extra["rhythm"] = attributes["rhythm"][:, begin : begin + length]
            states, mask, frame_inputs = self.conditioner(text, text_mask, frames=length, **extra)
            terms = []
            if key_guidance_scale and "key_on" in extra and extra["key_on"].any():
                no_key = {**extra, "key_on": torch.zeros_like(extra["key_on"])}
                terms.append(ConditionGuidance(*self.conditioner(text, text_mask, frames=length, **no_key),
                                               scale=float(key_guidance_scale)))  # fmt: skip
            new = sample_window(self.musicgen, states, mask, length, options, codes[..., begin:],
                                generator=generator, on_step=on_step, frame_inputs=frame_inputs,
                                condition_guidance=terms)  # fmt: skip
            codes = torch.cat([codes[..., :begin], new], dim=-1)
        progress.close()

        # 5. decode
        if codes.shape[-1] == 0:  # interrupted before the first frame
            audio = torch.zeros(batch, self.codec.config.audio_channels, 0)
        else:
            audio = self.codec.decode(codes[None], [None] * batch).audio_values.float()
        audio = audio[..., : int(round(audio_length_in_s * self.sampling_rate))]
        self.maybe_free_model_hooks()
        audios = audio.cpu().numpy() if output_type == "np" else audio
        if not return_dict:
            return (audios,)
        return AudioPipelineOutput(audios=audios)

    @staticmethod
    def window_plan(frames: int, prompt: int, window: int, overlap: int) -> list[tuple[int, int]]:
        """``(begin, length)`` of each window that takes ``prompt`` frames to ``frames``: the first
        starts at 0 while the prompt fits the context, each later one continues the last
        ``overlap`` frames of the one before."""
        plan, have = [], prompt
        while have < frames:
            begin = max(0, have - overlap) if have > window - 1 else 0
            plan.append((begin, min(window, frames - begin)))
            have = begin + plan[-1][1]
        return plan

    @classmethod
    def _steps(cls, frames: int, prompt: int, window: int, overlap: int, num_codebooks: int) -> int:
        """Token steps the windows take (for the progress bar and ``num_timesteps``)."""
        steps, have = 0, prompt
        for begin, length in cls.window_plan(frames, prompt, window, overlap):
            steps += length - (have - begin) + num_codebooks - 1  # new frames + the codebook delay
            have = begin + length
        return max(steps, 1)


def load_musicgen_parts(folder):
    """``(musicgen, conditioner or None)`` of a TextToMusicPipeline folder or of a bare MusicGen folder
    (official layout or ours), for fine-tuning."""
    from transformers import MusicgenForConditionalGeneration

    folder = Path(folder)
    if (folder / "model_index.json").is_file():
        return (MusicgenForConditionalGeneration.from_pretrained(folder / "musicgen"),
                MusicConditioner.from_pretrained(folder / "conditioner"))
    return MusicgenForConditionalGeneration.from_pretrained(folder), None
