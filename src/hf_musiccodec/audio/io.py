"""Audio file I/O: load, validate, resample, match channels, normalise, save.

Everything here works on float32 numpy arrays shaped ``(channels, samples)`` and
decodes with soundfile (libsndfile: wav, flac, ogg vorbis/opus, mp3), never
PyTorch's own audio packages (see DESIGN.md: their CUDA wheels break CPU torch).
"""

from __future__ import annotations

import math
import os
import struct
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Union

import numpy as np
import soundfile as sf
import soxr

from ..utils.files import atomic_write, protected_by, same_path  # noqa: F401 (same_path is re-exported)

PathLike = Union[str, os.PathLike]

# Extension -> (libsndfile container, subtype to use when the requested one does not fit).
_FORMATS = {
    ".wav": ("WAV", None),
    ".flac": ("FLAC", None),
    ".ogg": ("OGG", "VORBIS"),
    ".opus": ("OGG", "OPUS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
    ".aiff": ("AIFF", None),
    ".aif": ("AIFF", None),
}
AUDIO_EXTENSIONS = tuple(_FORMATS)

NORMALIZE_MODES = (None, "peak", "loudness")
DEFAULT_TARGET_LUFS = -20.0
DEFAULT_PEAK_DB = -1.0
# Below this peak a signal is treated as digital silence: normalising it would only amplify noise.
_SILENCE_PEAK = 10 ** (-100 / 20)


class AudioError(ValueError):
    """Raised for audio that cannot be used: unreadable, corrupt, empty, non-finite, silent, ..."""


# --------------------------------------------------------------------------- validation


def validate_waveform(x, name: str = "waveform", *, allow_empty: bool = False) -> np.ndarray:
    """Check that ``x`` is a 1-D or 2-D finite, non-empty float array and return it as numpy.

    Accepts torch tensors too (so models can call it on their inputs).
    """
    arr = _to_numpy(x)
    if arr.ndim not in (1, 2):
        raise AudioError(f"{name}: expected shape (samples,) or (channels, samples), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise AudioError(f"{name}: expected a float array, got dtype {arr.dtype}")
    if arr.shape[-1] == 0 and not allow_empty:
        raise AudioError(f"{name}: empty audio (0 samples)")
    if arr.ndim == 2 and arr.shape[0] == 0:
        raise AudioError(f"{name}: audio has 0 channels")
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise AudioError(f"{name}: {bad} NaN or infinite samples")
    return arr


def _to_numpy(x) -> np.ndarray:
    # torch tensors are duck-typed so importing this module never imports torch.
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if getattr(x, "dtype", None) is not None and str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def _as_2d(x: np.ndarray) -> np.ndarray:
    return x[None, :] if x.ndim == 1 else x


# --------------------------------------------------------------------------- transforms


def resample(x, orig_sr: int, target_sr: int, quality: str = "HQ") -> np.ndarray:
    """Resample ``(channels, samples)`` or ``(samples,)`` audio with soxr; keeps the input rank."""
    arr = validate_waveform(x, "resample input")
    if orig_sr <= 0 or target_sr <= 0:
        raise AudioError(f"sampling rates must be positive, got {orig_sr} -> {target_sr}")
    if orig_sr == target_sr:
        return arr.astype(np.float32, copy=False)
    # soxr wants (samples, channels); it runs in float32 when given float32.
    y = soxr.resample(_as_2d(arr).T.astype(np.float32), orig_sr, target_sr, quality=quality)
    y = np.ascontiguousarray(y.T)
    return y[0] if arr.ndim == 1 else y


def match_channels(x, channels: int) -> np.ndarray:
    """Return ``(channels, samples)`` audio: mono is repeated, many-to-mono is averaged."""
    arr = _as_2d(_to_numpy(x))
    have = arr.shape[0]
    if channels < 1:
        raise AudioError(f"channels must be >= 1, got {channels}")
    if have == channels:
        return arr
    if have == 1:
        return np.repeat(arr, channels, axis=0)
    if channels == 1:
        return arr.mean(axis=0, keepdims=True)
    raise AudioError(f"cannot convert {have} channels to {channels}: only mono<->N conversions are defined")


def peak_db(x) -> float:
    peak = float(np.max(np.abs(x))) if np.size(x) else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def rms_db(x) -> float:
    """Power summed over channels, in dB (dBFS for mono, like LUFS without K-weighting)."""
    arr = _as_2d(np.asarray(x, dtype=np.float64))
    power = float(np.sum(np.mean(arr**2, axis=-1))) if arr.size else 0.0
    return 10 * math.log10(power) if power > 0 else -math.inf


SILENCE_DB = -60.0  # RMS level (dBFS) below which audio counts as silent


def is_silent(x, threshold_db: float = SILENCE_DB) -> bool:
    """True when the RMS level is below ``threshold_db`` dBFS."""
    return rms_db(x) < threshold_db


def measure_loudness(x, sampling_rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770 via pyloudnorm).

    Falls back to plain RMS power in dB when pyloudnorm is not installed, the audio is
    shorter than one 400 ms gating block, or every block is gated out. For a 1 kHz tone
    both agree within ~0.1 dB; for bass-heavy or bright music they can differ by a few dB.
    """
    arr = _as_2d(np.asarray(x, dtype=np.float64))
    if arr.shape[-1] >= int(0.4 * sampling_rate) + 1:
        try:
            import pyloudnorm
        except ImportError:  # optional dependency (extra "data")
            pyloudnorm = None
        if pyloudnorm is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pyloudnorm warns on clipping; not our concern here
                lufs = pyloudnorm.Meter(sampling_rate).integrated_loudness(arr.T)
            if math.isfinite(lufs):
                return float(lufs)
    return rms_db(arr)


def normalize_audio(
    x,
    sampling_rate: int,
    mode: str | None,
    *,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    peak_db_target: float = DEFAULT_PEAK_DB,
    name: str = "audio",
) -> np.ndarray:
    """Scale audio by ``mode``: ``None`` (unchanged), ``"peak"`` or ``"loudness"``.

    ``"peak"`` scales the absolute peak to ``peak_db_target`` (-1 dBFS).
    ``"loudness"`` scales to ``target_lufs`` (see :func:`measure_loudness`), but the gain is
    capped so the peak never exceeds ``peak_db_target``: very dynamic audio can end up
    quieter than the target rather than clipped.
    """
    if mode not in NORMALIZE_MODES:
        raise AudioError(f"normalize must be one of {NORMALIZE_MODES}, got {mode!r}")
    arr = np.asarray(x, dtype=np.float32)
    if mode is None:
        return arr
    peak = float(np.max(np.abs(arr)))
    if peak < _SILENCE_PEAK:
        raise AudioError(f"{name}: audio is silent (peak {peak_db(arr):.1f} dBFS), cannot normalise")
    peak_gain = 10 ** (peak_db_target / 20) / peak
    if mode == "peak":
        gain = peak_gain
    else:
        gain = min(10 ** ((target_lufs - measure_loudness(arr, sampling_rate)) / 20), peak_gain)
    return (arr * np.float32(gain)).astype(np.float32)


# --------------------------------------------------------------------------- loading


def audio_info(path: PathLike):
    """soundfile.info with errors turned into :class:`AudioError`."""
    path = Path(path)
    _check_file(path)
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(f"{path}: unreadable audio file ({_short(e)})") from e


def load_audio(
    path: PathLike,
    sampling_rate: int | None = None,
    channels: int | None = None,
    normalize: str | None = None,
    *,
    min_duration: float | None = None,
    offset: float = 0.0,
    duration: float | None = None,
    target_lufs: float = DEFAULT_TARGET_LUFS,
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``(channels, samples)`` and its sampling rate.

    Args:
        sampling_rate: resample to this rate (soxr, high quality) when it differs.
        channels: mono is repeated to N channels, N channels are averaged to mono.
        normalize: ``None``, ``"peak"`` (-1 dBFS) or ``"loudness"`` (``target_lufs``).
        min_duration: raise if the decoded audio is shorter (seconds).
        offset, duration: read only this window (seconds, in the file's own time base).

    Raises:
        AudioError: missing, unreadable, truncated or corrupt file; empty or non-finite
            audio; silent audio when ``normalize`` is set; audio shorter than ``min_duration``.
    """
    if normalize not in NORMALIZE_MODES:
        raise AudioError(f"normalize must be one of {NORMALIZE_MODES}, got {normalize!r}")
    path = Path(path)
    info = audio_info(path)
    declared = info.frames
    start = max(0, int(round(offset * info.samplerate)))
    stop = declared if duration is None else min(declared, start + int(round(duration * info.samplerate)))
    sr = info.samplerate
    audio = np.concatenate(list(_blocks(path, info, None, None, max(1, stop - start), start, stop)), axis=1)
    if min_duration is not None and audio.shape[-1] / sr < min_duration:
        raise AudioError(f"{path}: too short ({audio.shape[-1] / sr:.3f} s < {min_duration} s)")
    if channels is not None:
        try:
            audio = match_channels(audio, channels)
        except AudioError as e:
            raise AudioError(f"{path}: {e}") from e
    if sampling_rate is not None and sampling_rate != sr:
        audio = resample(audio, sr, sampling_rate)
        sr = sampling_rate
    audio = normalize_audio(audio, sr, normalize, target_lufs=target_lufs, name=str(path))
    return audio.astype(np.float32, copy=False), int(sr)


BLOCK_FRAMES = 1 << 17  # frames per block of the streaming readers (about 3 s at 44.1 kHz)


def file_levels(path: PathLike, blocksize: int = BLOCK_FRAMES) -> dict:
    """Decode a whole file block by block (bounded memory) and return its levels.

    Returns ``{"frames", "peak_db", "rms_db"}``; rms is summed over channels as in
    :func:`rms_db`. Decoding everything also proves the file is not corrupt.
    """
    path = Path(path)
    frames, peak, power = 0, 0.0, 0.0
    for block in _blocks(path, audio_info(path), None, None, blocksize):
        frames += block.shape[-1]
        peak = max(peak, float(np.max(np.abs(block))))
        power += float(np.sum(block.astype(np.float64) ** 2))
    mean_power = power / frames
    return {
        "frames": frames,
        "peak_db": 20 * math.log10(peak) if peak > 0 else -math.inf,
        "rms_db": 10 * math.log10(mean_power) if mean_power > 0 else -math.inf,
    }


def read_audio_blocks(
    path: PathLike,
    sampling_rate: int | None = None,
    channels: int | None = None,
    *,
    blocksize: int = BLOCK_FRAMES,
) -> Iterator[np.ndarray]:
    """Read an audio file as consecutive float32 ``(channels, n)`` blocks, in bounded memory.

    The same audio as :func:`load_audio` with the same arguments, block by block: channels are
    matched per block and the rate converted with a streaming soxr resampler (bit-identical to
    one-shot ``soxr.resample``). The file is opened and the channel conversion checked now, so a
    missing or unreadable file fails here; decoding errors (corrupt or truncated data, NaN, an
    empty file) are raised as :class:`AudioError` while iterating, the truncation check after the
    last block.
    """
    path = Path(path)
    info = audio_info(path)
    if channels is not None:
        try:
            match_channels(np.zeros((info.channels, 0), dtype=np.float32), channels)
        except AudioError as e:
            raise AudioError(f"{path}: {e}") from e
    if sampling_rate is not None and sampling_rate <= 0:
        raise AudioError(f"sampling rates must be positive, got {sampling_rate}")
    return _blocks(path, info, sampling_rate, channels, blocksize)


def _blocks(path: Path, info, sampling_rate, channels, blocksize, start: int = 0,
            stop: int | None = None) -> Iterator[np.ndarray]:
    """Frames [start, stop) of the file as checked float32 (channels, n) blocks; see read_audio_blocks."""
    out_channels = channels or info.channels
    resampler = None
    if sampling_rate is not None and sampling_rate != info.samplerate:
        resampler = soxr.ResampleStream(info.samplerate, sampling_rate, out_channels, dtype="float32", quality="HQ")
    wanted = max(0, (info.frames if stop is None else stop) - start)
    frames = 0
    try:
        with sf.SoundFile(str(path)) as f:
            if start:
                f.seek(start)
            while frames < wanted or stop is None:
                data = f.read(blocksize if stop is None else min(blocksize, wanted - frames), dtype="float32",
                              always_2d=True)
                if not len(data):
                    break
                validate_waveform(data.T, name=str(path))
                frames += len(data)
                block = match_channels(data.T, out_channels)
                if resampler is not None:
                    block = resampler.resample_chunk(np.ascontiguousarray(block.T)).T
                yield np.ascontiguousarray(block, dtype=np.float32)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        if isinstance(e, AudioError):
            raise
        raise AudioError(f"{path}: corrupt or truncated audio ({_short(e)})") from e
    if frames == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    if _is_truncated(path, info, frames, wanted):
        raise AudioError(f"{path}: truncated file (decoded {frames} of {wanted} frames)")
    if resampler is not None:
        yield np.ascontiguousarray(resampler.resample_chunk(np.zeros((0, out_channels), np.float32), last=True).T)


def rechunk(blocks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Consecutive ``(..., n)`` blocks regrouped into blocks of exactly ``size`` samples (the last
    one shorter), so that two streams of the same audio cut differently can be compared."""
    pending: list[np.ndarray] = []
    held = 0
    for block in blocks:
        pending.append(block)
        held += block.shape[-1]
        while held >= size:
            joined = np.concatenate(pending, axis=-1) if len(pending) > 1 else pending[0]
            yield joined[..., :size]
            pending, held = [joined[..., size:]], held - size
    if held:
        yield np.concatenate(pending, axis=-1)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")


def _short(e: Exception) -> str:
    return " ".join(str(e).split())[:200]


def _is_truncated(path: Path, info, got: int, wanted: int) -> bool:
    # libsndfile silently clamps a WAV whose data chunk runs past the end of the file,
    # so compare the chunk's declared size with the bytes actually present.
    if info.format in ("WAV", "WAVEX") and _wav_data_is_short(path):
        return True
    if info.format in ("WAV", "WAVEX", "FLAC", "AIFF"):
        return got < wanted
    # Lossy decoders may report an estimated length: tolerate 1 % / 4096 frames.
    return got < wanted - max(4096, 0.01 * wanted)


def _wav_data_is_short(path: Path) -> bool:
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return False  # RF64/W64 etc.: trust libsndfile
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF mark "unknown length" in streamed WAVs.
                return chunk_size not in (0, 0xFFFFFFFF) and pos + 8 + chunk_size > size
            pos += 8 + chunk_size + (chunk_size & 1)
    return False


# --------------------------------------------------------------------------- saving


def save_audio(
    path: PathLike,
    audio,
    sampling_rate: int,
    subtype: str | None = "PCM_16",
    *,
    protect: PathLike | Iterable[PathLike] | None = None,
) -> Path:
    """Write ``(samples,)`` or ``(channels, samples)`` audio (numpy or torch) atomically.

    The file is written to a temporary file in the same directory, fsynced and moved into
    place with ``os.replace``, so readers never see a half-written file and a failed write
    leaves any existing file untouched. Samples outside [-1, 1] are clipped with a warning.
    ``subtype`` falls back to the container's default when it does not fit (e.g. OGG).
    ``protect``: path(s) that must not be overwritten (typically the input file).
    """
    arr = _to_numpy(audio)
    if arr.ndim == 3 and arr.shape[0] == 1:  # a batch of one
        arr = arr[0]
    arr = _as_2d(validate_waveform(arr.astype(np.float32, copy=False), name=f"audio for {path}"))
    return write_audio_blocks(path, [arr], sampling_rate, subtype, protect=protect)


def write_audio_blocks(
    path: PathLike,
    blocks: Iterable,
    sampling_rate: int,
    subtype: str | None = "PCM_16",
    *,
    protect: PathLike | Iterable[PathLike] | None = None,
) -> Path:
    """:func:`save_audio` for audio given as consecutive ``(channels, n)`` blocks (numpy or torch),
    written as they come: memory holds one block. Same atomicity, clipping and formats; the
    channel count is the first block's."""
    path = Path(path)
    fmt, lossy_subtype = _FORMATS.get(path.suffix.lower(), (None, None))
    if fmt is None:
        raise AudioError(f"{path}: unsupported extension, use one of {', '.join(AUDIO_EXTENSIONS)}")
    protected = protected_by(path, protect)
    if protected is not None:
        raise AudioError(f"{path}: refusing to overwrite protected file {protected}")
    if subtype is None or not sf.check_format(fmt, subtype):
        subtype = lossy_subtype or sf.default_subtype(fmt)
    clipped = 0

    def write(f) -> None:
        nonlocal clipped
        out = None
        try:
            for block in blocks:
                arr = _as_2d(validate_waveform(_to_numpy(block).astype(np.float32, copy=False),
                                               name=f"audio for {path}", allow_empty=True))
                if arr.shape[0] > 32:
                    raise AudioError(f"{path}: {arr.shape[0]} channels; expected (channels, samples), not (samples, channels)?")
                if out is None:
                    out = sf.SoundFile(f, "w", samplerate=sampling_rate, channels=arr.shape[0], subtype=subtype,
                                       format=fmt)
                elif arr.shape[0] != out.channels:
                    raise AudioError(f"{path}: a block of {arr.shape[0]} channels after blocks of {out.channels}")
                over = int(np.count_nonzero(np.abs(arr) > 1.0))
                if over:
                    clipped += over
                    arr = np.clip(arr, -1.0, 1.0)
                out.write(arr.T)
            if out is None:
                raise AudioError(f"{path}: no audio to write")
        finally:
            if out is not None:
                out.close()

    try:
        atomic_write(path, write)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        if isinstance(e, AudioError):
            raise
        raise AudioError(f"{path}: could not write audio ({_short(e)})") from e
    if clipped:
        warnings.warn(f"{path}: clipped {clipped} samples outside [-1, 1]", stacklevel=2)
    return path
