#!/usr/bin/env python
"""VampNet quality tables: sampling passes, the paper's prompt recipes, and the compression continuum.

    PYTHONPATH=src python benchmarks/vampnet_quality.py --pipeline pipelines/vampnet \
        [--clap pipelines/music-clap] [--data data/music21] [--split validation] [--num-clips 16] \
        [--seconds 6] [--offset 0] [--seed 0] [--steps 12 24 36] [--recipe-steps 24] \
        [--passes-recipe periodic-16] [--recipes periodic-8 beat ...] [--device cpu] [--json out.json]

Data: ``--num-clips`` rows of ``--split`` of a render folder's ``manifest.jsonl`` (or the manifest
file itself; only its ``path`` and ``split`` columns are read), a seeded sample; each clip is the
``--seconds`` from ``--offset`` s into its file (rows too short for that are skipped), mono (the
codec's channels), at the pipeline's rate, not normalised. The manifest's ``validation`` rows are
held out from VampNet training: its token cache is ``music21_caption_dataset``'s train split,
which only holds manifest ``train`` rows.

Every clip ``i`` of every row is one call ``pipe(clip, sampling_rate=sr, num_inference_steps=...,
generator=torch.Generator().manual_seed(seed + i), **recipe)``: rows differ only in the recipe
(and the passes). Tables:

* **passes**: ``--passes-recipe`` (default periodic-16: one frame in 16 kept, all its coarse
  codebooks; 15/16 of the tokens generated, so the passes matter) at each of ``--steps``;
* **recipes**: every recipe at ``--recipe-steps`` passes; the codec reconstruction (an empty
  mask: nothing generated) is always measured, it is the floor of the distances and the
  comparison of the kept-region column;
* **compression continuum**: the recipe rows sorted by the bit rate of their prompt.

FAD's reference set is the held-out input clips themselves (n = --num-clips): the reconstruction
row's FAD is the codec's own loss, and FAD is biased upward for small sets, so compare rows of
equal n only. Bad input (missing folders, bad numbers, no usable clip) is a one-line error and
exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from hf_musiccodec.audio.io import audio_info, load_audio
from hf_musiccodec.data.manifest import read_manifest_records
from hf_musiccodec.metrics import ClapAudioEmbedding, MelStatsEmbedding, embed_audio, frechet_distance, mel_distance
from hf_musiccodec.metrics.benchmark_cli import run_benchmark
from hf_musiccodec.metrics.spectral_losses import MultiScaleMelLoss

REPO = Path(__file__).resolve().parents[1]
NAME = "vampnet_quality"
RECONSTRUCTION = "reconstruction"


class BenchmarkError(ValueError):
    """Bad input: reported in one line."""


# --------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class Recipe:
    """A prompt of the paper: ``kwargs(seconds, coarse_codebooks, frames)`` -> the pipeline's keywords."""

    name: str
    description: str
    kwargs: Callable[[float, int, int], dict]


RECIPES = {r.name: r for r in [
    Recipe(RECONSTRUCTION, "codec reconstruction: an empty mask, nothing generated (the floor)",
           lambda s, k, t: {"mask": torch.zeros(k, t, dtype=torch.bool)}),
    Recipe("inpainting", "prefix + suffix: the first and last quarter kept (prefix_s = suffix_s = seconds / 4), "
           "the middle half generated", lambda s, k, t: {"prefix_s": s / 4, "suffix_s": s / 4}),
    Recipe("continuation", "prefix only: the first half kept (prefix_s = seconds / 2)",
           lambda s, k, t: {"prefix_s": s / 2}),
    Recipe("periodic-8", "periodic prompt P=8: every 8th frame kept (width 1)", lambda s, k, t: {"periodic_prompt": 8}),
    Recipe("periodic-16", "periodic prompt P=16", lambda s, k, t: {"periodic_prompt": 16}),
    Recipe("periodic-32", "periodic prompt P=32", lambda s, k, t: {"periodic_prompt": 32}),
    Recipe("periodic-8+dropout", "periodic P=8 with dropout 0.5 (each kept token dropped with p = 0.5)",
           lambda s, k, t: {"periodic_prompt": 8, "dropout": 0.5}),
    Recipe("beat", "beat-driven: 75 ms kept after each beat (librosa's tracker; beat_mask_width_ms=75)",
           lambda s, k, t: {"beat_mask_width_ms": 75.0}),
    Recipe("onset", "onset-driven: 75 ms kept after each onset (onset_mask_width_ms=75)",
           lambda s, k, t: {"onset_mask_width_ms": 75.0}),
    Recipe("lowest-codebook", "codebook prompt: the lowest codebook kept everywhere, the upper coarse ones "
           "generated (keep_lower_codebooks=1)", lambda s, k, t: {"keep_lower_codebooks": 1}),
    Recipe("periodic-16+cb0", "periodic P=16 and upper_codebook_mask=1: only codebook 0 of every 16th frame kept",
           lambda s, k, t: {"periodic_prompt": 16, "upper_codebook_mask": 1}),
    Recipe("unconditional", "no prompt: every token generated (the input only sets the length)",
           lambda s, k, t: {}),
]}

# Table header and meaning of each column (printed under every table, stored in the JSON).
COLUMNS = {
    "n": ("n", "clips in the row"),
    "steps": ("passes", "sampling passes of the coarse model (num_inference_steps)"),
    "bps": ("bps", "bits per second of the kept tokens: the pipeline's .bits_per_second, kept coarse tokens x "
            "log2(codebook size) x frame rate / frames, mean over clips. The fine codebooks (the coarse-to-fine "
            "model's) are not counted, so the reconstruction's real bit rate is higher"),
    "mel": ("mel", "multi-scale mel distance of the output to the input clip (hf_musiccodec.metrics.mel_distance, "
            "DAC's 7 scales), mean over clips; lower is closer"),
    "kept_mel": ("kept mel", "kept-region closeness: the same mel distance computed only on the STFT frames whose "
                 "centre lies in a fully kept codec frame (no coarse token generated, so every codebook is the "
                 "input's), summed over the 7 scales, mean over clips that have such frames; '—' when none"),
    "kept_mel_reconstruction": ("recon, same frames", "the codec reconstruction's kept mel on the same frames of "
                                "the same clips: what the kept region would score if nothing were generated; "
                                "kept mel above it = generated neighbours leaking into the kept audio through "
                                "the decoder's receptive field (and the STFT windows: up to 2048 samples, so for "
                                "the 1-frame spans of periodic prompts both numbers mostly see generated audio; "
                                "the measure is sharpest for long spans: inpainting, continuation)"),
    "kept_frames": ("kept frames %", "share of codec frames fully kept, mean over clips"),
    "kept_equal": ("kept tokens equal %", "share of kept tokens (the coarse ones the mask keeps, plus every fine "
                   "codebook of fully kept frames) equal to the input's codes in the output's codes: must be 100; "
                   "'—' when nothing is kept"),
    "fad_clap": ("FAD (clap)", "Fréchet distance of the outputs to the reference set (the held-out input clips "
                 "themselves), CLAP audio embedding, one vector per clip; lower is better; biased upward for "
                 "small sets (n clips < the embedding's dimension: the covariances are rank-deficient and "
                 "regularised), so compare rows of equal n only"),
    "fad_mel": ("FAD (mel-stats)", "same with the non-learned 'mel-stats' embedding (log-mel band mean/std per "
                "1 s window)"),
    "s_per_clip": ("s/clip", "wall seconds of one pipeline call (encode, vamp, decode), mean over clips"),
}
PASSES_COLUMNS = ("steps", "n", "fad_clap", "fad_mel", "s_per_clip")
RECIPE_COLUMNS = ("n", "bps", "mel", "kept_mel", "kept_mel_reconstruction", "kept_frames", "kept_equal", "fad_clap",
                  "fad_mel", "s_per_clip")
CONTINUUM_COLUMNS = ("bps", "mel", "fad_clap", "fad_mel")


@dataclass
class Row:
    name: str
    steps: int
    n: int
    bps: float
    mel: float
    kept_mel: float | None
    kept_mel_reconstruction: float | None
    kept_frames: float
    kept_equal: float | None
    fad_clap: float
    fad_mel: float
    s_per_clip: float
    kept_tokens: int = 0


# --------------------------------------------------------------------------- data


def manifest_path(data) -> Path:
    data = Path(data)
    manifest = data if data.is_file() and data.suffix == ".jsonl" else data / "manifest.jsonl"
    if not manifest.is_file():
        raise BenchmarkError(f"--data {data}: no render folder with manifest.jsonl (nor a .jsonl manifest)")
    return manifest


def load_clips(data, split: str, n: int, seconds: float, offset: float, seed: int, sr: int, channels: int
               ) -> tuple[list[np.ndarray], list[dict]]:
    """``n`` clips (channels, samples) of ``split``: rows in a seeded order, each cut to ``seconds`` from
    ``offset``; rows whose audio is shorter are skipped."""
    manifest = manifest_path(data)
    rows = [r for r in read_manifest_records(manifest) if r.get("split") == split]
    if not rows:
        raise BenchmarkError(f"--data {manifest} has no rows with split {split!r}")
    if any("path" not in r for r in rows):
        raise BenchmarkError(f"--data {manifest}: rows without a 'path'")
    want = round(seconds * sr)
    clips, used = [], []
    for i in np.random.default_rng(seed).permutation(len(rows)):
        r = rows[int(i)]
        info = None if r.get("duration") is not None else audio_info(r["path"])  # a missing file raises here
        if (float(r["duration"]) if info is None else info.frames / info.samplerate) < offset + seconds:
            continue
        audio, _ = load_audio(r["path"], sampling_rate=sr, channels=channels, offset=offset, duration=seconds)
        if audio.shape[-1] < want:
            continue
        clips.append(audio[:, :want])
        used.append({"path": r["path"], "offset": offset})
        if len(clips) == n:
            break
    if len(clips) < 2:
        raise BenchmarkError(f"--data {manifest}: {len(clips)} {split} clip(s) hold {offset:g} + {seconds:g} s of "
                             "audio; FAD needs at least 2")
    return clips, used


# --------------------------------------------------------------------------- measures


def pipeline_folder(folder) -> Path:
    folder = Path(folder)
    index = folder / "model_index.json"
    if not index.is_file():
        raise BenchmarkError(f"--pipeline {folder} does not exist or has no model_index.json")
    if json.loads(index.read_text()).get("_class_name") != "VampNetPipeline":
        raise BenchmarkError(f"--pipeline {folder} is not a VampNetPipeline folder")
    return folder


def load_pipeline(folder, device: str):
    from hf_musiccodec.pipelines.vampnet import VampNetPipeline

    pipe = VampNetPipeline.from_pretrained(pipeline_folder(folder)).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_clap(folder):
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchmarkError(f"--clap {folder} does not exist")
    import hf_musiccodec.conditioning  # noqa: F401  registers MusicClap with the Auto classes
    from transformers import AutoModel, AutoProcessor

    return AutoModel.from_pretrained(folder, local_files_only=True).eval(), AutoProcessor.from_pretrained(
        folder, local_files_only=True)


def kept_mel_distance(ref: np.ndarray, est: np.ndarray, sr: int, keep_frames: np.ndarray, frame_rate: float
                      ) -> float | None:
    """:func:`mel_distance` (DAC's scales, summed) on the STFT frames whose centre falls in a codec frame
    where ``keep_frames`` is True; None when no frame is kept. Equals ``mel_distance`` when every frame is."""
    keep = torch.as_tensor(np.asarray(keep_frames, dtype=bool))
    if not keep.any():
        return None
    scales = MultiScaleMelLoss(sr)
    total = 0.0
    for window, n_mels in zip(scales.window_lengths, scales.n_mels):
        hop = max(1, int(window * scales.hop_factor))

        def masked_l1(a, b, hop=hop):  # (channels, n_mels, stft frames); frame j is centred on sample j * hop
            codec_frame = (torch.arange(a.shape[-1]) * hop * frame_rate / sr).long().clamp(max=keep.numel() - 1)
            return (a - b).abs()[..., keep[codec_frame]].mean()

        total += mel_distance(ref, est, sr, window_lengths=(window,), n_mels=(n_mels,), loss_fn=masked_l1)
    return total


@dataclass
class Measures:
    """What every row is measured against: the input clips, their codes and embeddings, the reconstruction."""

    pipe: object
    clips: list[np.ndarray]
    seconds: float
    seed: int
    embeddings: dict
    reference: dict = field(default_factory=dict)
    codes: list = field(default_factory=list)
    reconstruction: list = field(default_factory=list)
    cache: dict = field(default_factory=dict)

    def __post_init__(self):
        sr = self.pipe.sampling_rate
        self.reference = {k: embed_audio(self.clips, sr, e) for k, e in self.embeddings.items()}
        self.codes = [self.pipe.encode_audio(c, sr).cpu() for c in self.clips]
        # untimed warm-up: one-time costs (librosa's first beat/onset call, CUDA kernels) stay out of s/clip
        self.pipe(self.clips[0], sampling_rate=sr, num_inference_steps=1, beat_mask_width_ms=75.0,
                  onset_mask_width_ms=75.0, generator=torch.Generator().manual_seed(self.seed))

    def row(self, recipe: Recipe, steps: int) -> Row:
        key = (recipe.name, steps)
        if key not in self.cache:
            self.cache[key] = self._measure(recipe, steps)
        return self.cache[key]

    def _measure(self, recipe: Recipe, steps: int) -> Row:
        pipe, sr = self.pipe, self.pipe.sampling_rate
        k = pipe.vampnet.config.num_codebooks
        outs, bps, mel, wall = [], [], [], 0.0
        kept, kept_recon, kept_share, equal, total = [], [], [], 0, 0
        for i, (clip, codes) in enumerate(zip(self.clips, self.codes)):
            started = time.perf_counter()
            out = pipe(clip, sampling_rate=sr, num_inference_steps=steps,
                       generator=torch.Generator().manual_seed(self.seed + i),
                       **recipe.kwargs(self.seconds, k, codes.shape[-1]))
            wall += time.perf_counter() - started
            audio = out.audios[0]
            outs.append(audio)
            bps.append(out.bits_per_second)
            mel.append(mel_distance(clip, audio, sr))
            mask = out.mask[0]                           # (coarse codebooks, frames), True = generated
            keep_frames = ~mask.any(dim=0)               # frames where every coarse token is the input's
            kept_tokens = torch.zeros(codes.shape[1:], dtype=torch.bool)
            kept_tokens[:k] = ~mask
            kept_tokens[k:] = keep_frames                # the fine codebooks of untouched frames are kept too
            total += int(kept_tokens.sum())
            equal += int((out.codes[0] == codes[0])[kept_tokens].sum())
            kept_share.append(float(keep_frames.float().mean()))
            if recipe.name == RECONSTRUCTION:
                self.reconstruction.append(audio)
            value = kept_mel_distance(clip, audio, sr, keep_frames.numpy(), pipe.frame_rate)
            if value is not None:
                kept.append(value)
                kept_recon.append(kept_mel_distance(clip, self.reconstruction[i], sr, keep_frames.numpy(),
                                                    pipe.frame_rate))
        fad = {k_: frechet_distance(self.reference[k_], embed_audio(outs, sr, e)) for k_, e in self.embeddings.items()}
        return Row(name=recipe.name, steps=steps, n=len(outs), bps=float(np.mean(bps)), mel=float(np.mean(mel)),
                   kept_mel=float(np.mean(kept)) if kept else None,
                   kept_mel_reconstruction=float(np.mean(kept_recon)) if kept_recon else None,
                   kept_frames=100 * float(np.mean(kept_share)), kept_equal=100 * equal / total if total else None,
                   fad_clap=fad["clap"], fad_mel=fad["mel"], s_per_clip=wall / len(outs), kept_tokens=total)


# --------------------------------------------------------------------------- command line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=NAME, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default=str(REPO / "pipelines" / "vampnet"), help="VampNetPipeline folder")
    parser.add_argument("--clap", default=str(REPO / "pipelines" / "music-clap"), help="CLAP model folder (FAD)")
    parser.add_argument("--data", default=str(REPO / "data" / "music21"), help="render folder with manifest.jsonl")
    parser.add_argument("--split", default="validation", help="manifest split of the held-out clips")
    parser.add_argument("--num-clips", type=int, default=16, help="clips (default 16; at least 2)")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of every clip (default 6)")
    parser.add_argument("--offset", type=float, default=0.0, help="where clips start in their files (s, default 0)")
    parser.add_argument("--seed", type=int, default=0, help="clip sample and generator seeds (seed + clip index)")
    parser.add_argument("--steps", type=int, nargs="+", default=[12, 24, 36], help="passes of the passes table")
    parser.add_argument("--recipe-steps", type=int, default=24, help="passes of the recipe table (default 24)")
    parser.add_argument("--passes-recipe", default="periodic-16", help="recipe of the passes table")
    parser.add_argument("--recipes", nargs="+", default=None,
                        help=f"recipe rows (default all): {', '.join(RECIPES)}; the reconstruction is always measured")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    return parser.parse_args(argv)


def check_args(args) -> list[Recipe]:
    """Bad numbers and names as one-line errors; returns the recipe rows (reconstruction first)."""
    if args.num_clips < 2:
        raise BenchmarkError(f"--num-clips must be >= 2 (FAD needs two clips), got {args.num_clips}")
    if not (math.isfinite(args.seconds) and args.seconds >= 0.5):
        raise BenchmarkError(f"--seconds must be a number >= 0.5, got {args.seconds:g}")
    if not (math.isfinite(args.offset) and args.offset >= 0):
        raise BenchmarkError(f"--offset must be >= 0, got {args.offset:g}")
    if not all(1 <= s <= 256 for s in [*args.steps, args.recipe_steps]):
        raise BenchmarkError(f"--steps and --recipe-steps must be in [1, 256], got {args.steps} and "
                             f"{args.recipe_steps}")
    if args.threads < 1:
        raise BenchmarkError(f"--threads must be >= 1, got {args.threads}")
    names = args.recipes or list(RECIPES)
    unknown = [n for n in [*names, args.passes_recipe] if n not in RECIPES]
    if unknown:
        raise BenchmarkError(f"unknown recipe {unknown[0]!r}; known: {', '.join(RECIPES)}")
    return [RECIPES[RECONSTRUCTION]] + [RECIPES[n] for n in dict.fromkeys(names) if n != RECONSTRUCTION]


def run(args) -> dict:
    recipes = check_args(args)
    torch.set_num_threads(args.threads)
    pipeline_folder(args.pipeline)  # cheap checks before loading models
    manifest_path(args.data)
    clap_model, clap_processor = load_clap(args.clap)
    pipe = load_pipeline(args.pipeline, args.device)
    clips, used = load_clips(args.data, args.split, args.num_clips, args.seconds, args.offset, args.seed,
                             pipe.sampling_rate, pipe.codec.config.audio_channels)
    embeddings = {"clap": ClapAudioEmbedding(clap_model, clap_processor), "mel": MelStatsEmbedding()}
    measures = Measures(pipe, clips, args.seconds, args.seed, embeddings)
    recipe_rows = [measures.row(r, args.recipe_steps) for r in recipes]  # reconstruction first: kept mel needs it
    passes_rows = [measures.row(RECIPES[args.passes_recipe], s) for s in args.steps]
    return {
        "pipeline": str(args.pipeline),
        "clap": str(args.clap),
        "data": str(args.data),
        "split": args.split,
        "device": args.device,
        "seconds": args.seconds,
        "offset": args.offset,
        "seed": args.seed,
        "sampling_rate": pipe.sampling_rate,
        "clips": used,
        "reference_set": f"the {len(clips)} held-out input clips themselves ({args.split} split, seeded sample)",
        "passes_recipe": args.passes_recipe,
        "recipe_steps": args.recipe_steps,
        "recipes": {r.name: r.description for r in recipes},
        "columns": {k: d for k, (_, d) in COLUMNS.items()},
        "passes": [asdict(r) for r in passes_rows],
        "recipe_rows": [asdict(r) for r in recipe_rows],
        "continuum": [r.name for r in sorted(recipe_rows, key=lambda r: -r.bps)],
    }


def _cell(value, key: str) -> str:
    if value is None:
        return "—"
    if key in ("n", "steps"):
        return str(value)
    return f"{value:.1f}" if key in ("bps", "kept_frames", "kept_equal") else f"{value:.3f}"


def table(rows: list[dict], keys, first: str = "row") -> str:
    head = [first] + [COLUMNS[k][0] for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([r["name"]] + [_cell(r[k], k) for k in keys]) + " |" for r in rows]
    return "\n".join(lines)


def legend(keys) -> list[str]:
    return [f"- {COLUMNS[k][0]}: {COLUMNS[k][1]}" for k in keys]


def report(result: dict) -> str:
    n = len(result["clips"])
    by_name = {r["name"]: r for r in result["recipe_rows"]}
    lines = [
        f"VampNet quality: {result['pipeline']} on {n} clips of {result['seconds']:g} s from {result['offset']:g} s, "
        f"{result['split']} split of {result['data']}, seed {result['seed']}, device {result['device']}",
        f"FAD reference set: {result['reference_set']}; CLAP: {result['clap']}",
        "",
        f"Passes ({result['passes_recipe']}: {result['recipes'].get(result['passes_recipe'], '')})",
        "",
        table(result["passes"], PASSES_COLUMNS),
        "",
        *legend(PASSES_COLUMNS),
        "",
        f"Recipes at {result['recipe_steps']} passes",
        "",
        table(result["recipe_rows"], RECIPE_COLUMNS),
        "",
        *legend(RECIPE_COLUMNS),
        "",
        "Compression continuum (the recipe rows by bit rate of the prompt, highest first)",
        "",
        table([by_name[name] for name in result["continuum"]], CONTINUUM_COLUMNS),
        "",
        "Recipes:",
        *[f"- {name}: {text}" for name, text in result["recipes"].items()],
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    return run_benchmark(NAME, parse_args(argv), run, report)


if __name__ == "__main__":
    sys.exit(main())
