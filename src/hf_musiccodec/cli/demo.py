"""The README's main job: compress and decompress a music clip with a codec, and report.

For each bandwidth it writes the compressed bytes (the ``.hfmc`` format), decodes them, prints
the real bitrate, the compression ratio against 16-bit PCM, the reconstruction error and the
speed, and writes the decoded audio. Everything runs block by block (reading, resampling,
encoding, decoding, comparing, writing), so memory does not grow with the input's length.
"""

from __future__ import annotations

import time
from pathlib import Path

from .codec_commands import load_codec

# Metrics are computed on segments of this length and averaged, weighted by length (a clip up to
# this long is one segment: the metrics of the whole clip).
METRIC_SEGMENT_SECONDS = 30.0


def _kbps(value: float) -> str:
    return f"{value:g}"


class Comparison:
    """Mel distance and SI-SDR of a reconstruction against its reference, fed segment by segment
    (``(channels, n)`` arrays) and averaged over segments weighted by their length."""

    def __init__(self, sampling_rate: int):
        self.sampling_rate = sampling_rate
        self.samples = 0
        self.mel = self.sdr = self.power = 0.0

    def add(self, reference, estimate) -> None:
        import numpy as np

        from ..metrics import mel_distance, si_sdr

        n = reference.shape[-1]
        self.samples += n
        self.mel += n * float(mel_distance(reference, estimate, self.sampling_rate))
        self.sdr += n * float(si_sdr(reference, estimate))
        self.power += float(np.sum(np.mean(np.square(reference, dtype=np.float64), axis=-1))) * n

    @property
    def mel_distance(self) -> float:
        return self.mel / self.samples

    @property
    def si_sdr(self) -> float:
        return self.sdr / self.samples

    @property
    def rms_db(self) -> float:
        """The reference's level as ``audio.io.rms_db`` measures it (power summed over channels)."""
        import math

        power = self.power / self.samples
        return 10 * math.log10(power) if power > 0 else -math.inf


def compared(references, estimates, comparison: Comparison, segment: int):
    """Yield the ``(channels, n)`` estimate blocks, regrouped into ``segment``-sample segments, after
    adding each with its reference segment to ``comparison``."""
    from ..audio.io import rechunk

    for reference, estimate in zip(rechunk(references, segment), rechunk(estimates, segment)):
        comparison.add(reference, estimate)
        yield estimate


def timed(blocks, clock: list):
    """``blocks`` unchanged, adding the seconds spent producing them to ``clock[0]``."""
    blocks = iter(blocks)
    while True:
        start = time.perf_counter()
        block = next(blocks, None)
        clock[0] += time.perf_counter() - start
        if block is None:
            return
        yield block


def run(args) -> int:
    from ..audio.io import read_audio_blocks, write_audio_blocks
    from ..codecs.file_format import CompressedAudio, decode_audio_blocks, encode_audio_blocks
    from ..data import demo_clip_path

    codec = load_codec(args.model)
    cfg = codec.config
    sr, channels = cfg.sampling_rate, cfg.audio_channels
    source = Path(args.input) if args.input else demo_clip_path()

    def original():
        return read_audio_blocks(source, sampling_rate=sr, channels=channels)

    original()  # a missing or unreadable input fails before any work
    bandwidths = [args.bandwidth] if args.bandwidth is not None else list(cfg.target_bandwidths)
    for bandwidth in bandwidths:
        codec.num_quantizers_for_bandwidth(bandwidth)
    output = Path(args.output) if args.output else Path("outputs") / f"{source.stem}_decoded.wav"
    output.parent.mkdir(parents=True, exist_ok=True)
    print(f"codec: {getattr(codec, 'name_or_path', '') or cfg.model_type} ({sr} Hz, "
          f"{channels} ch, {cfg.frame_rate:g} frames/s, {sum(p.numel() for p in codec.parameters()) / 1e6:.2f} M parameters)")
    header = f"{'kbps':>6} {'bytes':>7} {'real kbps':>9} {'ratio':>6} {'mel dist':>8} {'SI-SDR dB':>9} {'enc xRT':>8} {'dec xRT':>8}  output"
    for i, bandwidth in enumerate(bandwidths):
        reading, decoding = [0.0], [0.0]
        start = time.perf_counter()
        data = encode_audio_blocks(codec, timed(original(), reading), bandwidth).to_bytes()
        encode_seconds = time.perf_counter() - start - reading[0]
        compressed = CompressedAudio.from_bytes(data)
        duration = compressed.duration
        if i == 0:
            print(f"input: {source} ({duration:.2f} s)")
            print(header)
        decoded = (block[0] for block in timed(decode_audio_blocks(codec, compressed), decoding))
        comparison = Comparison(sr)
        path = output if i == len(bandwidths) - 1 else output.with_name(f"{output.stem}_{_kbps(bandwidth)}kbps{output.suffix}")
        write_audio_blocks(path, compared(original(), decoded, comparison, int(METRIC_SEGMENT_SECONDS * sr)), sr,
                           protect=[source])
        pcm_bytes = compressed.num_samples * channels * 2
        print(f"{_kbps(bandwidth):>6} {len(data):>7} {len(data) * 8 / duration / 1000:>9.3f} {pcm_bytes / len(data):>6.0f} "
              f"{comparison.mel_distance:>8.3f} {comparison.si_sdr:>9.2f} "
              f"{duration / encode_seconds:>8.1f} {duration / decoding[0]:>8.1f}  {path}")
    return 0
