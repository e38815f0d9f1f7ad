"""DITTO on a latent diffusion pipeline: each objective's loss before and after optimising the initial
noise, and peak memory against the number of sampler steps (flat with gradient checkpointing).

Targets come from held-out music (test-split renders of ``--data``, never trained on), one clip per
row (a seeded sample), with the clip's caption as the prompt:

* intensity: the clip's loudness curve (dB); also its dynamics correlation with the output;
* melody: the clip's top-1 pitch classes; also the melody accuracy (chance 1/12);
* structure: the clip's chroma self-similarity matrix;
* inpainting: the clip with its middle second regenerated; outpainting: its first half continued;
* looping: 0.5 s overlap (the output's end continues into its start).

``before`` is the plain DDIM generation from the same noise (optimisation step 0), ``after`` the
generation from the optimised noise. Memory: one optimisation step of the intensity objective at
``--memory-steps`` sampler steps, each in a fresh process, with and without gradient
checkpointing (peak resident memory, Linux ``VmHWM``, above the loaded pipeline).

    PYTHONPATH=src python benchmarks/ditto_quality.py [--model pipelines/ditto] [--data data/music21] \\
        [--seconds 5] [--steps 10] [--optimization-steps 20] [--lr 0.05] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OBJECTIVES = ("intensity", "melody", "structure", "inpainting", "outpainting", "looping")


def load_pipe(folder, threads: int):
    import torch

    from hf_musiccodec import DittoPipeline

    torch.set_num_threads(threads)
    pipe = DittoPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe



def target_for(name: str, clip: np.ndarray, sr: int, seconds: float):
    from hf_musiccodec.metrics.melody_dynamics import dynamics_curve, melody_pitch_classes
    from hf_musiccodec.pipelines.ditto import StructureObjective

    if name == "intensity":
        return dynamics_curve(clip, sr)
    if name == "melody":
        return melody_pitch_classes(clip, sr)
    if name == "structure":
        return StructureObjective.from_audio(clip, sr)
    if name == "inpainting":
        middle = seconds / 2
        return dict(audio=clip, sampling_rate=sr, start_s=middle - 0.5, end_s=middle + 0.5)
    if name == "outpainting":
        return dict(audio=clip[: len(clip) // 2], sampling_rate=sr)
    return 0.5


def metric_for(name: str, clip: np.ndarray, output: np.ndarray, sr: int):
    from hf_musiccodec.metrics.melody_dynamics import dynamics_correlation, melody_accuracy

    if name == "intensity":
        return "dynamics corr", dynamics_correlation(clip, output, sr)
    if name == "melody":
        return "melody acc", melody_accuracy(clip, output, sr)
    return None, None


def objective_rows(args) -> list[dict]:
    import torch

    from hf_musiccodec.metrics.benchmark_cli import held_out_clips

    pipe = load_pipe(args.model, args.threads)
    clips = held_out_clips(args.data, len(OBJECTIVES), args.seconds, pipe.sampling_rate, args.seed)
    rows = []
    for i, name in enumerate(OBJECTIVES):
        caption, clip = clips[i]
        target = target_for(name, clip, pipe.sampling_rate, args.seconds)
        common = dict(objective=name, target=target, audio_length_in_s=args.seconds,
                      num_inference_steps=args.steps, guidance_scale=args.guidance, optimization_lr=args.lr)
        plain = pipe(caption, num_optimization_steps=0, generator=torch.Generator().manual_seed(args.seed + i),
                     **common)
        out = pipe(caption, num_optimization_steps=args.optimization_steps,
                   generator=torch.Generator().manual_seed(args.seed + i), **common)
        label, before = metric_for(name, clip, plain.audios[0, 0], pipe.sampling_rate)
        _, after = metric_for(name, clip, out.audios[0, 0], pipe.sampling_rate)
        rows.append({"objective": name, "prompt": caption, "loss_before": out.losses[0], "loss_after": out.losses[-1],
                     "loss_plain": plain.losses[0], "metric": label, "metric_before": before, "metric_after": after,
                     "seconds": out.seconds, "losses": out.losses})  # fmt: skip
    return rows


def memory_child(args) -> dict:
    import torch

    from hf_musiccodec.metrics.benchmark_cli import process_memory_mb, reset_peak_memory

    pipe = load_pipe(args.model, args.threads)
    common = dict(objective="intensity", target=[-30.0, -15.0], audio_length_in_s=args.seconds,
                  guidance_scale=args.guidance, num_optimization_steps=1, optimization_lr=args.lr,
                  gradient_checkpointing=args.checkpointing == "on")
    pipe("a chorale", num_inference_steps=2, generator=torch.Generator().manual_seed(0), **common)  # warm-up
    loaded = process_memory_mb("VmRSS")
    reset_peak_memory()
    start = time.perf_counter()
    pipe("a chorale", num_inference_steps=args.memory_child_steps, generator=torch.Generator().manual_seed(0), **common)
    return {"loaded_mb": loaded, "peak_mb": process_memory_mb("VmHWM"), "seconds": time.perf_counter() - start}


def memory_rows(args) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)}
    rows = []
    for steps in args.memory_steps:
        for mode in ("on", "off"):
            cmd = [sys.executable, __file__, "--memory-child", "--model", str(args.model), "--seconds",
                   str(args.seconds), "--threads", str(args.threads), "--guidance", str(args.guidance),
                   "--memory-child-steps", str(steps), "--checkpointing", mode]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise ValueError(f"memory run ({steps} steps, checkpointing {mode}) failed: "
                                 f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({"sampler_steps": steps, "checkpointing": mode, **result,
                         "above_loaded_mb": result["peak_mb"] - result["loaded_mb"]})
    return rows


def measure(args) -> dict:
    return {"objectives": objective_rows(args), "memory": memory_rows(args) if args.memory_steps else [],
            "settings": {k: v for k, v in vars(args).items() if not k.startswith("memory_child")}}


def report(result: dict) -> str:
    lines = ["| objective | loss before | loss after | change | metric | before | after | optimisation s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["objectives"]:
        change = 100 * (r["loss_after"] - r["loss_before"]) / abs(r["loss_before"]) if r["loss_before"] else 0.0
        metric = (r["metric"], f"{r['metric_before']:.3f}", f"{r['metric_after']:.3f}") if r["metric"] else ("", "", "")
        lines.append(f"| {r['objective']} | {r['loss_before']:.4g} | {r['loss_after']:.4g} | {change:+.0f} % | "
                     f"{metric[0]} | {metric[1]} | {metric[2]} | {r['seconds']:.0f} |")
    s = result["settings"]
    lines.append(f"\n{s['seconds']:g} s outputs, {s['steps']} DDIM steps, guidance {s['guidance']:g}, "
                 f"{s['optimization_steps']} Adam steps at lr {s['lr']:g}; one held-out clip per objective.")
    if result["memory"]:
        lines += ["", "| sampler steps | checkpointing | peak MB | above loaded MB | s per optimisation step |",
                  "|---|---|---|---|---|"]
        for r in result["memory"]:
            lines.append(f"| {r['sampler_steps']} | {r['checkpointing']} | {r['peak_mb']:.0f} | "
                         f"{r['above_loaded_mb']:.0f} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "pipelines" / "ditto")
    p.add_argument("--data", default=str(REPO / "data" / "music21"))
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--steps", type=int, default=10, help="DDIM steps of the sampler")
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--optimization-steps", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--memory-steps", type=int, nargs="*", default=[5, 10, 20, 40])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--memory-child-steps", type=int, default=10, help=argparse.SUPPRESS)
    p.add_argument("--checkpointing", default="on", choices=["on", "off"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args)))
        return 0
    from hf_musiccodec.metrics.benchmark_cli import run_benchmark

    if not args.model.is_dir():
        print(f"ditto_quality: error: no pipeline folder at {args.model}", file=sys.stderr)
        return 2
    return run_benchmark("ditto_quality", args, measure, report)


if __name__ == "__main__":
    sys.exit(main())
