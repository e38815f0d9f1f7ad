"""The README's main job: compress and decompress a music clip with a codec, and report.

For each bandwidth it writes the compressed bytes (the ``.hfmc`` format), decodes them, prints
the real bitrate, the compression ratio against 16-bit PCM, the reconstruction error and the
speed, and writes the decoded audio.
"""

from __future__ import annotations

import time
from pathlib import Path

from .codec_commands import load_codec


def _kbps(value: float) -> str:
    return f"{value:g}"


def run(args) -> int:
    import torch

    from ..audio.io import load_audio, save_audio
    from ..codecs.file_format import CompressedAudio, decode_waveform, encode_waveform
    from ..data import demo_clip_path
    from ..metrics import mel_distance, si_sdr

    codec = load_codec(args.model)
    cfg = codec.config
    source = Path(args.input) if args.input else demo_clip_path()
    audio, sr = load_audio(source, sampling_rate=cfg.sampling_rate, channels=cfg.audio_channels)
    duration = audio.shape[-1] / sr
    bandwidths = [args.bandwidth] if args.bandwidth is not None else list(cfg.target_bandwidths)
    output = Path(args.output) if args.output else Path("outputs") / f"{source.stem}_decoded.wav"
    output.parent.mkdir(parents=True, exist_ok=True)
    pcm_bytes = audio.size * 2
    print(f"codec: {getattr(codec, 'name_or_path', '') or cfg.model_type} ({cfg.sampling_rate} Hz, "
          f"{cfg.audio_channels} ch, {cfg.frame_rate:g} frames/s, {sum(p.numel() for p in codec.parameters()) / 1e6:.2f} M parameters)")
    print(f"input: {source} ({duration:.2f} s)")
    print(f"{'kbps':>6} {'bytes':>7} {'real kbps':>9} {'ratio':>6} {'mel dist':>8} {'SI-SDR dB':>9} {'enc xRT':>8} {'dec xRT':>8}  output")
    for i, bandwidth in enumerate(bandwidths):
        with torch.inference_mode():
            start = time.perf_counter()
            data = encode_waveform(codec, audio, bandwidth).to_bytes()
            encode_seconds = time.perf_counter() - start
            start = time.perf_counter()
            decoded = decode_waveform(codec, CompressedAudio.from_bytes(data))[0]
            decode_seconds = time.perf_counter() - start
        path = output if i == len(bandwidths) - 1 else output.with_name(f"{output.stem}_{_kbps(bandwidth)}kbps{output.suffix}")
        save_audio(path, decoded, sr, protect=[source])
        print(f"{_kbps(bandwidth):>6} {len(data):>7} {len(data) * 8 / duration / 1000:>9.3f} {pcm_bytes / len(data):>6.0f} "
              f"{mel_distance(audio, decoded, sr):>8.3f} {si_sdr(audio, decoded):>9.2f} "
              f"{duration / encode_seconds:>8.1f} {duration / decode_seconds:>8.1f}  {path}")
    return 0
