#!/usr/bin/env python
"""How evenly a latent cache uses each codebook: what a token LM trained on it will see.

    PYTHONPATH=src python benchmarks/token_usage.py --cache data/cache/music21-train-music21codec [--codebooks 2]

Per codebook, over every frame of every item: the share of the most frequent token (and which it
is), the share of the five most frequent, the perplexity (exp of the entropy, in tokens: the
codebook size if all are used alike) and how many codes occur at all. A codec that maps much of
its data to one "quiet" token shows a large top-1 share and a small perplexity: an LM trained on
it learns to repeat that token (the first text-to-music run did). Bad input is one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def token_usage(codes: list[np.ndarray], codebook_size: int) -> list[dict]:
    """One dict per codebook from items of shape (codebooks, frames) with ids below ``codebook_size``."""
    rows = []
    for k in range(codes[0].shape[0]):
        counts = sum(np.bincount(c[k].astype(np.int64), minlength=codebook_size) for c in codes)
        p = counts / counts.sum()
        order = np.argsort(counts)[::-1]
        nonzero = p[p > 0]
        rows.append({"codebook": k, "frames": int(counts.sum()), "top_token": int(order[0]),
                     "top1_share": float(p[order[0]]), "top5_share": float(p[order[:5]].sum()),
                     "perplexity": float(np.exp(-(nonzero * np.log(nonzero)).sum())),
                     "codes_used": int((counts > 0).sum())})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True, help="a finished latent cache folder")
    parser.add_argument("--codebooks", type=int, default=None, help="the first N codebooks (default: all)")
    args = parser.parse_args(argv)

    from hf_musiccodec.data.latent_cache import LatentCacheDataset

    try:
        dataset = LatentCacheDataset(args.cache)
    except (OSError, ValueError) as e:
        print(f"token_usage: error: {args.cache}: {e}", file=sys.stderr)
        return 2
    if not dataset.index.get("has_codes"):
        print(f"token_usage: error: {args.cache} holds latents only, no codes", file=sys.stderr)
        return 2
    codes = [dataset[i]["codes"].numpy()[: args.codebooks] for i in range(len(dataset))]
    size = int(max(int(c.max()) for c in codes)) + 1  # the shares and the perplexity need no more
    print(f"{args.cache}: {len(codes)} items, {sum(c.shape[1] for c in codes)} frames, codec {dataset.index['codec']}")
    print(f"{'codebook':>8} {'top token':>9} {'top-1 %':>8} {'top-5 %':>8} {'perplexity':>10} {'codes used':>10}")
    for row in token_usage(codes, size):
        print(f"{row['codebook']:>8} {row['top_token']:>9} {100 * row['top1_share']:>8.1f} "
              f"{100 * row['top5_share']:>8.1f} {row['perplexity']:>10.1f} {row['codes_used']:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
