"""Speed and memory of the latent diffusion pipeline on CPU: seconds for 10 s of music at 25 steps.

Each measurement runs in a fresh process (so that its peak memory is its own), with the same
weights, prompt and thread count; the cases alternate over ``--repeats`` rounds (so every case sees
the same machine load) and the table shows medians. Cases:

* ``ours``: ``MusicDiffusionPipeline(prompt, audio_length_in_s=S, num_inference_steps=N,
  guidance_scale=g)`` with DPM-Solver++ (the bundled scheduler), DDIM and Euler, with guidance
  (3.0: two U-Net passes a step, batched) and without (1.0: one);
* ``reference loop``: the bare diffusers loop on the same components, written out here as
  diffusers' own pipelines do it (CLAP text embedding, ``scheduler.step`` over the U-Net's guided
  output, ``codec.decode_latents``) with no input checks, progress bar or callbacks: the
  pipeline's overhead is ``ours/ref``.

Columns: ``wall s`` end to end (prompt, denoising, decode); ``U-Net ms/step`` (wall - decode) per
denoising step; ``decode s`` the codec's share; ``RTF`` wall / seconds of audio (< 1: faster than
real time); ``loaded MB`` the process's resident memory with the pipeline loaded (after a warm-up);
``peak MB`` its peak resident memory during the generation (Linux ``VmHWM``, reset before it);
``ours/ref`` our wall / the reference loop's for the same scheduler and guidance.

    PYTHONPATH=src python benchmarks/diffusion_speed.py [--model pipelines/music-diffusion] [--seconds 10] \\
        [--steps 25] [--threads 2] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROMPT = "a slow chorale for strings"
SCHEDULERS = {"dpm": "DPMSolverMultistepScheduler", "ddim": "DDIMScheduler", "euler": "EulerDiscreteScheduler"}
CASES = [("ours", "dpm", 3.0), ("reference loop", "dpm", 3.0), ("ours", "dpm", 1.0), ("reference loop", "dpm", 1.0),
         ("ours", "ddim", 3.0), ("ours", "euler", 3.0)]


def reference_loop(pipe, prompt: str, seconds: float, steps: int, guidance: float, seed: int):
    """The generation without the pipeline: what diffusers' pipelines do, on the same components."""
    import math

    import torch

    from hf_musiccodec.pipelines.pipeline_utils import clap_text_embeddings

    with torch.no_grad():
        cond = clap_text_embeddings(pipe.clap, pipe.clap_processor, [prompt], "cpu")
        embeds = torch.cat([torch.zeros_like(cond), cond]) if guidance > 1 else cond
        samples = int(round(seconds * pipe.sampling_rate))
        frames = math.ceil(samples / pipe.codec.config.hop_length)
        width = pipe.layout.frames_to_width(frames)
        pipe.scheduler.set_timesteps(steps)
        latents = torch.randn(1, pipe.layout.channels, 1, width, generator=torch.Generator().manual_seed(seed))
        latents = latents * pipe.scheduler.init_noise_sigma
        for t in pipe.scheduler.timesteps:
            x = torch.cat([latents] * 2) if guidance > 1 else latents
            x = pipe.scheduler.scale_model_input(x, t)
            out = pipe.unet(x, t, encoder_hidden_states=embeds[:, None], class_labels=embeds).sample
            if guidance > 1:
                uncond, text = out.chunk(2)
                out = uncond + guidance * (text - uncond)
            latents = pipe.scheduler.step(out, t, latents).prev_sample
        start = time.perf_counter()
        audio = pipe.codec.decode_latents(pipe.layout.to_latents(latents, frames))[..., :samples]
        return audio, time.perf_counter() - start


def child(args) -> dict:
    """One measurement in this process: load, warm up, time one generation."""
    import diffusers
    import torch

    from hf_musiccodec.metrics.benchmark_cli import process_memory_mb, reset_peak_memory
    from hf_musiccodec.pipelines import load_generator

    torch.set_num_threads(args.threads)
    pipe = load_generator(args.model)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = getattr(diffusers, SCHEDULERS[args.scheduler]).from_config(pipe.scheduler.config)
    decode_times: list[float] = []
    original = pipe.codec.decode_latents

    def timed_decode(*a, **k):
        start = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            decode_times.append(time.perf_counter() - start)

    def generate(seconds: float, steps: int):
        if args.system == "ours":
            pipe.codec.decode_latents = timed_decode
            try:
                pipe(PROMPT, audio_length_in_s=seconds, num_inference_steps=steps, guidance_scale=args.guidance,
                     generator=torch.Generator().manual_seed(args.seed))
            finally:
                del pipe.codec.decode_latents
        else:
            decode_times.append(reference_loop(pipe, PROMPT, seconds, steps, args.guidance, args.seed)[1])

    generate(0.5, 2)  # warm-up: allocator, oneDNN kernels, CLAP
    loaded = process_memory_mb("VmRSS")
    decode_times.clear()
    reset_peak_memory()
    start = time.perf_counter()
    generate(args.seconds, args.steps)
    wall = time.perf_counter() - start
    return {"wall": wall, "decode": sum(decode_times), "loaded_mb": loaded, "peak_mb": process_memory_mb("VmHWM")}


def measure(args) -> list[dict]:
    runs = {case: [] for case in CASES}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
           "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    for repeat in range(args.repeats):
        for system, scheduler, guidance in CASES:
            cmd = [sys.executable, __file__, "--child", "--model", str(args.model), "--seconds", str(args.seconds),
                   "--steps", str(args.steps), "--threads", str(args.threads), "--system", system,
                   "--scheduler", scheduler, "--guidance", str(guidance), "--seed", str(repeat)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise ValueError(f"{system}/{scheduler} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
            runs[(system, scheduler, guidance)].append(json.loads(done.stdout.strip().splitlines()[-1]))
    rows = []
    for (system, scheduler, guidance), results in runs.items():
        wall = statistics.median(r["wall"] for r in results)
        decode = statistics.median(r["decode"] for r in results)
        rows.append({"system": system, "scheduler": scheduler, "guidance": guidance, "seconds": args.seconds,
                     "steps": args.steps, "wall_s": wall, "decode_s": decode,
                     "unet_ms_per_step": 1000 * (wall - decode) / args.steps, "rtf": wall / args.seconds,
                     "loaded_mb": statistics.median(r["loaded_mb"] for r in results),
                     "peak_mb": statistics.median(r["peak_mb"] for r in results),
                     "walls": [r["wall"] for r in results]})  # fmt: skip
    reference = {(r["scheduler"], r["guidance"]): r["wall_s"] for r in rows if r["system"] == "reference loop"}
    for r in rows:
        ref = reference.get((r["scheduler"], r["guidance"]))
        r["ours_over_reference"] = r["wall_s"] / ref if ref and r["system"] == "ours" else None
    return rows


def report(rows: list[dict]) -> str:
    head = ("| system | scheduler | guidance | wall s | U-Net ms/step | decode s | RTF | loaded MB | peak MB | ours/ref |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        ratio = f"{r['ours_over_reference']:.2f}" if r["ours_over_reference"] else ""
        lines.append(f"| {r['system']} | {r['scheduler']} | {r['guidance']:g} | {r['wall_s']:.2f} | "
                     f"{r['unet_ms_per_step']:.0f} | {r['decode_s']:.2f} | {r['rtf']:.2f} | {r['loaded_mb']:.0f} | "
                     f"{r['peak_mb']:.0f} | {ratio} |")
    r0 = rows[0]
    lines.append(f"\n{r0['seconds']:g} s of audio, {r0['steps']} steps; medians of {len(r0['walls'])} runs, "
                 f"each in its own process.")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("pipelines/music-diffusion"))
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="also write the rows here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--system", default="ours", help=argparse.SUPPRESS)
    p.add_argument("--scheduler", default="dpm", choices=sorted(SCHEDULERS), help=argparse.SUPPRESS)
    p.add_argument("--guidance", type=float, default=3.0, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    from hf_musiccodec.metrics.benchmark_cli import run_benchmark

    if not args.model.is_dir():
        print(f"diffusion_speed: error: no pipeline folder at {args.model}", file=sys.stderr)
        return 2
    return run_benchmark("diffusion_speed", args, measure, report)


if __name__ == "__main__":
    sys.exit(main())
