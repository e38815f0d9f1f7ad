"""Codec quality table for a model card: a codec against Opus at the same bitrates, on unseen music.

On fixed 10 s excerpts of the validation split of a data manifest (music the codec never trained
on), at each of the codec's bitrates, measures mel distance, multi-resolution STFT distance,
SI-SDR and ViSQOL (audio mode, 48 kHz) of the codec's decoded ``.hfmc`` file and of Opus
(ffmpeg + libopus, ``-application audio``) asked for the same bitrate, and the *real* bitrate of
both from their file sizes. Prints medians and means over excerpts and the wall time.

    .venv/bin/python benchmarks/codec_quality.py                      # bundled codec, 16 x 10 s
    .venv/bin/python benchmarks/codec_quality.py --markdown --output-json outputs/quality.json
    .venv/bin/python benchmarks/codec_quality.py --model path/to/codec --bandwidths 1.5 6 --no-opus

Opus caveat: libopus does not go below about 6 kbps. ffmpeg passes lower requests on without a
warning and libopus raises them internally (1.5 and 3 kbps give the same bitstream as each other),
so Opus rows always show the bitrate measured from the file, and requests that produced identical
bitstreams are flagged. Each system's constant output delay (libopus' low-rate SILK path is
~0.125 ms late) is estimated by cross-correlation and compensated before scoring (``--no-align``
to skip), for the codec and Opus alike.

Two anchors calibrate the columns (``--no-anchors`` to skip): the input low-passed at 3.5 kHz
(MUSHRA's low anchor) and unrelated music (another excerpt of another track): a codec whose
output ignores its input scores like the second.

Needs the data (``.venv/bin/python scripts/fetch_debian_music.py``; exits with status 2 without
it), ffmpeg with libopus for the Opus rows, and the ``metrics`` extra for ViSQOL.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FETCH_COMMAND = ".venv/bin/python scripts/fetch_debian_music.py"
DEFAULT_MANIFEST = Path(__file__).resolve().parents[1] / "data" / "debian" / "manifest.jsonl"

# What each column is (printed with every table, stored in the JSON).
COLUMNS = {
    "file_kbps": "real bitrate of the whole file, bytes * 8 / excerpt duration: codec = .hfmc "
                 "(57-byte header + codec name + bit-packed codes + CRC32); Opus = .opus (Ogg pages, "
                 "OpusHead/OpusTags headers and audio packets)",
    "payload_kbps": "same without the container: codec = bit-packed codes (+ scales); Opus = audio "
                    "packet bytes only (Ogg page headers and OpusHead/OpusTags excluded)",
    "mel": "multi-scale log10-mel L1 distance (DAC's: 7 scales, windows 32-2048; "
           "hf_musiccodec.metrics.mel_distance), lower is better",
    "stft": "multi-resolution STFT distance (spectral convergence + log magnitude, FFT 512/1024/2048; "
            "hf_musiccodec.metrics.stft_distance), lower is better",
    "si_sdr": "scale-invariant SDR in dB (hf_musiccodec.metrics.si_sdr), higher is better; waveform-exact, so "
              "it punishes codecs that reproduce the spectrum but not the phase",
    "visqol": "ViSQOL v3 audio mode MOS-LQO, both signals resampled to 48 kHz (visqol-python, bundled "
              "SVR model; hf_musiccodec.metrics.visqol), 1-~4.75, higher is better; the reference only reaches "
              "the codec's Nyquist frequency, and patch alignment lets unrelated music score well: read it "
              "against the anchors",
    "loudness_db": "output loudness minus input loudness (BS.1770 LUFS), 0 is best: a codec that turns some "
                   "music down by many dB hands a token LM quiet tokens to learn",
}
METRICS = ("mel", "stft", "si_sdr", "loudness_db", "visqol")


class DataMissingError(RuntimeError):
    """The manifest, its split or its audio files are not there."""


# --------------------------------------------------------------------------- data


@dataclasses.dataclass
class Excerpt:
    """A fixed excerpt of a track: ``audio`` is float32 ``(channels, samples)`` at ``sampling_rate``."""

    path: str
    title: str
    offset: float
    seconds: float
    sampling_rate: int
    audio: np.ndarray

    def describe(self) -> dict:
        return {"path": self.path, "title": self.title, "offset": self.offset, "seconds": self.seconds}


def excerpt_positions(durations: list[float], excerpts: int, seconds: float) -> list[tuple[int, float]]:
    """Deterministic ``(track index, offset)`` pairs: excerpt ``i`` comes from the ``i % n``-th
    track long enough to hold one; a track with ``k`` excerpts gets them centred in ``k`` equal
    parts of the track, ``offset_j = (duration - seconds) * (j + 1/2) / k``."""
    usable = [i for i, d in enumerate(durations) if d >= seconds]
    if not usable or excerpts < 1:
        return []
    counts = {i: 0 for i in usable}
    for n in range(excerpts):
        counts[usable[n % len(usable)]] += 1
    positions = []
    for i in usable:
        k = counts[i]
        positions += [(i, round((durations[i] - seconds) * (j + 0.5) / k, 3)) for j in range(k)]
    return positions


def load_quality_excerpts(
    manifest=DEFAULT_MANIFEST,
    *,
    split: str | None = "validation",
    excerpts: int = 16,
    seconds: float = 10.0,
    sampling_rate: int = 24_000,
    channels: int = 1,
    normalize: str | None = "loudness",
) -> list[Excerpt]:
    """The quality data: ``excerpts`` fixed excerpts of ``seconds`` from the ``split`` records of a
    manifest (``None``: every record), decoded with ``hf_musiccodec.audio.io.load_audio`` at
    ``sampling_rate``, ``channels``, loudness-normalised (-20 LUFS, peak <= -1 dBFS).

    Records are ordered by path and excerpts spread over them by :func:`excerpt_positions`, so
    the same manifest always gives the same excerpts. A silent excerpt is skipped (not replaced).

    Raises:
        DataMissingError: no manifest, no record in ``split``, or a listed audio file is missing.
    """
    from hf_musiccodec.audio.io import AudioError, audio_info, load_audio
    from hf_musiccodec.data import read_manifest_records

    manifest = Path(manifest)
    if not manifest.is_file():
        raise DataMissingError(f"no manifest at {manifest}")
    # read_manifest_records resolves each path against the manifest's folder.
    records = [r for r in read_manifest_records(manifest) if split is None or r.get("split") == split]
    if not records:
        raise DataMissingError(f"{manifest} has no records with split == {split!r}")
    records.sort(key=lambda r: r["path"])
    missing = [r["path"] for r in records if not Path(r["path"]).is_file()]
    if missing:
        raise DataMissingError(f"{len(missing)} audio file(s) of {manifest} are missing, e.g. {missing[0]}")
    durations = []
    for r in records:
        d = r.get("duration")
        if d is None:
            info = audio_info(r["path"])
            d = info.frames / info.samplerate
        durations.append(float(d))
    out = []
    for index, offset in excerpt_positions(durations, excerpts, seconds):
        r = records[index]
        try:
            audio, sr = load_audio(r["path"], sampling_rate=sampling_rate, channels=channels, normalize=normalize,
                                   offset=offset, duration=seconds)
        except AudioError as err:  # e.g. a silent passage: loudness normalisation is undefined
            print(f"skipping excerpt {r['path']} @ {offset} s: {err}", file=sys.stderr)
            continue
        out.append(Excerpt(path=r["path"], title=r.get("title") or Path(r["path"]).stem, offset=offset,
                           seconds=audio.shape[-1] / sr, sampling_rate=sr, audio=audio))
    return out


# --------------------------------------------------------------------------- codecs under test


def codec_roundtrip(model, audio: np.ndarray, bandwidth: float) -> tuple[np.ndarray, dict]:
    """Encode to an in-memory ``.hfmc`` file and decode it back: ``(decoded (C, T), info)``."""
    from hf_musiccodec.codecs.file_format import CompressedAudio, decode_waveform, encode_waveform

    compressed = encode_waveform(model, audio, bandwidth)
    data = compressed.to_bytes()
    decoded = decode_waveform(model, CompressedAudio.from_bytes(data))[0]
    duration = audio.shape[-1] / model.config.sampling_rate
    payload = math.ceil(compressed.num_codes * compressed.bits / 8)
    if compressed.audio_scales is not None:
        payload += 4 * compressed.num_chunks * compressed.batch_size
    return decoded, {"file_bytes": len(data), "payload_bytes": payload,
                     "file_kbps": len(data) * 8 / duration / 1000, "payload_kbps": payload * 8 / duration / 1000}


def continuous_roundtrip(model, audio: np.ndarray) -> tuple[np.ndarray, dict]:
    """The codec as the plain autoencoder latent diffusion uses: ``decode_latents(encode_latents(x))``,
    no quantizer (no bitrate): ``(decoded (C, T), {})``."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
    decoded = model.decode_latents(model.encode_latents(x))[0, :, : audio.shape[-1]]
    return decoded.float().numpy(), {}


def opus_available(ffmpeg: str = "ffmpeg") -> bool:
    """True if ``ffmpeg`` is on the PATH and has the libopus encoder."""
    if shutil.which(ffmpeg) is None:
        return False
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], check=False, capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split()[1:2] == ["libopus"] for line in out.splitlines() if line.strip())


def ogg_opus_packets(data: bytes) -> list[bytes]:
    """The packets of a single-stream Ogg file (Ogg page headers and lacing removed)."""
    packets, current, pos = [], bytearray(), 0
    while pos + 27 <= len(data):
        if data[pos:pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        nsegs = data[pos + 26]
        lacing = data[pos + 27:pos + 27 + nsegs]
        pos += 27 + nsegs
        for size in lacing:
            current += data[pos:pos + size]
            pos += size
            if size < 255:
                packets.append(bytes(current))
                current = bytearray()
    if current:
        packets.append(bytes(current))
    return packets


def opus_roundtrip(audio: np.ndarray, sampling_rate: int, kbps: float, workdir, ffmpeg: str = "ffmpeg"
                   ) -> tuple[np.ndarray, dict]:
    """Encode with ``ffmpeg -c:a libopus -b:a {kbps}k -application audio`` (bit-exact, one thread),
    decode back to ``sampling_rate`` and the input's channels: ``(decoded (C, T), info)``.

    ``info`` holds the real bitrate from the .opus file (``file_kbps``) and from its audio packets
    only (``payload_kbps``: Ogg pages and OpusHead/OpusTags excluded), and a digest of the audio
    packets (equal digests = the encoder produced the same bitstream)."""
    import soundfile as sf

    workdir = Path(workdir)
    src, enc, dec = workdir / "in.wav", workdir / "out.opus", workdir / "out.wav"
    channels, length = audio.shape
    sf.write(str(src), audio.T, sampling_rate, subtype="FLOAT")
    base = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1"]
    bitexact = ["-fflags", "+bitexact", "-flags:a", "+bitexact"]
    subprocess.run(base + ["-i", str(src), "-c:a", "libopus", "-b:a", f"{kbps:g}k", "-application", "audio",
                           *bitexact, str(enc)], check=True, capture_output=True)
    subprocess.run(base + ["-i", str(enc), "-ar", str(sampling_rate), "-ac", str(channels), "-c:a", "pcm_f32le",
                           *bitexact, str(dec)], check=True, capture_output=True)
    decoded, _ = sf.read(str(dec), dtype="float32", always_2d=True)
    decoded = decoded.T[:, :length]
    if decoded.shape[-1] < length:
        decoded = np.pad(decoded, [(0, 0), (0, length - decoded.shape[-1])])
    data = enc.read_bytes()
    audio_packets = ogg_opus_packets(data)[2:]  # the first two are OpusHead and OpusTags
    payload = sum(len(p) for p in audio_packets)
    duration = length / sampling_rate
    digest = hashlib.sha256(b"".join(len(p).to_bytes(4, "little") + p for p in audio_packets)).hexdigest()[:16]
    return np.ascontiguousarray(decoded), {
        "file_bytes": len(data), "payload_bytes": payload, "file_kbps": len(data) * 8 / duration / 1000,
        "payload_kbps": payload * 8 / duration / 1000, "packets_sha256": digest}


# --------------------------------------------------------------------------- measurement


def visqol_available() -> bool:
    try:
        import visqol  # noqa: F401
    except ImportError:
        return False
    return True


def score(ref: np.ndarray, est: np.ndarray, sampling_rate: int, use_visqol: bool, timings: dict) -> dict:
    from hf_musiccodec.metrics import mel_distance, si_sdr, stft_distance, visqol

    t = time.perf_counter()
    out = {"mel": mel_distance(ref, est, sampling_rate), "stft": stft_distance(ref, est), "si_sdr": si_sdr(ref, est),
           "loudness_db": loudness_change(ref, est, sampling_rate)}
    timings["metrics_s"] = timings.get("metrics_s", 0.0) + time.perf_counter() - t
    if use_visqol:
        t = time.perf_counter()
        out["visqol"] = visqol(ref, est, sampling_rate)
        timings["visqol_s"] = timings.get("visqol_s", 0.0) + time.perf_counter() - t
    return out


def loudness_change(ref: np.ndarray, est: np.ndarray, sampling_rate: int, floor: float = -70.0) -> float:
    """dB of loudness the system added (negative: lost), silence counting as ``floor`` LUFS."""
    from hf_musiccodec.audio import measure_loudness

    ref_lufs, est_lufs = (float(np.nan_to_num(measure_loudness(x, sampling_rate), nan=floor, neginf=floor))
                          for x in (ref, est))  # fmt: skip
    return max(floor, est_lufs) - max(floor, ref_lufs)


def measure_quality(model, excerpts: list[Excerpt], bandwidths=None, *, opus: bool = True, use_visqol=None,
                    opus_bitrates=None, anchors: bool = True, align: bool = True, ffmpeg: str = "ffmpeg",
                    continuous: bool = False, log=None) -> dict:
    """Measure the codec at each of ``bandwidths`` (default ``model.config.target_bandwidths``)
    and, if ``opus``, Opus asked for the same bitrates (or ``opus_bitrates``), on every excerpt.

    ``continuous``: also score the codec without its quantizer (encoder output straight to the
    decoder: the autoencoder of latent diffusion). ``anchors``: also score two references that need no codec, to calibrate the columns: the
    input low-passed at 3.5 kHz (MUSHRA's low anchor) and unrelated music (another excerpt,
    from another track when there is one). ``use_visqol``: ``None`` = when visqol-python is
    importable. ``align``: estimate one constant
    output delay per row (:func:`estimate_lag`, e.g. libopus' SILK path is ~0.125 ms late) and
    compensate it before scoring, for both systems alike; SI-SDR is very sensitive to it. Opus is
    left out (and said so in ``notes``) when ffmpeg lacks libopus. Returns a JSON-ready dict:
    ``rows`` (one per system and bitrate, with per-excerpt values and a ``summary`` of medians
    and means), ``excerpts``, ``columns`` (what each column is), ``timings`` and ``notes``.
    """
    import torch

    log = log or (lambda *a: None)
    sr = int(model.config.sampling_rate)
    bandwidths = [float(b) for b in (bandwidths or model.config.target_bandwidths)]
    opus_bitrates = [float(b) for b in (opus_bitrates or bandwidths)]
    use_visqol = visqol_available() if use_visqol is None else bool(use_visqol)
    notes = []
    if not use_visqol:
        notes.append("ViSQOL not measured (visqol-python not installed or disabled)")
    if opus and not opus_available(ffmpeg):
        notes.append(f"Opus not measured: {ffmpeg} with libopus not found")
        opus = False
    for e in excerpts:
        if e.sampling_rate != sr:
            raise ValueError(f"excerpt at {e.sampling_rate} Hz, codec at {sr} Hz")
    timings: dict = {}
    rows = []
    model.eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for bw in bandwidths:
            row = {"system": "codec", "name": getattr(model.config, "_name_or_path", "") or "codec",
                   "requested_kbps": bw}
            outputs = []
            for e in excerpts:
                t = time.perf_counter()
                outputs.append(codec_roundtrip(model, e.audio, bw))
                timings["codec_s"] = timings.get("codec_s", 0.0) + time.perf_counter() - t
            rows.append(_score_row(row, excerpts, outputs, sr, use_visqol, align, timings, log))
        if continuous:
            row = {"system": "continuous", "name": "continuous latents", "requested_kbps": None,
                   "label": "codec, continuous latents (no quantizer)"}
            outputs = [continuous_roundtrip(model, e.audio) for e in excerpts]
            rows.append(_score_row(row, excerpts, outputs, sr, use_visqol, align, timings, log))
    if opus:
        with tempfile.TemporaryDirectory(prefix="codec_quality_") as workdir:
            for bw in opus_bitrates:
                row = {"system": "opus", "name": "Opus (ffmpeg libopus, -application audio)", "requested_kbps": bw}
                outputs = []
                for e in excerpts:
                    t = time.perf_counter()
                    outputs.append(opus_roundtrip(e.audio, sr, bw, workdir, ffmpeg))
                    timings["opus_s"] = timings.get("opus_s", 0.0) + time.perf_counter() - t
                rows.append(_score_row(row, excerpts, outputs, sr, use_visqol, align, timings, log))
        notes += _opus_notes([r for r in rows if r["system"] == "opus"])
    if anchors:
        for label, outputs in anchor_outputs(excerpts, sr):
            row = {"system": "anchor", "name": label, "label": label, "requested_kbps": None}
            rows.append(_score_row(row, excerpts, outputs, sr, use_visqol, False, timings, log))
    for row in rows:
        if row["system"] != "anchor" and row["output_variation"] is not None and row["output_variation"] < 0.1:
            notes.append(f"{_label(row)}: the outputs for different excerpts are nearly identical (relative "
                         f"difference {row['output_variation']:.2g}, ~1.4 for outputs that follow their inputs): "
                         "the output ignores its input, and its mel/STFT/ViSQOL are those of one fixed signal")
        if row["lag_samples"]:
            notes.append(f"{_label(row)}: output delayed by {row['lag_samples']} samples "
                         f"({1000 * row['lag_samples'] / sr:.3f} ms), compensated before scoring")
    timings["total_s"] = time.perf_counter() - start
    for row in rows:
        row["summary"] = summarize(row["per_excerpt"])
    return {
        "sampling_rate": sr,
        "bandwidths": bandwidths,
        "opus_bitrates": opus_bitrates if opus else [],
        "excerpts": [e.describe() for e in excerpts],
        "columns": {k: v for k, v in COLUMNS.items() if k != "visqol" or use_visqol},
        "rows": rows,
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "notes": notes,
    }


def anchor_outputs(excerpts: list[Excerpt], sr: int, cutoff_hz: float = 3500.0) -> list[tuple[str, list]]:
    """``(label, [(estimate, {}), ...])`` for the anchors: each excerpt low-passed at ``cutoff_hz``
    (8th-order Butterworth, zero phase), and each excerpt ``i`` replaced by excerpt ``(i + s) % n``,
    a one-to-one shuffle whose shift ``s`` (tried from ``n // 2`` on) puts the most excerpts
    against another track (with one track: another position of it)."""
    from scipy.signal import butter, sosfiltfilt

    out = []
    if cutoff_hz < sr / 2:
        sos = butter(8, cutoff_hz, fs=sr, output="sos")
        out.append((f"anchor: low-pass {cutoff_hz / 1000:g} kHz",
                    [(sosfiltfilt(sos, e.audio, axis=-1).astype(np.float32), {}) for e in excerpts]))
    n = len(excerpts)
    if n > 1:
        shifts = list(range(n // 2, n)) + list(range(1, n // 2))
        shift = max(shifts, key=lambda s: sum(excerpts[i].path != excerpts[(i + s) % n].path for i in range(n)))
        others = []
        for i, e in enumerate(excerpts):
            other = excerpts[(i + shift) % n].audio[..., : e.audio.shape[-1]]
            other = np.pad(other, [(0, 0), (0, e.audio.shape[-1] - other.shape[-1])])
            others.append((np.ascontiguousarray(other), {}))
        out.append(("anchor: unrelated music", others))
    return out


def estimate_lag(refs: list[np.ndarray], ests: list[np.ndarray], max_lag: int, min_correlation: float = 0.2) -> int:
    """One constant delay (samples, > 0 = ``est`` late) for a system: the median over excerpts of
    the cross-correlation peak within ``+-max_lag``, over excerpts whose normalised peak exceeds
    ``min_correlation`` (0 when none does: an output unrelated to its input has no delay)."""
    from scipy.signal import correlate

    lags = []
    for ref, est in zip(refs, ests):
        r, e = ref.mean(axis=0).astype(np.float64), est.mean(axis=0).astype(np.float64)
        n = min(r.size, e.size)
        r, e = r[:n], e[:n]
        c = correlate(e, r, mode="full", method="fft")[n - 1 - max_lag:n + max_lag]
        k = int(np.argmax(c))
        norm = math.sqrt(float(np.dot(r, r) * np.dot(e, e))) or 1.0
        if c[k] / norm > min_correlation:
            lags.append(k - max_lag)
    return round(float(np.median(lags))) if lags else 0


def shift(ref: np.ndarray, est: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Undo a delay of ``lag`` samples of ``est``: both trimmed to the overlapping part."""
    if lag > 0:
        return ref[..., :-lag], est[..., lag:]
    if lag < 0:
        return ref[..., -lag:], est[..., :lag]
    return ref, est


def output_variation(ests: list[np.ndarray]) -> float | None:
    """Median over consecutive excerpts of ``rms(est_i - est_i+1) / rms(est_i, est_i+1)``: about
    sqrt(2) for outputs that follow their (different) inputs, about 0 for an output that ignores
    its input (a collapsed codec: its spectral scores are those of one fixed signal)."""
    if len(ests) < 2:
        return None
    ratios = []
    for a, b in zip(ests, ests[1:]):
        n = min(a.shape[-1], b.shape[-1])
        a, b = a[..., :n].astype(np.float64), b[..., :n].astype(np.float64)
        scale = math.sqrt((np.mean(a**2) + np.mean(b**2)) / 2) or 1.0
        ratios.append(math.sqrt(np.mean((a - b) ** 2)) / scale)
    return float(np.median(ratios))


def _score_row(row, excerpts, outputs, sr, use_visqol, align, timings, log) -> dict:
    refs = [e.audio for e in excerpts]
    ests = [decoded for decoded, _ in outputs]
    row["output_variation"] = output_variation(ests)
    row["lag_samples"] = estimate_lag(refs, ests, max_lag=int(0.01 * sr)) if align else 0
    row["per_excerpt"] = []
    for i, (ref, (est, info)) in enumerate(zip(refs, outputs)):
        ref, est = shift(ref, est, row["lag_samples"])
        row["per_excerpt"].append({**info, **score(ref, est, sr, use_visqol, timings)})
        log(f"{_label(row):<22} excerpt {i + 1}/{len(excerpts)}  {_brief(row['per_excerpt'][-1])}")
    return row


def _brief(values: dict) -> str:
    return "  ".join(f"{k}={values[k]:.3f}" for k in ("file_kbps",) + METRICS if k in values)


def _opus_notes(opus_rows: list[dict]) -> list[str]:
    notes = []
    for row in opus_rows:
        if row["requested_kbps"] < 6:
            notes.append(f"Opus asked for {row['requested_kbps']:g} kbps: below libopus' ~6 kbps floor; ffmpeg "
                         "accepts it silently and libopus raises it, see the measured kbps")
    for i, a in enumerate(opus_rows):
        for b in opus_rows[i + 1:]:
            same = [x["packets_sha256"] == y["packets_sha256"] for x, y in zip(a["per_excerpt"], b["per_excerpt"])]
            if same and all(same):
                a.setdefault("same_bitstream_as", []).append(b["requested_kbps"])
                b.setdefault("same_bitstream_as", []).append(a["requested_kbps"])
                notes.append(f"Opus asked for {a['requested_kbps']:g} and {b['requested_kbps']:g} kbps produced "
                             "identical bitstreams on every excerpt")
    return notes


def summarize(per_excerpt: list[dict]) -> dict:
    """Median and mean over excerpts of every numeric column."""
    out = {}
    for key in ("file_kbps", "payload_kbps") + METRICS:
        values = [x[key] for x in per_excerpt if key in x]
        if values:
            out[key] = {"median": float(np.median(values)), "mean": float(np.mean(values)),
                        "min": float(np.min(values)), "max": float(np.max(values))}
    return out


# --------------------------------------------------------------------------- tables


_HEADERS = {"file_kbps": "kbps (file)", "payload_kbps": "kbps (payload)", "mel": "mel ↓", "stft": "STFT ↓",
            "si_sdr": "SI-SDR dB ↑", "loudness_db": "loudness Δ dB", "visqol": "ViSQOL ↑"}


def _label(row: dict) -> str:
    if row.get("label"):
        return row["label"]
    if row["system"] == "codec":
        return f"codec @ {row['requested_kbps']:g} kbps"
    return f"Opus asked {row['requested_kbps']:g} kbps"


def _cell(summary: dict, key: str, stat: str) -> str:
    if key not in summary:
        return "-"
    digits = 2 if key in ("file_kbps", "payload_kbps", "si_sdr", "loudness_db", "visqol") else 3
    return f"{summary[key][stat]:.{digits}f}"


def text_table(result: dict) -> str:
    keys = [k for k in _HEADERS if k in result["columns"]]
    lines = []
    for stat in ("median", "mean"):
        lines.append(f"{stat} over {len(result['excerpts'])} excerpts")
        head = f"{'system':<24}" + "".join(f"{_HEADERS[k]:>16}" for k in keys)
        lines += [head, "-" * len(head)]
        for row in result["rows"]:
            lines.append(f"{_label(row):<24}" + "".join(f"{_cell(row['summary'], k, stat):>16}" for k in keys))
        lines.append("")
    return "\n".join(lines)


def markdown_table(result: dict, title: str | None = None) -> str:
    """A model-card table: medians over excerpts, means in parentheses, then what each column is."""
    keys = [k for k in _HEADERS if k in result["columns"]]
    lines = [f"**{title}**", ""] if title else []
    lines += ["| system | " + " | ".join(_HEADERS[k] for k in keys) + " |",
              "|---|" + "---:|" * len(keys)]
    for row in result["rows"]:
        label = _label(row)
        if row.get("same_bitstream_as"):
            label += " ¹"
        cells = [f"{_cell(row['summary'], k, 'median')} ({_cell(row['summary'], k, 'mean')})"
                 if k in row["summary"] else "-" for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    ex = result["excerpts"]
    if ex:
        tracks = {e["path"] for e in ex}
        lines += ["", f"Median (mean) over {len(ex)} excerpts of {ex[0]['seconds']:g} s from {len(tracks)} held-out "
                  f"tracks, mono, {result['sampling_rate']} Hz, loudness-normalised to -20 LUFS."]
    for key in keys:
        lines.append(f"- {_HEADERS[key]}: {result['columns'][key]}")
    if any(r.get("same_bitstream_as") for r in result["rows"]):
        lines.append("- ¹ below libopus' floor: these Opus requests gave identical bitstreams, so compare Opus "
                     "at its measured kbps.")
    lines += [f"- {n}" for n in result["notes"]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="codec folder (default: the bundled codec)")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--split", default="validation", help="manifest split to use ('all': every record)")
    parser.add_argument("--excerpts", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bandwidths", type=float, nargs="+", default=None,
                        help="kbps (default: the model's config.target_bandwidths)")
    parser.add_argument("--opus", action=argparse.BooleanOptionalAction, default=True, help="also measure Opus")
    parser.add_argument("--opus-bitrates", type=float, nargs="+", default=None,
                        help="kbps to ask Opus for (default: the same as --bandwidths)")
    parser.add_argument("--anchors", action=argparse.BooleanOptionalAction, default=True,
                        help="also score the input low-passed at 3.5 kHz and unrelated music, to calibrate the columns")
    parser.add_argument("--visqol", action=argparse.BooleanOptionalAction, default=None,
                        help="measure ViSQOL (default: when visqol-python is installed)")
    parser.add_argument("--align", action=argparse.BooleanOptionalAction, default=True,
                        help="compensate a constant output delay per system/bitrate (within 10 ms) before scoring")
    parser.add_argument("--continuous", action="store_true",
                        help="also measure the codec without its quantizer (the latent diffusion autoencoder)")
    parser.add_argument("--ffmpeg", default="ffmpeg")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--output-json", type=Path, default=None)
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table for a model card")
    parser.add_argument("--quiet", action="store_true", help="no per-excerpt progress")
    args = parser.parse_args(argv)

    wall = time.perf_counter()
    import torch

    from hf_musiccodec.codecs import MusicCodecConfig, MusicCodecModel, default_model_path

    torch.set_num_threads(args.threads)
    model_path = args.model or default_model_path()
    sr = int(MusicCodecConfig.from_pretrained(str(model_path)).sampling_rate)  # weights only once the data is there
    try:
        excerpts = load_quality_excerpts(args.manifest, split=None if args.split == "all" else args.split,
                                         excerpts=args.excerpts, seconds=args.seconds, sampling_rate=sr, channels=1)
    except DataMissingError as err:
        print(f"error: {err}\nFetch the music first:  {FETCH_COMMAND}", file=sys.stderr)
        return 2
    if not excerpts:
        print(f"error: no usable excerpt of {args.seconds:g} s in {args.manifest} ({args.split})", file=sys.stderr)
        return 2
    model = MusicCodecModel.from_pretrained(str(model_path)).eval()
    load_s = time.perf_counter() - wall
    tracks = sorted({e.path for e in excerpts})
    print(f"model: {model_path}  ({sr} Hz, bandwidths {list(model.config.target_bandwidths)} kbps)")
    print(f"data:  {len(excerpts)} excerpts x {args.seconds:g} s from {len(tracks)} tracks of split "
          f"{args.split!r} of {args.manifest}, mono, loudness-normalised to -20 LUFS")
    result = measure_quality(model, excerpts, args.bandwidths, opus=args.opus, use_visqol=args.visqol,
                             opus_bitrates=args.opus_bitrates, anchors=args.anchors, align=args.align, ffmpeg=args.ffmpeg,
                             continuous=args.continuous, log=None if args.quiet else (lambda m: print(m, flush=True)))
    result["model"] = str(model_path)
    result["manifest"] = str(args.manifest)
    result["split"] = args.split
    result["timings"]["load_s"] = round(load_s, 2)
    result["timings"]["wall_s"] = round(time.perf_counter() - wall, 2)

    print("\ncolumns:")
    for key, text in result["columns"].items():
        print(f"  {_HEADERS[key]:<15} {text}")
    print()
    print(text_table(result))
    for note in result["notes"]:
        print(f"note: {note}")
    t = result["timings"]
    audio_s = len(excerpts) * args.seconds
    print(f"\nwall time {t['wall_s']:.1f} s (loading {t['load_s']:.1f} s; codec {t.get('codec_s', 0):.1f} s, "
          f"opus {t.get('opus_s', 0):.1f} s, mel/stft/si-sdr {t.get('metrics_s', 0):.1f} s, "
          f"visqol {t.get('visqol_s', 0):.1f} s = {t.get('visqol_s', 0) / max(1, len(result['rows'])) / audio_s:.3f} s "
          "per second of audio per row)")
    if args.markdown:
        print()
        print(markdown_table(result, title=f"{Path(model_path).name}: quality on held-out music vs Opus"))
    if args.output_json:
        args.output_json.parent.mkdir(parents=True, exist_ok=True)
        args.output_json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"\nwrote {args.output_json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
