#!/usr/bin/env python
"""Render music21 corpus scores to audio with FluidSynth (General MIDI soundfont).

One piece, exact settings (this is how the bundled demo clip is made):
    python scripts/render_music21.py --piece bach/bwv66.6 --instrument "string ensemble" \\
        --max-seconds 10 --sampling-rate 24000 --channels 1 \\
        --out src/hf_musiccodec/assets/bach_chorale_bwv66.6_24khz.flac

A training set: --num pieces x --renders-per-piece clips with seeded instruments (>= 20 GM
programs, named and mixed ensembles), tempo 50-200 BPM, all 12 tonics (24 keys), dynamics:
    nohup nice -n 19 python scripts/render_music21.py --num 1000 --renders-per-piece 3 \
        --out-dir data/music21 > render.log 2>&1 &
Resumable: re-run the same command (or a larger --num) and finished clips are skipped.

30 s clips at 24 kHz mono by default: 24 kHz is the codec family's rate, 30 s the training
segment of MusicGen-style models (long enough for tempo and key), and the GM render has no
meaningful stereo image.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from hf_musiccodec.data.music21_render import (
    DEFAULT_COLLECTIONS,
    DEFAULT_SOUNDFONT,
    GM_PROGRAMS,
    render_many,
    render_piece,
    sample_pieces,
    summarize_renders,
)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    one = p.add_argument_group("single piece")
    one.add_argument("--piece", help="corpus id, e.g. bach/bwv66.6 or essenFolksong/altdeu10#3")
    one.add_argument(
        "--instrument",
        action="append",
        choices=sorted(GM_PROGRAMS),
        help="GM instrument per part, top part first (repeat); default string ensemble",
    )
    one.add_argument("--tempo", type=float, help="quarter notes per minute (default: the score's)")
    one.add_argument("--transpose", type=int, default=0, help="semitones")
    one.add_argument("--out", type=Path, help="output audio file (.flac/.wav/.ogg)")
    many = p.add_argument_group("many pieces")
    many.add_argument("--num", type=int, help="number of pieces to sample from the corpus")
    many.add_argument("--collections", nargs="+", default=list(DEFAULT_COLLECTIONS))
    many.add_argument("--out-dir", type=Path, default=Path("data/music21"))
    many.add_argument("--renders-per-piece", type=int, default=3)
    many.add_argument("--seed", type=int, default=0)
    many.add_argument("--no-progress", action="store_true")
    many.add_argument("--workers", type=int, default=1, help="render processes (one per core)")
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument("--sampling-rate", type=int, default=24000)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--soundfont", default=DEFAULT_SOUNDFONT)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    if args.piece:
        if args.out is None:
            p.error("--piece needs --out")
        record = render_piece(
            args.piece,
            args.out,
            instruments=args.instrument,
            tempo_bpm=args.tempo,
            transpose=args.transpose,
            max_seconds=args.max_seconds,
            sampling_rate=args.sampling_rate,
            channels=args.channels,
            soundfont=args.soundfont,
        )
        print(json.dumps(record.to_dict(), indent=2))
        return 0
    if not args.num:
        p.error("give --piece or --num")
    start = time.time()
    pieces = sample_pieces(args.num, seed=args.seed, collections=args.collections)
    records = render_many(
        pieces,
        args.out_dir,
        renders_per_piece=args.renders_per_piece,
        seed=args.seed,
        max_seconds=args.max_seconds,
        sampling_rate=args.sampling_rate,
        channels=args.channels,
        soundfont=args.soundfont,
        progress=not args.no_progress,
        workers=args.workers,
    )
    summary = summarize_renders(records)
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"manifest: {len(records)} clips of {len(pieces) * args.renders_per_piece} planned, {summary['hours']:.2f} h, "
        f"{len(summary['instrument'])} instruments, {len(summary['key'])} keys; this run {time.time() - start:.0f} s "
        f"-> {args.out_dir / 'manifest.jsonl'}, summary.json"
    )
    return 0 if records else 1


if __name__ == "__main__":
    sys.exit(main())
