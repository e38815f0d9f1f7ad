"""Does a codec keep pitch? Key, mode and per-frame pitch classes of music21 renders after a round trip.

    PYTHONPATH=src python benchmarks/codec_pitch.py                       # the LM's codec, 48 renders
    PYTHONPATH=src python benchmarks/codec_pitch.py --models pipelines/musiccodec-24khz-music21 runs/x/model \
        --bandwidths 1.5 6 --num 48 --seconds 10

On the first ``--seconds`` of ``--num`` renders of a split (their key comes from the score), for the
renders themselves and for each codec at each bandwidth (encode + decode, same input, one run):

* key / mode accuracy: the key estimate (``metrics.estimate_key``) against the score's key;
* melody agreement: Music ControlNet's melody accuracy of the decoded audio against the input
  (top pitch class per frame above middle C; 1/12 for unrelated audio);
* bass agreement: the same below middle C (4th-order low-pass at 261.2 Hz, 8192-point STFT so
  that a semitone near 65 Hz is resolved), over the frames where the input has bass energy.

A text-to-music LM trained on a codec's tokens cannot be heard to follow a key or a mode better than
the codec's row here. Medians are not used: accuracies are shares over all clips / frames.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RENDERS = "renders (no codec)"


def bass_pitch_classes(y: np.ndarray, sr: int, cutoff_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Top pitch class per frame below ``cutoff_hz`` and whether the frame has bass energy."""
    import librosa
    from scipy import signal

    sos = signal.butter(4, cutoff_hz, btype="lowpass", fs=sr, output="sos")
    low = signal.sosfilt(sos, y).astype(np.float32)
    spec = np.abs(librosa.stft(low, n_fft=8192, hop_length=1024)) ** 2
    chroma = librosa.feature.chroma_stft(S=spec, sr=sr, n_fft=8192, tuning=0.0)
    energy = spec.sum(axis=0)
    return chroma.argmax(axis=0), energy > 1e-3 * energy.max()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=[str(REPO / "pipelines" / "musiccodec-24khz-music21")])
    p.add_argument("--data", default=str(REPO / "data" / "music21"), help="render folder with manifest.jsonl")
    p.add_argument("--split", default="validation")
    p.add_argument("--num", type=int, default=48)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--bandwidths", nargs="+", type=float, default=[1.5, 6.0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)

    import mir_eval
    import torch

    from hf_musiccodec import MusicCodecModel
    from hf_musiccodec.audio import load_audio
    from hf_musiccodec.metrics import estimate_key
    from hf_musiccodec.metrics.melody_dynamics import MELODY_CUTOFF_HZ, melody_pitch_classes

    torch.set_num_threads(args.threads)
    manifest = Path(args.data) / "manifest.jsonl"
    if not manifest.is_file():
        print(f"error: no {manifest} (render the data first: scripts/render_music21.py)", file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("split") == args.split and r.get("key")][: args.num]
    if not rows:
        print(f"error: no rendered clips with a key in split {args.split!r}", file=sys.stderr)
        return 2
    codecs = {}
    for folder in args.models:
        try:
            codecs[folder] = MusicCodecModel.from_pretrained(folder).eval()
        except (OSError, ValueError) as e:
            print(f"error: cannot load codec {folder}: {e}", file=sys.stderr)
            return 2
    sr = next(iter(codecs.values())).config.sampling_rate
    systems = [(RENDERS, None, None)] + [(f"{folder} @ {bw:g} kbps", codec, bw)
                                         for folder, codec in codecs.items() for bw in args.bandwidths]
    scores = {name: {"key": [], "mode": [], "melody": [], "bass": []} for name, _, _ in systems}
    started = time.time()
    for row in rows:
        audio, _ = load_audio(Path(args.data) / row["path"], sampling_rate=sr)
        y = audio.mean(axis=0)[: int(args.seconds * sr)].astype(np.float32)
        # the input's pitch classes once per clip, compared with every system's
        melody_ref = melody_pitch_classes(y, sr)
        bass_ref, bass_on = bass_pitch_classes(y, sr, MELODY_CUTOFF_HZ)
        for name, codec, bandwidth in systems:
            if codec is None:
                z = y
            else:
                with torch.no_grad():
                    encoded = codec.encode(torch.from_numpy(y)[None, None], bandwidth=bandwidth)
                    z = codec.decode(encoded.audio_codes, encoded.audio_scales).audio_values[0, 0].numpy()[: y.size]
            key = estimate_key(z, sr)
            s = scores[name]
            s["key"].append(mir_eval.key.weighted_score(row["key"], key) == 1.0)
            s["mode"].append(key.split()[-1] == row["key"].split()[-1])
            melody = melody_pitch_classes(z, sr)  # Music ControlNet's melody accuracy against the input
            m = min(melody.size, melody_ref.size)
            s["melody"].append(float(np.mean(melody[:m] == melody_ref[:m])))
            bass, _ = bass_pitch_classes(z, sr, MELODY_CUTOFF_HZ)
            n = min(bass.size, bass_ref.size)
            s["bass"].extend((bass[:n] == bass_ref[:n])[bass_on[:n]])
    table = [{"system": name, **{k: float(np.mean(v)) for k, v in s.items()}} for name, s in scores.items()]
    print(f"{len(rows)} {args.split} renders x {args.seconds:g} s, {time.time() - started:.0f} s\n")
    print("| system | key acc | mode acc | melody agreement | bass agreement |")
    print("|---|---:|---:|---:|---:|")
    for r in table:
        same = r["system"] == RENDERS  # the input against itself: 1 by construction
        melody, bass = ("—", "—") if same else (f"{r['melody']:.3f}", f"{r['bass']:.3f}")
        print(f"| {r['system']} | {r['key']:.3f} | {r['mode']:.3f} | {melody} | {bass} |")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
