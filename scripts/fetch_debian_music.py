#!/usr/bin/env python
"""Fetch free-licence game soundtracks from Debian and write data/debian/manifest.jsonl.

    python scripts/fetch_debian_music.py                         # wesnoth-1.16-music (2 h)
    python scripts/fetch_debian_music.py --packages wesnoth-1.16-music ufoai-music warzone2100-music
    python scripts/fetch_debian_music.py --list

Needs Debian's apt-get and dpkg. The audio stays under data/ (git-ignored).
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from hf_musiccodec.data.debian_music import DEFAULT_DATA_ROOT, DEFAULT_PACKAGES, PACKAGES, fetch_debian_music, summarize


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--packages", nargs="+", default=list(DEFAULT_PACKAGES), choices=sorted(PACKAGES))
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-duration", type=float, default=10.0, help="skip shorter files (jingles, effects)")
    p.add_argument("--drop-debs", action="store_true", help="delete the downloaded .deb files afterwards")
    p.add_argument("--list", action="store_true", help="list the known packages and exit")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.list:
        for pkg in PACKAGES.values():
            print(f"{pkg.name:22s} {pkg.license:70s} {pkg.description}")
        return 0
    ds = fetch_debian_music(
        args.packages,
        args.data_root,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        min_duration=args.min_duration,
        keep_debs=not args.drop_debs,
    )
    stats = summarize(ds.to_list())
    print(json.dumps(stats, indent=2))
    print(f"{len(ds)} tracks, {sum(ds['duration']) / 3600:.2f} h -> {args.data_root / 'manifest.jsonl'}")
    return 0 if len(ds) else 1


if __name__ == "__main__":
    sys.exit(main())
