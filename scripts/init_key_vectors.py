#!/usr/bin/env python
"""Give a text-to-music pipeline data-driven key vectors (the start of stage 6, see
configs/text-to-music-key-vectors.yaml and hf_musiccodec.training.key_vectors).

    python scripts/init_key_vectors.py --model pipelines/text-to-music --out runs/text-to-music-key-vectors-init

The model needs a per-frame key input (a conditioner with ``key_condition`` and
``decoder_input_size``); the cache needs its conditions (keys). Writes a new pipeline folder
(atomically: a folder that is there is whole); bad input is one line and exit status 2.
"""

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a TextToMusicPipeline folder")
    p.add_argument("--out", required=True, help="the new pipeline folder (must not exist)")
    p.add_argument("--cache", default="data/cache/music21-train-music21codec", help="training token cache")
    p.add_argument("--norm", type=float, default=1.0, help="length of each vector (default 1.0)")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        if out.exists():
            raise ValueError(f"{out} exists: choose a new folder")
        if not (Path(args.model) / "model_index.json").is_file():
            raise ValueError(f"{args.model} is not a pipeline folder (no model_index.json)")
        import torch

        from hf_musiccodec import TextToMusicPipeline
        from hf_musiccodec.training.key_vectors import key_vectors_from_data
        from hf_musiccodec.utils.files import atomic_save_folder

        pipe = TextToMusicPipeline.from_pretrained(args.model)
        if not hasattr(pipe.conditioner, "key_input"):
            raise ValueError(f"{args.model}: its conditioner has no per-frame key input "
                             "(key_condition and decoder_input_size)")
        vectors = key_vectors_from_data(pipe.musicgen, args.cache, args.norm)
        with torch.no_grad():
            pipe.conditioner.key_input.weight.copy_(vectors)
        atomic_save_folder(out, pipe.save_pretrained)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
