"""Peak memory of long files: the ``hf-musiccodec`` command line, and ``encode_long`` / ``decode_long``.

``cli`` (the numbers the README quotes): tiles the bundled Bach clip into files of ``--minutes``
(24 kHz mono FLAC and, with ``--stereo44``, a 44.1 kHz stereo FLAC that makes ``compress``
resample and mix channels), runs ``compress`` and ``decompress`` with the default codec under
``/usr/bin/time -v`` and prints each one's peak resident memory and wall time:

    nohup .venv/bin/python benchmarks/long_file_memory.py cli --minutes 30 120 --stereo44 > mem.txt &

``model``: writes a synthetic file (a mix of tones and noise) of ``--minutes`` at the codec's rate,
reads it back with soundfile, encodes and decodes it in windows of ``--chunk-seconds`` with a
full-size codec (random weights), writes the result, and prints the time and the peak resident
memory (``ru_maxrss``). Measure the whole process from outside as well:

    /usr/bin/time -v .venv/bin/python benchmarks/long_file_memory.py model --preset dac_44khz --minutes 10

``--verify-seconds S`` also checks, on the first S seconds, that the windowed result equals
whole-file ``encode``/``decode`` (codes identical, audio within 1e-4).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from hf_musiccodec import MusicCodecModel
from hf_musiccodec.codecs import MusicCodecConfig


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(path: str, seconds: float, sr: int, channels: int, seed: int = 0) -> None:
    """Tones that change every second plus noise, written block by block (never all in memory twice)."""
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", samplerate=sr, channels=channels, subtype="PCM_16") as f:
        block = sr * 10
        for start in range(0, int(seconds * sr), block):
            n = min(block, int(seconds * sr) - start)
            t = (start + np.arange(n)) / sr
            freq = 110 * 2 ** (np.floor(t) % 24 / 12)
            x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(n)
            f.write(np.repeat(x[:, None], channels, axis=1).astype(np.float32))


def tiled_clip(path: str, minutes: float, sampling_rate: int, channels: int) -> None:
    """The bundled clip repeated to ``minutes``, resampled and made stereo as asked, written block by block."""
    import soxr

    from hf_musiccodec.data import demo_clip_path

    clip, sr = sf.read(str(demo_clip_path()), dtype="float32")
    if sampling_rate != sr:
        clip = soxr.resample(clip, sr, sampling_rate)
    if channels == 2:  # two different channels, so that mixing them down is not trivial
        clip = np.stack([clip, 0.8 * np.roll(clip, 100)], axis=1)
    total, written = int(minutes * 60 * sampling_rate), 0
    with sf.SoundFile(path, "w", samplerate=sampling_rate, channels=channels, subtype="PCM_16", format="FLAC") as f:
        while written < total:
            piece = clip[: total - written]
            f.write(piece)
            written += len(piece)


def timed_command(argv: list[str]) -> tuple[float, float]:
    """Run ``argv`` under ``/usr/bin/time -v``: (peak RSS in MB, wall seconds)."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return int(peak.group(1)) / 1024, time.perf_counter() - start


def run_cli(args) -> None:
    cli_main = [sys.executable, "-m", "hf_musiccodec.cli.main"]
    inputs = [("24 kHz mono", 24_000, 1)] + ([("44.1 kHz stereo", 44_100, 2)] if args.stereo44 else [])
    print(f"{'input':<16} {'minutes':>7} {'command':<10} {'peak RSS MB':>11} {'wall s':>7}", flush=True)
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        for label, sr, channels in inputs:
            for minutes in args.minutes:
                src = Path(folder) / f"in_{sr}_{channels}_{minutes:g}.flac"
                tiled_clip(str(src), minutes, sr, channels)
                packed, out = src.with_suffix(".hfmc"), src.with_suffix(".wav")
                for command, argv in (("compress", [str(src), str(packed), "--bandwidth", str(args.bandwidth)]),
                                      ("decompress", [str(packed), str(out)])):
                    peak, wall = timed_command(cli_main + [command] + argv)
                    print(f"{label:<16} {minutes:>7g} {command:<10} {peak:>11.0f} {wall:>7.0f}", flush=True)
                for path in (src, packed, out):
                    path.unlink()


def run_model(args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = MusicCodecModel(MusicCodecConfig.from_preset(args.preset)).eval()
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.preset}: {params / 1e6:.1f} M parameters, {cfg.sampling_rate} Hz, hop {cfg.hop_length}; "
          f"RSS after building the model {rss_mb():.0f} MB", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        src, dst = os.path.join(folder, "in.wav"), os.path.join(folder, "out.wav")
        synthetic(src, args.minutes * 60, cfg.sampling_rate, cfg.audio_channels)
        audio, sr = sf.read(src, dtype="float32", always_2d=True)
        x = torch.from_numpy(audio.T.copy())[None]  # (1, channels, samples)
        del audio
        print(f"input: {x.shape[-1] / sr / 60:.1f} min, {x.numel() * 4 / 2**20:.0f} MB as float32; "
              f"RSS {rss_mb():.0f} MB", flush=True)

        if args.verify_seconds > 0:
            n = int(args.verify_seconds * sr)
            with torch.no_grad():
                ref = model.encode(x[..., :n])
                ref_audio = model.decode(ref.audio_codes, ref.audio_scales,
                                         last_frame_pad_length=ref.last_frame_pad_length).audio_values
            enc = model.encode_long(x[..., :n], chunk_seconds=args.chunk_seconds)
            dec = model.decode_long(enc.audio_codes, enc.audio_scales, last_frame_pad_length=enc.last_frame_pad_length,
                                    chunk_seconds=args.chunk_seconds).audio_values
            same = torch.equal(ref.audio_codes, enc.audio_codes)
            diff = (dec - ref_audio).abs().max().item()
            print(f"verify on {args.verify_seconds:g} s: codes identical {same}, max |audio diff| {diff:.2e}", flush=True)
            del ref, ref_audio, enc, dec

        t0 = time.perf_counter()
        enc = model.encode_long(x, chunk_seconds=args.chunk_seconds)
        t1 = time.perf_counter()
        print(f"encode_long: {t1 - t0:.0f} s ({(t1 - t0) / (x.shape[-1] / sr):.2f} x real time), codes "
              f"{tuple(enc.audio_codes.shape)}; RSS {rss_mb():.0f} MB, peak so far {peak_mb():.0f} MB", flush=True)
        dec = model.decode_long(enc.audio_codes, enc.audio_scales, last_frame_pad_length=enc.last_frame_pad_length,
                                chunk_seconds=args.chunk_seconds).audio_values
        t2 = time.perf_counter()
        print(f"decode_long: {t2 - t1:.0f} s ({(t2 - t1) / (x.shape[-1] / sr):.2f} x real time), audio "
              f"{tuple(dec.shape)}; RSS {rss_mb():.0f} MB, peak so far {peak_mb():.0f} MB", flush=True)
        sf.write(dst, dec[0].T.numpy(), sr, subtype="PCM_16")
    print(f"peak RSS (ru_maxrss): {peak_mb():.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("cli", help="peak memory of hf-musiccodec compress / decompress (default codec)")
    p.add_argument("--minutes", type=float, nargs="+", default=[30.0, 120.0])
    p.add_argument("--stereo44", action="store_true", help="also a 44.1 kHz stereo input")
    p.add_argument("--bandwidth", type=float, default=6.0)
    p.add_argument("--workdir", help="folder for the temporary audio (default: the system's)")
    p.set_defaults(run=run_cli)
    p = sub.add_parser("model", help="peak memory of encode_long / decode_long with a full-size preset")
    p.add_argument("--preset", default="dac_44khz")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--chunk-seconds", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--verify-seconds", type=float, default=0.0)
    p.set_defaults(run=run_model)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
