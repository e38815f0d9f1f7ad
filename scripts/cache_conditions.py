#!/usr/bin/env python
"""Cache melody tokens and CLAP audio embeddings for every item of a latent cache (step 2b).

    python scripts/cache_conditions.py --cache data/cache/music21-train --clap pipelines/music-clap
    python scripts/cache_conditions.py --cache data/cache/music21-train            # melody only
    python scripts/cache_conditions.py --cache DIR --clap pipelines/music-clap --hop 2.5

Writes ``<cache>/conditions.safetensors`` (see hf_musiccodec.data.condition_cache): one melody
token per codec frame, and with ``--clap`` one embedding per ``clip_seconds`` window every
``--hop`` seconds. Re-running with the same cache, CLAP model and hop does nothing; a rebuilt
latent cache makes the file stale and it is recomputed.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

from hf_musiccodec.data.condition_cache import ConditionCache, build_condition_cache
from hf_musiccodec.data.latent_cache import INDEX_NAME


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, required=True, help="a finished latent cache folder (cache_latents.py)")
    p.add_argument("--clap", type=Path, help="a MusicClap folder (model + processor); without it: melody only")
    p.add_argument("--hop", type=float, default=5.0, help="seconds between CLAP window starts (default 5)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    if not (args.cache / INDEX_NAME).is_file():
        return fail(f"{args.cache} has no {INDEX_NAME}: not a finished latent cache")
    if not args.hop > 0:
        return fail(f"--hop must be positive, got {args.hop}")
    model = processor = None
    if args.clap is not None:
        if not (args.clap / "config.json").is_file():
            return fail(f"{args.clap} has no config.json: not a model folder")
        from transformers import AutoModel, AutoProcessor

        import hf_musiccodec.conditioning  # noqa: F401  (registers MusicClap with the Auto classes)

        model = AutoModel.from_pretrained(args.clap).eval()
        if not hasattr(model, "get_audio_features") or not hasattr(model.config, "clip_seconds"):
            return fail(f"{args.clap} is a {type(model).__name__}, not a MusicClap model")
        processor = AutoProcessor.from_pretrained(args.clap)
        model.to("cuda" if torch.cuda.is_available() else "cpu")

    started = time.perf_counter()
    build_condition_cache(args.cache, model, processor, clap_hop_seconds=args.hop, progress=not args.no_progress)
    seconds = time.perf_counter() - started
    cache = ConditionCache(args.cache)
    frames = sum(cache.num_frames(i) for i in range(len(cache)))
    clap = f", CLAP dim {cache.clap_dim} every {cache.clap_hop_seconds:g} s" if cache.has_clap else ", no CLAP"
    print(f"{len(cache)} items, {frames} melody frames{clap} -> {args.cache / 'conditions.safetensors'} "
          f"({seconds:.1f} s, {len(cache) / max(seconds, 1e-9):.2f} items/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
