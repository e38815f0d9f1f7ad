#!/usr/bin/env python
"""Give a text-to-music pipeline the decoder of a codec fine-tuned on the same codes.

    python scripts/replace_lm_codec_decoder.py --model pipelines/text-to-music \
        --codec runs/musiccodec-24khz-music21-pitch/model --out runs/text-to-music-pitch-decoder

The codec must be the LM's codec with only its decoder trained (``frozen: [encoder, quantizer]``
in its training config, e.g. configs/musiccodec-24khz-music21-pitch.yaml): the LM's tokens stay
the same and sound as the new decoder renders them. Writes a new pipeline folder atomically (a
folder that is there is whole); bad input is one line and exit status 2.
"""

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a TextToMusicPipeline folder")
    p.add_argument("--codec", required=True, help="a MusicCodecModel folder (the LM's codec, decoder fine-tuned)")
    p.add_argument("--out", required=True, help="the new pipeline folder (must not exist)")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        if out.exists():
            raise ValueError(f"{out} exists: choose a new folder")
        if not (Path(args.model) / "model_index.json").is_file():
            raise ValueError(f"{args.model} is not a pipeline folder (no model_index.json)")
        if not (Path(args.codec) / "config.json").is_file():
            raise ValueError(f"{args.codec} is not a codec folder (no config.json)")
        from hf_musiccodec import MusicCodecModel, TextToMusicPipeline
        from hf_musiccodec.pipelines.text_to_music.modeling import replace_codec_decoder
        from hf_musiccodec.utils.files import atomic_save_folder

        pipe = TextToMusicPipeline.from_pretrained(args.model)
        replace_codec_decoder(pipe.musicgen, MusicCodecModel.from_pretrained(args.codec))
        atomic_save_folder(out, pipe.save_pretrained)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
