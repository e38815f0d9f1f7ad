"""Speed of the text-to-music token LM: our pipeline against transformers' MusicGen ``generate`` on CPU.

One process, the same weights (the pipeline folder's ``musicgen``), the same prompt, the same
thread count; runs alternate between the systems (so both see the same machine load) and the
table shows medians over ``--repeats``. Each system generates with sampling (top-k 250):

* ``ours``: ``pipe(prompt, audio_length_in_s=S, guidance_scale=g)``. Longer than the trained
  context (6 s for the bundled model), it generates in windows that each re-read the last
  ``window_overlap_s`` (5 s, capped at half the context: 3 s) of the previous one, so 10 s are 3
  windows: 450 frames, then 225 new frames twice, each after a prefill of the 225 overlap frames.
* ``transformers``: ``pipe.musicgen.generate(**tokenizer(prompt), do_sample=True,
  max_new_tokens=frames + K - 1, guidance_scale=g)``: the same number of frames in one pass,
  running past the trained context (its sinusoidal positions extend; the music past 6 s is out of
  distribution, but the work per token is what a window would do).
* the single-window rows (``--window-seconds``, the context: 6 s) do exactly the same work in both.

Columns: ``wall s`` end to end (prompt encoding, token LM, codec decode); ``decode s`` the codec's
share of it (both call ``musicgen.audio_encoder.decode`` once); ``LM ms/step`` (wall - decode) per
decoder forward (ours: the windows' steps, their prefills amortised in; transformers: one per new
token); ``tok/s`` output frames x codebooks per LM second (audio tokens of the result, not counting
the frames a window re-reads); ``RTF`` wall / seconds of audio (< 1: faster than real time);
``ours/tf`` our wall / transformers' wall for the same frames and guidance (< 1: ours faster).

A second table times our sampling loop per token step on one window (``sample_window``): the
reference loop (every step through transformers' forward, ``fast=False``: the loop before its
optimisation), the fast loop (same tokens), and the fast loop with bf16 matrix products
(``SamplingOptions(dtype=torch.bfloat16)``: not the same tokens; the pipeline has no option for it yet).

    PYTHONPATH=src python benchmarks/lm_speed.py [--model pipelines/text-to-music] [--seconds 10] \\
        [--threads 2] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

PROMPT = "a calm piano piece with soft strings, slow tempo"
TARGET = "10 s of music in under 10 s on 2 CPU threads with guidance"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "load_average_1min": round(load[0], 2)}


@contextlib.contextmanager
def timed_decode(pipe, seconds: list[float]):
    """Adds the wall time of every ``musicgen.audio_encoder.decode`` call to ``seconds``."""
    codec = pipe.musicgen.audio_encoder
    decode = codec.decode

    def spy(*args, **kwargs):
        start = time.perf_counter()
        try:
            return decode(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    codec.decode = spy
    try:
        yield
    finally:
        del codec.decode


@contextlib.contextmanager
def sample_window_options(**overrides):
    """Runs the pipeline with ``sample_window(..., **overrides)`` (``fast``) or its options replaced
    (``dtype``): benchmark-only switches the pipeline does not expose."""
    from hf_musiccodec.pipelines.text_to_music import pipeline_text_to_music as module
    from hf_musiccodec.pipelines.text_to_music import sampling

    if not overrides:
        yield
        return
    original = module.sample_window
    fast = overrides.pop("fast", True)

    @functools.wraps(original)
    def patched(musicgen, states, mask, frames, options, *args, **kwargs):
        options = sampling.SamplingOptions(**{**options.__dict__, **overrides})
        return original(musicgen, states, mask, frames, options, *args, fast=fast, **kwargs)

    module.sample_window = patched
    try:
        yield
    finally:
        module.sample_window = original


def run_ours(pipe, prompt: str, seconds: float, guidance: float | None, seed: int, **loop) -> dict:
    decode: list[float] = []
    with timed_decode(pipe, decode), sample_window_options(**loop):
        start = time.perf_counter()
        audio = pipe(prompt, audio_length_in_s=seconds, guidance_scale=guidance,
                     generator=torch.Generator().manual_seed(seed)).audios  # fmt: skip
        wall = time.perf_counter() - start
    frames = math.ceil(seconds * pipe.frame_rate)
    window = pipe.context_frames
    overlap = min(max(int(5.0 * pipe.frame_rate), 1), window // 2)  # the pipeline's default window_overlap_s
    steps = pipe._steps(frames, 0, window, overlap, pipe.musicgen.decoder.num_codebooks)
    return {"wall": wall, "decode": sum(decode), "frames": frames, "steps": steps, "samples": audio.shape[-1],
            "windows": count_windows(frames, window, overlap)}


def count_windows(frames: int, window: int, overlap: int) -> int:
    """Windows the pipeline walks for ``frames`` (as ``TextToMusicPipeline.__call__``, no audio prompt)."""
    count, have = 0, 0
    while have < frames:
        begin = max(0, have - overlap) if have > window - 1 else 0
        have = begin + min(window, frames - begin)
        count += 1
    return count


def run_transformers(pipe, prompt: str, seconds: float, guidance: float | None, seed: int) -> dict:
    frames = math.ceil(seconds * pipe.frame_rate)
    k = pipe.musicgen.decoder.num_codebooks
    inputs = pipe.tokenizer([prompt], return_tensors="pt").to(pipe.musicgen.device)
    decode: list[float] = []
    with timed_decode(pipe, decode), torch.no_grad():
        torch.manual_seed(seed)
        start = time.perf_counter()
        audio = pipe.musicgen.generate(**inputs, do_sample=True, max_new_tokens=frames + k - 1,
                                       guidance_scale=guidance)  # fmt: skip
        wall = time.perf_counter() - start
    return {"wall": wall, "decode": sum(decode), "frames": frames, "steps": frames + k - 1,
            "samples": audio.shape[-1], "windows": 1}


def measure(pipe, seconds: float, window_seconds: float | None, repeats: int, prompt: str = PROMPT,
            variants: bool = True) -> list[dict]:
    """Rows (dicts) of the main table: medians over ``repeats`` alternating runs."""
    pipe.set_progress_bar_config(disable=True)
    k = pipe.musicgen.decoder.num_codebooks
    cases = []  # (system, seconds, guidance, runner, loop switches)
    lengths = [seconds] + ([window_seconds] if window_seconds and window_seconds != seconds else [])
    for length in lengths:
        for ours_g, tf_g in ((3.0, 3.0), (1.0, None)):
            cases.append(("ours", length, ours_g, run_ours, {}))
            cases.append(("transformers", length, tf_g, run_transformers, {}))
    if variants:
        cases.append(("ours, reference loop", seconds, 3.0, run_ours, {"fast": False}))
        cases.append(("ours, bf16 products", seconds, 3.0, run_ours, {"dtype": torch.bfloat16}))
    # warm-up: a short run of each code path (weight preparation, allocator, oneDNN kernels)
    for _, _, guidance, run, loop in cases:
        run(pipe, prompt, 0.2, guidance, 0, **loop)
    results = {i: [] for i in range(len(cases))}
    for repeat in range(repeats):
        for i, (_, length, guidance, run, loop) in enumerate(cases):
            results[i].append(run(pipe, prompt, length, guidance, repeat, **loop))
    rows = []
    for i, (system, length, guidance, _, _) in enumerate(cases):
        runs = results[i]
        wall = statistics.median(r["wall"] for r in runs)
        decode = statistics.median(r["decode"] for r in runs)
        lm = statistics.median(r["wall"] - r["decode"] for r in runs)
        first = runs[0]
        audio_seconds = length  # the output is cut to it
        rows.append({"system": system, "seconds": length, "audio_seconds": audio_seconds,
                     "guidance": guidance, "frames": first["frames"], "codebooks": k, "windows": first["windows"],
                     "steps": first["steps"], "wall_s": wall, "decode_s": decode, "decode_share": decode / wall,
                     "lm_s": lm, "lm_ms_per_step": 1000 * lm / first["steps"], "tokens_per_s": first["frames"] * k / lm,
                     "rtf": wall / audio_seconds, "walls": [r["wall"] for r in runs]})  # fmt: skip
    reference = {(r["seconds"], r["guidance"] if r["guidance"] and r["guidance"] > 1 else None): r
                 for r in rows if r["system"] == "transformers"}  # fmt: skip
    for r in rows:
        if r["system"] != "transformers":
            tf = reference.get((r["seconds"], r["guidance"] if r["guidance"] > 1 else None))
            r["ours_over_transformers"] = r["wall_s"] / tf["wall_s"] if tf else None
    return rows


def step_times(pipe, frames: int, repeats: int, prompt: str = PROMPT, variants=None) -> list[dict]:
    """Median ms per token step of ``sample_window`` on one window of ``frames`` (after the first step)."""
    from hf_musiccodec.pipelines.text_to_music.sampling import SamplingOptions, sample_window

    variants = variants or [("reference loop (transformers forward per step)", {"fast": False}, {}),
                            ("fast loop", {}, {}),
                            ("fast loop, bf16 products", {}, {"dtype": torch.bfloat16})]
    states, mask, _ = pipe.encode_prompt([prompt], use_clap=False)
    states, mask = pipe.conditioner(states, mask)
    frames = min(frames, pipe.context_frames)
    rows = []
    for guidance in (3.0, None):
        per = {name: [] for name, _, _ in variants}
        for _ in range(repeats):
            for name, kwargs, options in variants:
                stamps = []
                sample_window(pipe.musicgen, states, mask, frames, SamplingOptions(guidance_scale=guidance, **options),
                              generator=torch.Generator().manual_seed(0),
                              on_step=lambda step, seq: stamps.append(time.perf_counter()), **kwargs)  # fmt: skip
                per[name] += [b - a for a, b in zip(stamps, stamps[1:])]
        base = statistics.median(per[variants[0][0]])
        for name, _, _ in variants:
            times = sorted(per[name])
            median = statistics.median(times)
            rows.append({"loop": name, "guidance": guidance, "frames": frames, "ms_per_step": 1000 * median,
                         "p90_ms": 1000 * times[int(0.9 * (len(times) - 1))], "speed_up": base / median})
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["| system | audio s | guidance | windows | steps | wall s | decode s (share) | LM ms/step | tok/s | RTF "
             "| ours/tf |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = r.get("ours_over_transformers")
        guidance = "none" if not r["guidance"] or r["guidance"] <= 1 else f"{r['guidance']:g}"
        lines.append(f"| {r['system']} | {r['audio_seconds']:g} | {guidance} | {r['windows']} | {r['steps']} "
                     f"| {r['wall_s']:.2f} | {r['decode_s']:.2f} ({100 * r['decode_share']:.0f} %) "
                     f"| {r['lm_ms_per_step']:.2f} | {r['tokens_per_s']:.0f} | {r['rtf']:.2f} "
                     f"| {'' if ratio is None else f'{ratio:.2f}'} |")
    return "\n".join(lines)


def format_steps(rows: list[dict]) -> str:
    lines = ["| sampling loop | guidance | frames | median ms/step | p90 ms | speed-up |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        guidance = "none" if r["guidance"] is None else f"{r['guidance']:g}"
        lines.append(f"| {r['loop']} | {guidance} | {r['frames']} | {r['ms_per_step']:.2f} | {r['p90_ms']:.2f} "
                     f"| {r['speed_up']:.2f}x |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pipelines/text-to-music", help="a TextToMusicPipeline folder")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio to generate")
    parser.add_argument("--window-seconds", type=float, default=None,
                        help="the single-window rows (default: the model's context, 6 s for the bundled model)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step-frames", type=int, default=150, help="frames of the per-step table's window (0: skip)")
    parser.add_argument("--no-variants", action="store_true", help="skip the reference-loop and bf16 pipeline rows")
    parser.add_argument("--prompt", default=PROMPT)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    folder = Path(args.model)
    if not (folder / "model_index.json").is_file():
        print(f"error: {folder} is not a TextToMusicPipeline folder (no model_index.json); train it with "
              "python -m hf_musiccodec.training.train_lm --config pipelines/text-to-music/train.yaml", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    from hf_musiccodec.pipelines.text_to_music import TextToMusicPipeline

    pipe = TextToMusicPipeline.from_pretrained(folder)
    window_seconds = args.window_seconds or pipe.context_frames / pipe.frame_rate
    info = machine()
    print(f"CPU: {info['cpu']} ({info['cores']} cores), torch {info['torch']} with {info['torch_threads']} threads, "
          f"1-min load average {info['load_average_1min']} at start")
    print(f"model: {folder} (context {pipe.context_frames / pipe.frame_rate:g} s, "
          f"{pipe.musicgen.decoder.num_codebooks} codebooks at {pipe.frame_rate:g} Hz), prompt {args.prompt!r}, "
          f"sampling top-k 250, medians of {args.repeats} alternating runs\n")
    rows = measure(pipe, args.seconds, window_seconds, args.repeats, args.prompt, variants=not args.no_variants)
    print(format_table(rows))
    print("\ntok/s: output frames x codebooks per second of LM time (wall - codec decode); LM ms/step: LM time per "
          "decoder forward; RTF: wall / audio seconds; ours/tf: our wall / transformers' wall")
    main_row = next(r for r in rows if r["system"] == "ours" and r["seconds"] == args.seconds and r["guidance"] == 3.0)
    verdict = "met" if main_row["wall_s"] < main_row["audio_seconds"] and args.threads <= 2 else "not met"
    print(f"target ({TARGET}): {verdict}, {main_row['wall_s']:.2f} s for {main_row['audio_seconds']:g} s")
    steps = []
    if args.step_frames:
        steps = step_times(pipe, args.step_frames, args.repeats, args.prompt)
        print(f"\nper token step of sample_window on one window ({steps[0]['frames']} frames, first step excluded)\n")
        print(format_steps(steps))
    info["load_average_1min_end"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "model": str(folder), "prompt": args.prompt,
                                               "rows": rows, "steps": steps}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
