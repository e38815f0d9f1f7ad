#!/usr/bin/env python
"""Encode a captioned dataset once with a codec: step 2 of the pipeline (codes + latents cache).

    python scripts/cache_latents.py --codec pipelines/codec --source music21:data/music21 \\
        --split train --out data/cache/music21-train
    # several processes (each takes its shards; CPU too):
    accelerate launch --multi_gpu --num_processes 2 scripts/cache_latents.py ...

Sources: ``music21:<render dir>`` and ``debian:<data root>`` (the captioned DatasetDicts of
hf_musiccodec.data.captioned), or ``manifest:<manifest.jsonl>`` (any manifest; its ``split``
column selects). Re-running resumes: finished shards are kept; a cache made by another codec,
other weights or other settings is rebuilt.
"""

import argparse
import logging
import sys
from pathlib import Path

from hf_musiccodec.codecs import MusicCodecModel
from hf_musiccodec.data.captioned import debian_caption_dataset, music21_caption_dataset
from hf_musiccodec.data.latent_cache import LATENT_DTYPES, build_latent_cache
from hf_musiccodec.data.manifest import read_manifest_records
from hf_musiccodec.utils.launch import new_accelerator


def source_rows(source: str, split: str) -> list[dict]:
    kind, _, location = source.partition(":")
    if kind == "manifest":
        rows = read_manifest_records(location)
        return [r for r in rows if split == "all" or r.get("split") == split]
    builders = {"music21": music21_caption_dataset, "debian": debian_caption_dataset}
    if kind not in builders:
        raise SystemExit(f"unknown source kind {kind!r}: use music21:, debian: or manifest:")
    dd = builders[kind](location)
    return [row for name in dd if split in ("all", name) for row in dd[name]]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codec", required=True, help="a MusicCodecModel folder (from_pretrained)")
    p.add_argument("--source", required=True, help="music21:<dir>, debian:<dir> or manifest:<file>")
    p.add_argument("--split", default="train", help="train, validation, test or all")
    p.add_argument("--out", type=Path, required=True, help="cache folder")
    p.add_argument("--bandwidth", type=float, help="kbps (default: the codec's highest)")
    p.add_argument("--segment-seconds", type=float, help="cut files into windows of this length")
    p.add_argument("--shard-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--latent-dtype", default="float32", choices=sorted(LATENT_DTYPES))
    p.add_argument("--no-latents", action="store_true", help="cache codes only")
    p.add_argument("--normalize", choices=["loudness", "peak"],
                   help="level every item first (loudness: -20 LUFS); for token LMs on a low-bitrate codec")
    p.add_argument("--max-shards", type=int, help="stop after this many shards per process (resume later)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    model = MusicCodecModel.from_pretrained(args.codec).eval()
    accelerator = new_accelerator()
    index = build_latent_cache(
        model,
        source_rows(args.source, args.split),
        args.out,
        bandwidth=args.bandwidth,
        segment_seconds=args.segment_seconds,
        shard_size=args.shard_size,
        batch_size=args.batch_size,
        latent_dtype=args.latent_dtype,
        store_latents=not args.no_latents,
        max_shards=args.max_shards,
        normalize=args.normalize,
        progress=not args.no_progress,
        accelerator=accelerator,
    )
    if not accelerator.is_main_process:
        return 0  # one summary, from the main process
    if index is None:
        print(f"stopped early: run again to finish {args.out}")
        return 0
    print(f"{index['num_items']} items in {index['num_shards']} shards, key {index['key']} -> {args.out}"
          f" ({accelerator.num_processes} processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
