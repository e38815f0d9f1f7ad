"""Train or fine-tune a codec: ``[accelerate launch] -m hf_musiccodec.training.train_codec --config F [--set k=v ...]``."""

from __future__ import annotations

import argparse
import logging

from .codec_config import CodecTrainingConfig


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="train_codec", description=__doc__)
    parser.add_argument("--config", help="YAML or JSON file of CodecTrainingConfig fields")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config fields")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from .codec_solver import train

    cfg = CodecTrainingConfig.load(args.config, args.set)
    print(f"model saved to {train(cfg)}")


if __name__ == "__main__":
    main()
