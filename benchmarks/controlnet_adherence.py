"""Music ControlNet adherence: how well generations follow the melody, dynamics and rhythm of held-out
references, next to the same model without its control branch (chance level), with FAD and CLAP score.

For each of ``--num-clips`` test-split renders of ``--data`` (never trained on; a seeded sample),
the controls are extracted from the first ``--seconds`` of the clip (``pipe.extract_controls``) and
the pipeline generates from the clip's caption:

* **ControlNet (all controls)**: melody, dynamics and rhythm given over the whole clip;
* **ControlNet, melody only** / **dynamics only** / **rhythm only**: one control at a time;
* **no control**: the same prompts and seeds with no control (the base latent diffusion model);
* **DITTO** (``--ditto-clips``, default the first 4): the same base model with no control branch,
  its initial noise optimised toward the reference's melody and loudness (``--ditto-steps`` Adam
  steps through ``--ditto-sampler-steps`` DDIM steps), next to ControlNet given those two controls
  on the same clips.

Columns: melody accuracy (share of frames whose top-1 high-passed chroma pitch class matches the
reference's; 1/12 is chance), dynamics correlation (Pearson, dB curves), beat F1 (librosa beats of
both, 70 ms window, as Music ControlNet), FAD (clap) against the references, CLAP score with the prompts.

    PYTHONPATH=src python benchmarks/controlnet_adherence.py --model runs/music-controlnet/model \\
        [--data data/music21] [--num-clips 16] [--seconds 6] [--steps 25] [--threads 2] [--ditto-clips 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ROWS = [("ControlNet (all controls)", ("melody", "dynamics", "rhythm")), ("ControlNet, melody only", ("melody",)),
        ("ControlNet, dynamics only", ("dynamics",)), ("ControlNet, rhythm only", ("rhythm",)), ("no control", ())]


def measure(args) -> dict:
    import torch

    from hf_musiccodec import MusicControlNetPipeline
    from hf_musiccodec.metrics import (
        ClapAudioEmbedding,
        beat_f1,
        clap_score,
        detect_beats,
        dynamics_correlation,
        embed_audio,
        frechet_distance,
        melody_accuracy,
    )
    from hf_musiccodec.metrics.benchmark_cli import held_out_clips
    from hf_musiccodec.pipelines.pipeline_utils import clap_text_embeddings

    torch.set_num_threads(args.threads)
    pipe = MusicControlNetPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    sr = pipe.sampling_rate
    clips = held_out_clips(args.data, args.num_clips, args.seconds, sr, args.seed)
    embedding = ClapAudioEmbedding(pipe.clap, pipe.clap_processor)
    reference_embeddings = embed_audio([c for _, c in clips], sr, embedding)
    text = clap_text_embeddings(pipe.clap, pipe.clap_processor, [p for p, _ in clips], "cpu").numpy()
    # what every row compares against, computed once per clip
    reference_controls = [pipe.extract_controls(reference, sr) for _, reference in clips]
    reference_beats = [detect_beats(reference, sr) for _, reference in clips]

    def score(label, controls, chosen, generate) -> dict:
        started = time.perf_counter()
        melody, dynamics, beats, outputs = [], [], [], []
        for k in chosen:
            prompt, reference = clips[k]
            audio = generate(k, prompt, reference_controls[k])
            outputs.append(audio)
            melody.append(melody_accuracy(reference, audio, sr))
            try:
                dynamics.append(dynamics_correlation(reference, audio, sr))
            except ValueError:  # a constant curve (silence): no correlation
                dynamics.append(0.0)
            beats.append(beat_f1(reference_beats[k], detect_beats(audio, sr)) if reference_beats[k].size else np.nan)
        generated = embed_audio(outputs, sr, embedding)  # one CLAP row per clip
        return {
            "row": label, "controls": list(controls), "n": len(chosen),
            "melody_accuracy": float(np.mean(melody)), "dynamics_correlation": float(np.mean(dynamics)),
            "beat_f1": float(np.nanmean(beats)),
            "fad_clap": frechet_distance(generated, reference_embeddings[list(chosen)]),
            "clap_score": clap_score(text[list(chosen)], generated),
            "seconds": time.perf_counter() - started,
        }  # fmt: skip

    def controlnet(controls):
        def generate(k, prompt, extracted):
            given = {name: getattr(extracted, name) for name in controls}
            return pipe(prompt, audio_length_in_s=args.seconds, num_inference_steps=args.steps, guidance_scale=args.guidance,
                        controlnet_conditioning_scale=args.scale, generator=torch.Generator().manual_seed(args.seed + k),
                        **given).audios[0, 0]
        return generate

    results = [score(label, controls, range(len(clips)), controlnet(controls)) for label, controls in ROWS]
    if args.ditto_clips:
        # DITTO on the same base model (no control branch), toward the same references' melody and
        # loudness, next to ControlNet given those two controls on the same clips
        from hf_musiccodec import DittoPipeline

        parts = {k: v for k, v in pipe.components.items() if k != "controlnet"}
        ditto = DittoPipeline(**parts, latent_mean=pipe.config.latent_mean, latent_std=pipe.config.latent_std)
        ditto.set_progress_bar_config(disable=True)

        def optimised(k, prompt, extracted):
            return ditto(prompt, objective=["melody", "intensity"],
                         target={"melody": extracted.melody, "intensity": extracted.dynamics},
                         audio_length_in_s=args.seconds, guidance_scale=args.guidance, num_inference_steps=args.ditto_sampler_steps,
                         num_optimization_steps=args.ditto_steps, generator=torch.Generator().manual_seed(args.seed + k)).audios[0, 0]

        chosen = range(min(args.ditto_clips, len(clips)))
        results.append(score(f"ControlNet (melody + dynamics), first {len(chosen)} clips", ("melody", "dynamics"), chosen,
                             controlnet(("melody", "dynamics"))))
        results.append(score(f"DITTO (melody + intensity, {args.ditto_steps} steps), same clips", ("melody", "dynamics"),
                             chosen, optimised))
    return {"rows": results, "settings": vars(args) | {"model": str(args.model)}}


def report(result: dict) -> str:
    lines = ["| row | n | melody acc ↑ | dynamics corr ↑ | beat F1 ↑ | FAD (clap) ↓ | CLAP score ↑ |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['row']} | {r['n']} | {r['melody_accuracy']:.3f} | {r['dynamics_correlation']:.3f} | "
                     f"{r['beat_f1']:.3f} | {r['fad_clap']:.3f} | {r['clap_score']:.3f} |")
    s = result["settings"]
    lines.append(f"\n{s['num_clips']} held-out test clips of {s['seconds']:g} s, {s['steps']} steps, guidance "
                 f"{s['guidance']:g}, ControlNet scale {s.get('scale', 1.0):g}; melody chance 1/12 = 0.083; FAD against the references themselves (few clips: "
                 f"compare rows, not absolute values)." + (f" DITTO: {s['ditto_steps']} Adam steps through {s['ditto_sampler_steps']} "
                 f"DDIM steps." if s.get("ditto_clips") else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "pipelines" / "music-controlnet")
    p.add_argument("--data", default=str(REPO / "data" / "music21"))
    p.add_argument("--num-clips", type=int, default=16)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--scale", type=float, default=1.0, help="controlnet_conditioning_scale")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ditto-clips", type=int, default=4, help="also DITTO on this many of the clips (0: not)")
    p.add_argument("--ditto-steps", type=int, default=20, help="DITTO's optimisation steps")
    p.add_argument("--ditto-sampler-steps", type=int, default=10, help="DITTO's DDIM steps (optimised through)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    from hf_musiccodec.metrics.benchmark_cli import run_benchmark

    if not args.model.is_dir():
        print(f"controlnet_adherence: error: no pipeline folder at {args.model}", file=sys.stderr)
        return 2
    return run_benchmark("controlnet_adherence", args, measure, report)


if __name__ == "__main__":
    sys.exit(main())
