"""Train the CLAP-style MusicClap model.

    [accelerate launch] -m hf_musiccodec.training.train_clap --config F [--set k=v ...]
    python -m hf_musiccodec.training.train_clap prepare --renders DIR --out data/clap

``prepare`` writes ``train/validation/test.jsonl`` from a music21 render folder with
``hf_musiccodec.data.captioned.music21_caption_dataset`` (train and validation captions from the
training phrase bank, test captions from the held-out bank). Test rows also get
``captions_train_style``: the same clips captioned with the training bank, so the evaluation can
separate new wording from new clips.

The released model's config is ``pipelines/music-clap/train.yaml``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .base_solver import command_line
from .clap_solver import ClapSolver


def prepare(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="train_clap prepare", description="captioned JSONL splits for MusicClap")
    parser.add_argument("--renders", required=True, help="render folder with manifest.jsonl")
    parser.add_argument("--out", default="data/clap")
    parser.add_argument("--captions-per-item", type=int, default=8, help="phrasings per train/validation clip")
    parser.add_argument("--test-captions-per-item", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from hf_musiccodec.data.captioned import music21_caption_dataset
    from hf_musiccodec.data.captions import make_captions

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = music21_caption_dataset(args.renders, captions_per_item=args.captions_per_item, seed=args.seed)
    test = music21_caption_dataset(args.renders, captions_per_item=args.test_captions_per_item, seed=args.seed)["test"]
    test = test.map(lambda r: {"captions_train_style": make_captions(r, args.test_captions_per_item, args.seed,
                                                                     "train", item_id=r["render_id"])})
    for split, data in (("train", ds["train"]), ("validation", ds["validation"]), ("test", test)):
        data.to_json(out / f"{split}.jsonl")
        hours = sum(data["duration"]) / 3600
        print(f"{split}: {len(data)} clips, {hours:.2f} h -> {out / f'{split}.jsonl'}")


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["prepare"]:
        prepare(argv[1:])
        return
    command_line(ClapSolver, argv, prog="train_clap", description=__doc__)


if __name__ == "__main__":
    main()
