#!/usr/bin/env python
"""Extract Music ControlNet's controls (melody, dynamics, rhythm) of every item of a latent cache (step 2c).

    python scripts/cache_controls.py --cache data/cache/music21-train-music21codec

Writes ``<cache>/controls.safetensors`` (see hf_musiccodec.data.control_cache), with the same
extraction the pipeline applies to a reference (``MusicControlNetPipeline.extract_controls``).
Re-running with the same cache does nothing; a rebuilt latent cache makes the file stale.
"""

import argparse
import logging
import sys

from hf_musiccodec.data.control_cache import CONTROLS_NAME, build_control_cache


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", required=True, help="a finished latent cache folder")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        build_control_cache(args.cache, progress=not args.no_progress)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"-> {args.cache}/{CONTROLS_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
