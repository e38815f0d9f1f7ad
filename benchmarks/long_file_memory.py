"""Peak memory of encoding and decoding a long file with ``encode_long`` / ``decode_long``.

Writes a synthetic file (a mix of tones and noise) of ``--minutes`` at the codec's rate,
reads it back with soundfile, encodes and decodes it in windows of ``--chunk-seconds`` with a
full-size codec (random weights), writes the result, and prints the time and the peak resident
memory (``ru_maxrss``). Measure the whole process from outside as well:

    /usr/bin/time -v .venv/bin/python benchmarks/long_file_memory.py --preset dac_44khz --minutes 10

``--verify-seconds S`` also checks, on the first S seconds, that the windowed result equals
whole-file ``encode``/``decode`` (codes identical, audio within 1e-4).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dac_44khz")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--chunk-seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--verify-seconds", type=float, default=0.0)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
