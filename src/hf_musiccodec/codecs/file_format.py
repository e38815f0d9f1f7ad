"""The ``.hfmc`` compressed-audio file: a codec's codes plus what is needed to decode them.

A file stores the discrete codes one :class:`~hf_musiccodec.codecs.MusicCodecModel` produced
for a waveform, bit-packed at ``ceil(log2(codebook_size))`` bits per code, behind a small
header that identifies the codec exactly (so a file is never decoded by a different model) and
records where the model came from, followed by a CRC32 (so corruption is detected rather than
decoded into noise).

Format, version 2 (all integers little-endian; offsets in bytes; ``N`` = name length, ``M`` =
metadata length)::

    offset   size  type       field
    0        4     bytes      magic b"HFMC"
    4        1     uint8      format version (2; readers accept 1 too)
    5        1     uint8      flags: bit 0 = scales present; the other bits must be 0
    6        1     uint8      N, length of the codec name (0..32)
    7        N     utf-8      codec name (display only; e.g. the model folder's name)
    7+N      16    bytes      codec fingerprint: SHA-256(canonical config JSON)[:8]
                              followed by SHA-256(weights)[:8]  (see codec_fingerprint)
    23+N     4     uint32     sampling rate (Hz) of the codes' audio (the codec's rate)
    27+N     1     uint8      audio channels
    28+N     4     uint32     length of the audio in samples per channel (decoded audio is cut to it)
    32+N     4     float32    bandwidth in kbps the codes were made at
    36+N     1     uint8      bits per code, b = ceil(log2(codebook_size)), 1..32
    37+N     2     uint16     batch size B (1 for a single file)
    39+N     4     uint32     number of chunks C (1 unless the codec encodes in chunks)
    43+N     2     uint16     number of quantizers (codebooks) Q
    45+N     4     uint32     frames per chunk F
    49+N     4     uint32     last_frame_pad_length P (0 <= P < F): padding frames of the last chunk
    53+N     2     uint16     M (version 2; absent in version 1)
    55+N     M     utf-8      metadata: empty or a JSON object, {"source": ...} (version 2)
    ...      4*C*B float32    scales, only if flag bit 0: for chunk 0..C-1, for item 0..B-1
    ...      K     bytes      codes, K = ceil(B*Q*(C*F - P) * b / 8)
    end-4    4     uint32     CRC32 (zlib.crc32) of every byte before it

Codes are written chunk by chunk; within a chunk in C order (batch item, quantizer, frame).
The last chunk's ``P`` padding frames are not stored (they are restored as zeros on reading),
so chunked codecs do not pay for padding. Each code is written most-significant bit first as
``b`` bits, codes are concatenated without gaps, and the final byte is zero-padded.

The fixed overhead is ``59 + N + M`` bytes. Sample counts are uint32: up to 24.8 h at 48 kHz.

Reading checks, in order: empty file, magic, version, header sanity and length (truncation),
CRC32, metadata, and (when a model is given) the codec fingerprint. Every failure raises
:class:`CompressedFileError` with a one-line message.

The fingerprint's config half hashes only what decides the decoded audio (see
:func:`canonical_config_json`), so a file outlives releases that add config options; the
weights half hashes, for each state_dict entry in sorted key order, its name, dtype, shape and
raw (little-endian) bytes. ``metadata["source"]`` (:func:`model_source`) lets ``decompress``
find the model without being told. Compatibility policy: ``docs/file_format.md``.

:func:`encode_audio_blocks` and :func:`decode_audio_blocks` are the places that turn audio into
codes and back, block by block in bounded memory (``long_audio.encode_blocks`` /
``decode_blocks``); :func:`encode_waveform` / :func:`decode_waveform` are their whole-array forms.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import math
import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Union

import numpy as np

from ..utils.files import atomic_write, protected_by
from .long_audio import DEFAULT_CHUNK_SECONDS, decode_blocks, encode_blocks

PathLike = Union[str, os.PathLike]

MAGIC = b"HFMC"
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)  # readers accept every earlier version
FINGERPRINT_SIZE = 16
MAX_NAME_BYTES = 32
FLAG_SCALES = 0x01
BUNDLED_PREFIX = "hf_musiccodec:"  # a model source naming a codec bundled with the package

_PREFIX = struct.Struct("<4sBBB")  # magic, version, flags, name length
_FIELDS = struct.Struct("<16sIBIfBHIHII")
_META_LEN = struct.Struct("<H")  # version 2: length of the metadata JSON that follows the fields
_CRC = struct.Struct("<I")
HEADER_OVERHEAD = _PREFIX.size + _FIELDS.size + _META_LEN.size + _CRC.size  # + name, metadata (+ scales)

# The constructor options of MusicCodecConfig when format version 1 was defined: version-1
# fingerprints hash exactly these, so version-1 files stay readable after the config gains options.
_V1_OPTIONS = (
    "architecture", "sampling_rate", "audio_channels", "hidden_size", "num_filters", "upsampling_ratios",
    "num_residual_layers", "kernel_size", "last_kernel_size", "residual_kernel_size", "dilation_growth_rate",
    "compress", "num_lstm_layers", "use_causal_conv", "pad_mode", "norm_type", "trim_right_ratio",
    "use_conv_shortcut", "final_activation", "decoder_hidden_size", "encoder_type", "encoder_hidden_size",
    "encoder_num_layers", "decoder_type", "decoder_num_layers", "istft_n_fft", "quantizer_type",
    "num_quantizers", "codebook_size", "codebook_dim", "target_bandwidths", "quantizer_dropout", "use_ema",
    "ema_decay", "kmeans_init", "kmeans_iters", "threshold_ema_dead_code", "commitment_weight",
    "codebook_weight", "normalize", "chunk_length_s", "overlap", "pad_to_hop",
)
# Training-only options: they change how a codec learns, never what its weights decode to.
_TRAINING_OPTIONS = frozenset({
    "quantizer_dropout", "ema_decay", "kmeans_init", "kmeans_iters", "threshold_ema_dead_code",
    "commitment_weight", "codebook_weight",
})

_CACHE_ATTR = "_hf_musiccodec_fingerprint_cache"
_PACK_BLOCK = 1 << 20  # codes per vectorised block (a multiple of 8 keeps blocks byte-aligned)


class CompressedFileError(ValueError):
    """A compressed file that cannot be used: empty, foreign, truncated, corrupted, wrong codec..."""


# --------------------------------------------------------------------------- container


@dataclasses.dataclass
class CompressedAudio:
    """The contents of a compressed file.

    ``audio_codes`` is ``(chunks, batch, num_quantizers, frames)`` int64, the last chunk padded
    with ``last_frame_pad_length`` zero frames exactly as ``MusicCodecModel.encode`` returns it;
    ``audio_scales`` is ``None`` or, per chunk, a float32 ``(batch, 1)`` array.
    """

    model_name: str
    fingerprint: bytes
    sampling_rate: int
    audio_channels: int
    num_samples: int
    bandwidth: float
    bits: int
    audio_codes: np.ndarray
    audio_scales: list | None = None
    last_frame_pad_length: int = 0
    version: int = FORMAT_VERSION
    source: str = ""  # where the model was loaded from (folder, hub id or BUNDLED_PREFIX + name); version 2

    @property
    def num_chunks(self) -> int:
        return int(self.audio_codes.shape[0])

    @property
    def batch_size(self) -> int:
        return int(self.audio_codes.shape[1])

    @property
    def num_quantizers(self) -> int:
        return int(self.audio_codes.shape[2])

    @property
    def frames(self) -> int:
        return int(self.audio_codes.shape[3])

    @property
    def duration(self) -> float:
        return self.num_samples / self.sampling_rate

    @property
    def num_codes(self) -> int:
        """Codes actually stored (the last chunk's padding excluded)."""
        return self.batch_size * self.num_quantizers * (self.num_chunks * self.frames - self.last_frame_pad_length)

    def nbytes(self) -> int:
        """Size of the serialised file."""
        return len(self.to_bytes())

    def bitrate(self, file_size: int | None = None) -> float:
        """kbps of the file: bytes * 8 / duration."""
        size = self.nbytes() if file_size is None else file_size
        return size * 8 / self.duration / 1000

    # ------------------------------------------------------------------ serialisation
    def to_bytes(self) -> bytes:
        codes = np.asarray(self.audio_codes)
        if codes.ndim != 4 or min(codes.shape) < 1:
            raise ValueError(f"audio_codes must be (chunks, batch, quantizers, frames) and non-empty, got {codes.shape}")
        chunks, batch, quantizers, frames = codes.shape
        pad = int(self.last_frame_pad_length or 0)
        if not 0 <= pad < frames:
            raise ValueError(f"last_frame_pad_length {pad} must be in [0, {frames})")
        if len(self.fingerprint) != FINGERPRINT_SIZE:
            raise ValueError(f"fingerprint must be {FINGERPRINT_SIZE} bytes, got {len(self.fingerprint)}")
        if not 1 <= self.bits <= 32:
            raise ValueError(f"bits per code must be in 1..32, got {self.bits}")
        _check_range("sampling_rate", self.sampling_rate, 1, 2**32 - 1)
        _check_range("audio_channels", self.audio_channels, 1, 255)
        _check_range("num_samples", self.num_samples, 1, 2**32 - 1)
        _check_range("batch size", batch, 1, 2**16 - 1)
        _check_range("chunks", chunks, 1, 2**32 - 1)
        _check_range("quantizers", quantizers, 1, 2**16 - 1)
        _check_range("frames", frames, 1, 2**32 - 1)
        if not (math.isfinite(self.bandwidth) and self.bandwidth > 0):
            raise ValueError(f"bandwidth must be a positive number, got {self.bandwidth}")
        if self.version not in SUPPORTED_VERSIONS:
            raise ValueError(f"cannot write format version {self.version} (known: {SUPPORTED_VERSIONS})")
        name = _encode_name(self.model_name)
        flags = FLAG_SCALES if self.audio_scales is not None else 0
        parts = [
            _PREFIX.pack(MAGIC, self.version, flags, len(name)),
            name,
            _FIELDS.pack(bytes(self.fingerprint), int(self.sampling_rate), int(self.audio_channels),
                         int(self.num_samples), float(self.bandwidth), int(self.bits), batch, chunks,
                         quantizers, frames, pad),
        ]
        # The version is kept (not upgraded) because the fingerprint's meaning depends on it.
        if self.version >= 2:
            metadata = _encode_metadata({"source": self.source} if self.source else {})
            parts += [_META_LEN.pack(len(metadata)), metadata]
        elif self.source:
            raise ValueError("format version 1 has no model source field")
        if self.audio_scales is not None:
            if len(self.audio_scales) != chunks or any(s is None for s in self.audio_scales):
                raise ValueError(f"expected one scale array per chunk ({chunks}), got {len(self.audio_scales)}")
            scales = np.stack([np.asarray(s, dtype=np.float32).reshape(batch) for s in self.audio_scales])
            parts.append(scales.astype("<f4").tobytes())
        if pad:  # the last chunk's padding frames are not stored
            codes = np.concatenate([codes[:-1].reshape(-1), codes[-1, ..., : frames - pad].reshape(-1)])
        parts.append(pack_codes(codes, self.bits))
        body = b"".join(parts)
        return body + _CRC.pack(zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "CompressedAudio":
        """Parse and check a serialised file; ``source`` prefixes error messages."""
        data = bytes(data)
        size = len(data)
        if size == 0:
            raise CompressedFileError(f"{source}: empty file (0 bytes)")
        if data[:4] != MAGIC:
            if size < len(MAGIC) and MAGIC.startswith(data):
                raise CompressedFileError(f"{source}: truncated file ({size} bytes)")
            raise CompressedFileError(
                f"{source}: not an hf-musiccodec compressed file (starts with {data[:4]!r}, expected {MAGIC!r})")
        if size < _PREFIX.size:
            raise CompressedFileError(f"{source}: truncated file ({size} bytes, shorter than the header)")
        _, version, flags, name_len = _PREFIX.unpack_from(data)
        if version not in SUPPORTED_VERSIONS:
            raise CompressedFileError(
                f"{source}: unsupported format version {version} (this hf-musiccodec reads version "
                f"{', '.join(map(str, SUPPORTED_VERSIONS))}); it was written by another release")
        fields_end = _PREFIX.size + name_len + _FIELDS.size
        header_end = fields_end + (_META_LEN.size if version >= 2 else 0)
        if size < header_end + _CRC.size:
            raise CompressedFileError(f"{source}: truncated file ({size} bytes, shorter than the header)")
        (fingerprint, sampling_rate, channels, num_samples, bandwidth, bits, batch, chunks,
         quantizers, frames, pad) = _FIELDS.unpack_from(data, _PREFIX.size + name_len)
        metadata_start = header_end
        if version >= 2:
            header_end += _META_LEN.unpack_from(data, fields_end)[0]
        problem = _header_problem(flags, name_len, sampling_rate, channels, num_samples, bandwidth, bits,
                                  batch, chunks, quantizers, frames, pad)
        if problem:
            raise CompressedFileError(f"{source}: corrupted header ({problem})")
        try:
            name = data[_PREFIX.size: _PREFIX.size + name_len].decode("utf-8")
        except UnicodeDecodeError:
            raise CompressedFileError(f"{source}: corrupted header (codec name is not UTF-8)") from None
        num_scales = chunks * batch if flags & FLAG_SCALES else 0
        count = batch * quantizers * (chunks * frames - pad)
        code_bytes = (count * bits + 7) // 8
        expected = header_end + 4 * num_scales + code_bytes + _CRC.size
        if size < expected:
            raise CompressedFileError(f"{source}: truncated file ({size} bytes, the header declares {expected})")
        if size > expected:
            raise CompressedFileError(
                f"{source}: corrupted file ({size - expected} unexpected bytes after the data, or a damaged header)")
        (stored_crc,) = _CRC.unpack_from(data, size - _CRC.size)
        actual_crc = zlib.crc32(memoryview(data)[: size - _CRC.size])
        if stored_crc != actual_crc:
            raise CompressedFileError(
                f"{source}: corrupted file (checksum mismatch: stored CRC32 {stored_crc:08x}, computed {actual_crc:08x})")
        try:
            metadata = _decode_metadata(data[metadata_start:header_end])
        except ValueError as e:
            raise CompressedFileError(f"{source}: corrupted header ({e})") from None
        scales = None
        offset = header_end
        if num_scales:
            arr = np.frombuffer(data, dtype="<f4", count=num_scales, offset=offset).astype(np.float32)
            scales = [row.reshape(batch, 1).copy() for row in arr.reshape(chunks, batch)]
            offset += 4 * num_scales
        flat = unpack_codes(memoryview(data)[offset: offset + code_bytes], bits, count)
        codes = np.zeros((chunks, batch, quantizers, frames), dtype=np.int64)
        head = (chunks - 1) * batch * quantizers * frames
        codes[:-1] = flat[:head].reshape(chunks - 1, batch, quantizers, frames)
        codes[-1, ..., : frames - pad] = flat[head:].reshape(batch, quantizers, frames - pad)
        return cls(model_name=name, fingerprint=bytes(fingerprint), sampling_rate=int(sampling_rate),
                   audio_channels=int(channels), num_samples=int(num_samples),
                   bandwidth=float(f"{bandwidth:.6g}"), bits=int(bits), audio_codes=codes,
                   audio_scales=scales, last_frame_pad_length=int(pad), version=int(version),
                   source=metadata.get("source", ""))


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= int(value) <= high:
        raise ValueError(f"{name} {value} does not fit the file format (allowed {low}..{high})")


def _header_problem(flags, name_len, sampling_rate, channels, num_samples, bandwidth, bits,
                    batch, chunks, quantizers, frames, pad) -> str | None:
    if flags & ~FLAG_SCALES:
        return f"unknown flags 0x{flags:02x}"
    if name_len > MAX_NAME_BYTES:
        return f"codec name of {name_len} bytes"
    for label, value in (("sampling rate", sampling_rate), ("channels", channels), ("length", num_samples),
                         ("batch size", batch), ("chunks", chunks), ("quantizers", quantizers),
                         ("frames", frames)):
        if value == 0:
            return f"{label} is 0"
    if not 1 <= bits <= 32:
        return f"{bits} bits per code"
    if not (math.isfinite(bandwidth) and bandwidth > 0):
        return f"bandwidth {bandwidth}"
    if pad >= frames:
        return f"last_frame_pad_length {pad} >= frames {frames}"
    return None


def _encode_metadata(metadata: dict) -> bytes:
    raw = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode("utf-8") if metadata else b""
    if len(raw) >= 1 << 16:
        raise ValueError(f"header metadata of {len(raw)} bytes does not fit the file format (max 65535)")
    return raw


def _decode_metadata(raw: bytes) -> dict:
    """The version-2 metadata: empty, or a JSON object whose unknown keys are ignored (so later
    releases may add keys without a version bump)."""
    if not raw:
        return {}
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("metadata is not UTF-8 JSON") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("source", ""), str):
        raise ValueError("metadata is not a JSON object with a string 'source'")
    return metadata


def _encode_name(name: str) -> bytes:
    raw = (name or "").encode("utf-8")
    if len(raw) <= MAX_NAME_BYTES:
        return raw
    # Cut at a character boundary: the name is for display, the fingerprint identifies the codec.
    return raw[:MAX_NAME_BYTES].decode("utf-8", errors="ignore").encode("utf-8")


# --------------------------------------------------------------------------- bit packing


def _word(bits: int):
    if bits <= 8:
        return 8, np.dtype(">u1")
    if bits <= 16:
        return 16, np.dtype(">u2")
    return 32, np.dtype(">u4")


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack non-negative integer codes (any shape, C order) at ``bits`` bits each, MSB first.

    The last byte is zero-padded. Raises ``ValueError`` for codes that do not fit in ``bits``.
    """
    if not 1 <= bits <= 32:
        raise ValueError(f"bits must be in 1..32, got {bits}")
    flat = np.asarray(codes).reshape(-1)
    if flat.size == 0:
        return b""
    if not np.issubdtype(flat.dtype, np.integer):
        raise ValueError(f"codes must be integers, got dtype {flat.dtype}")
    low, high = int(flat.min()), int(flat.max())
    if low < 0 or high >= 1 << bits:
        raise ValueError(f"codes must be in [0, {1 << bits}) to fit {bits} bits, got range [{low}, {high}]")
    width, dtype = _word(bits)
    out = []
    for start in range(0, flat.size, _PACK_BLOCK):
        words = flat[start: start + _PACK_BLOCK].astype(dtype)
        bit_matrix = np.unpackbits(words.view(np.uint8)).reshape(-1, width)[:, width - bits:]
        out.append(np.packbits(bit_matrix.reshape(-1)))
    return b"".join(block.tobytes() for block in out)


def unpack_codes(data, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: ``count`` codes as a 1-D int64 array."""
    if not 1 <= bits <= 32:
        raise ValueError(f"bits must be in 1..32, got {bits}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    buf = np.frombuffer(data, dtype=np.uint8)
    need = (count * bits + 7) // 8
    if buf.size < need:
        raise ValueError(f"{count} codes of {bits} bits need {need} bytes, got {buf.size}")
    width, dtype = _word(bits)
    out = np.empty(count, dtype=np.int64)
    block_bytes = _PACK_BLOCK * bits // 8
    for i, start in enumerate(range(0, count, _PACK_BLOCK)):
        n = min(_PACK_BLOCK, count - start)
        chunk = buf[i * block_bytes: i * block_bytes + (n * bits + 7) // 8]
        bit_matrix = np.unpackbits(chunk)[: n * bits].reshape(n, bits)
        padded = np.zeros((n, width), dtype=np.uint8)
        padded[:, width - bits:] = bit_matrix
        out[start: start + n] = np.packbits(padded, axis=1).reshape(-1).view(dtype)
    return out


# --------------------------------------------------------------------------- codec identity


def canonical_config_json(config, version: int = FORMAT_VERSION) -> str:
    """The part of a config that decides the decoded audio, as sorted, compact JSON.

    Version 2: every constructor option of the config's class except the training-only ones
    (loss weights, quantizer dropout, EMA / k-means settings), plus ``model_type``, with their
    effective values. An option unknown to version 2 (added to the class later) counts only when
    its value differs from its constructor default, so adding an option whose default keeps the
    old behaviour leaves every fingerprint unchanged. Bookkeeping (``_name_or_path``,
    ``transformers_version``, ``dtype``, ...) is not a constructor option and never counts.
    Version 1: the options of :data:`_V1_OPTIONS`, as version-1 files were written.
    """
    values = config.to_dict()
    if version == 1:
        canonical = {n: values[n] for n in _V1_OPTIONS if n in values}
    else:
        canonical = {n: values[n] for n, default in _constructor_defaults(type(config)).items()
                     if n in values and n not in _TRAINING_OPTIONS
                     and (n in _V1_OPTIONS or _json_value(values[n]) != _json_value(default))}
    canonical["model_type"] = values.get("model_type", getattr(config, "model_type", ""))
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)


def _constructor_defaults(cls) -> dict:
    """``{option: default}`` of the config class's constructor and its parents' below
    ``PretrainedConfig`` (whose own arguments are bookkeeping), the most derived class first."""
    from transformers import PretrainedConfig

    defaults = {}
    for klass in cls.__mro__:
        if klass is PretrainedConfig or not issubclass(klass, PretrainedConfig):
            break
        for n, p in inspect.signature(klass.__init__).parameters.items():
            if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                defaults.setdefault(n, p.default)
    return defaults


def _json_value(value):
    return json.loads(json.dumps(value, default=str))


def _weights_digest(state: dict) -> bytes:
    import torch

    h = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        h.update(key.encode("utf-8") + b"\0" + str(tensor.dtype).encode() + str(tuple(tensor.shape)).encode() + b"\0")
        h.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return h.digest()


def _cache_key(state: dict):
    try:
        return tuple((k, t.data_ptr(), t._version, str(t.dtype), tuple(t.shape)) for k, t in sorted(state.items()))
    except RuntimeError:  # inference-mode tensors have no version counter: do not cache
        return None


def codec_fingerprint(model, version: int = FORMAT_VERSION) -> bytes:
    """16 bytes identifying a codec: SHA-256 of its canonical config JSON for format ``version``
    (first 8 bytes) and of its weights (next 8 bytes).

    The weights digest is cached on the model and recomputed when any tensor of its state_dict
    is replaced or modified in place (tracked by the tensors' version counters).
    """
    config_digest = hashlib.sha256(canonical_config_json(model.config, version).encode("utf-8")).digest()
    state = model.state_dict()
    key = _cache_key(state)
    cached = getattr(model, _CACHE_ATTR, None)
    if key is not None and cached is not None and cached[0] == key:
        weights = cached[1]
    else:
        weights = _weights_digest(state)[:8]
        if key is not None:
            object.__setattr__(model, _CACHE_ATTR, (key, weights))
    return config_digest[:8] + weights


def codec_name(model) -> str:
    """A display name for a model: its folder (or hub id) name, else its ``model_type``."""
    path = getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", "") or ""
    name = os.path.basename(os.path.normpath(str(path))) if path else ""
    return name or str(getattr(model.config, "model_type", "codec"))


def model_source(model) -> str:
    """Where ``model`` was loaded from, for a file to record: ``hf_musiccodec:<name>`` for the
    package's default codec (valid wherever the package is installed), the absolute folder of a
    local model, the hub id of a hub model, or "" for a model built in memory."""
    from . import DEFAULT_CODEC, default_model_path

    path = str(getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", "") or "")
    if not path:
        return ""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return path
    folder = folder.resolve()
    if folder == Path(default_model_path()).resolve():
        return BUNDLED_PREFIX + DEFAULT_CODEC
    return str(folder)


def resolve_model_source(source: str) -> Path | None:
    """The local folder of a recorded :func:`model_source`, or ``None`` when it is not here
    (a moved folder, a hub model missing from the local cache, an unknown bundled name)."""
    from . import DEFAULT_CODEC, default_model_path

    if not source:
        return None
    if source.startswith(BUNDLED_PREFIX):
        folder = Path(default_model_path()) if source[len(BUNDLED_PREFIX):] == DEFAULT_CODEC else None
    elif Path(source).is_dir():
        folder = Path(source)
    else:
        try:  # a hub id: only the local cache counts (no downloads at run time)
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(source, local_files_only=True))
        except Exception:  # noqa: BLE001 - not a valid id, or not cached: either way not here
            folder = None
    return folder if folder is not None and (folder / "config.json").is_file() else None


def check_codec(compressed: CompressedAudio, model, source: str = "<bytes>", name: str | None = None) -> None:
    """Raise :class:`CompressedFileError` unless ``model`` is the codec that made ``compressed``."""
    expected, actual = compressed.fingerprint, codec_fingerprint(model, compressed.version)
    if expected != actual:
        name = name or codec_name(model)
        same_config, same_weights = expected[:8] == actual[:8], expected[8:] == actual[8:]
        detail = ("same configuration, different weights" if same_config else
                  "different configuration, same weights" if same_weights else "different configuration and weights")
        origin = f" from {compressed.source}" if compressed.source else ""
        raise CompressedFileError(
            f"{source}: made by codec '{compressed.model_name}'{origin}, not by the loaded codec '{name}' "
            f"({detail}; file {expected.hex()}, loaded {actual.hex()}): decode it with the model that made it")
    cfg = model.config
    if (compressed.sampling_rate, compressed.audio_channels, compressed.bits) != (
            cfg.sampling_rate, cfg.audio_channels, cfg.bits_per_codebook) or compressed.num_quantizers > cfg.num_quantizers:
        raise CompressedFileError(f"{source}: header does not match its codec's configuration (corrupted header)")


# --------------------------------------------------------------------------- model <-> file


def encode_audio_blocks(model, blocks: Iterable, bandwidth: float | None = None, *, name: str | None = None,
                        source: str | None = None, chunk_seconds: float = DEFAULT_CHUNK_SECONDS) -> CompressedAudio:
    """Encode audio given as consecutive blocks — each ``(samples,)``, ``(channels, samples)`` or
    ``(batch, channels, samples)`` at the model's sampling rate — into a :class:`CompressedAudio`,
    holding only about ``chunk_seconds`` of audio at a time (the codes are held: they are small).

    ``bandwidth`` (kbps) must be one of ``model.config.target_bandwidths``; ``None`` = highest.
    ``name`` / ``source``: the codec name and model source to record (default: from the model).
    Same codes as ``model.encode`` of the whole signal (see ``long_audio.encode_blocks``).
    """
    import torch

    cfg = model.config
    if getattr(model, "quantizer", None) is None or cfg.quantizer_type == "none":
        raise ValueError("this codec has no quantizer (a plain autoencoder): it cannot compress to codes")
    model.num_quantizers_for_bandwidth(bandwidth)  # validates the bandwidth with a helpful message
    used_bandwidth = float(max(cfg.target_bandwidths) if bandwidth is None else bandwidth)
    seen = {"shape": None, "samples": 0}

    def checked():
        for block in blocks:
            x = torch.as_tensor(block if torch.is_tensor(block) else np.asarray(block), dtype=torch.float32)
            if x.dim() < 3:
                x = x[None] if x.dim() == 2 else x[None, None]
            if x.dim() != 3:
                raise ValueError(f"audio must be (samples,), (channels, samples) or (batch, channels, samples), "
                                 f"got {tuple(x.shape)}")
            if seen["shape"] not in (None, tuple(x.shape[:2])):
                raise ValueError(f"audio blocks must keep their (batch, channels) {seen['shape']}, got {tuple(x.shape[:2])}")
            seen["shape"] = tuple(x.shape[:2])
            seen["samples"] += x.shape[-1]
            if seen["samples"] >= 2**32:
                raise ValueError(f"audio of {seen['samples']} samples is too long for the file format (max 2**32 - 1)")
            yield x.to(device=model.device, dtype=model.dtype)

    out = encode_blocks(model, checked(), bandwidth, chunk_seconds)
    codes = out.audio_codes.detach().cpu().numpy().astype(np.int64, copy=False)
    scales = out.audio_scales
    if scales is not None and all(s is None for s in scales):
        scales = None
    if scales is not None:
        scales = [s.detach().float().cpu().numpy().reshape(-1, 1) for s in scales]
    return CompressedAudio(
        model_name=codec_name(model) if name is None else name, fingerprint=codec_fingerprint(model),
        sampling_rate=int(cfg.sampling_rate), audio_channels=int(seen["shape"][1]), num_samples=seen["samples"],
        bandwidth=used_bandwidth, bits=int(math.ceil(math.log2(cfg.codebook_size))), audio_codes=codes,
        audio_scales=scales, last_frame_pad_length=int(out.last_frame_pad_length or 0),
        source=model_source(model) if source is None else source)


def encode_waveform(model, audio, bandwidth: float | None = None, *, name: str | None = None,
                    source: str | None = None) -> CompressedAudio:
    """Encode ``audio`` — ``(samples,)``, ``(channels, samples)`` or ``(batch, channels, samples)``
    at the model's sampling rate — into a :class:`CompressedAudio` (:func:`encode_audio_blocks`
    with one block: activations stay bounded however long the audio)."""
    return encode_audio_blocks(model, [audio], bandwidth, name=name, source=source)


def decode_audio_blocks(model, compressed: CompressedAudio, *, source: str = "<bytes>",
                        chunk_seconds: float = DEFAULT_CHUNK_SECONDS):
    """Decode a :class:`CompressedAudio` with ``model`` (checked against its fingerprint first) as
    consecutive float32 ``(batch, channels, n)`` blocks totalling ``num_samples``, holding only
    about ``chunk_seconds`` of audio at a time. Close the generator if you stop early (a streaming
    codec stays in its streaming state until then)."""
    import torch

    check_codec(compressed, model, source)
    codes = torch.from_numpy(compressed.audio_codes).to(model.device)
    scales = None
    if compressed.audio_scales is not None:
        scales = [torch.from_numpy(np.asarray(s)).to(device=model.device, dtype=model.dtype)
                  for s in compressed.audio_scales]
    return _cut(decode_blocks(model, codes, scales, compressed.last_frame_pad_length, chunk_seconds=chunk_seconds),
                compressed)


def _cut(blocks, compressed: CompressedAudio):
    """The decoded blocks as numpy, cut (or zero-padded) to the file's ``num_samples``."""
    remaining = compressed.num_samples
    with contextlib.closing(blocks):
        for block in blocks:  # consumed to the end, so that a streaming decode is flushed
            block = block[..., :remaining]
            if block.shape[-1]:
                remaining -= block.shape[-1]
                yield np.ascontiguousarray(block.detach().float().cpu().numpy(), dtype=np.float32)
    if remaining > 0:
        yield np.zeros((compressed.batch_size, compressed.audio_channels, remaining), dtype=np.float32)


def decode_waveform(model, compressed: CompressedAudio, *, source: str = "<bytes>") -> np.ndarray:
    """Decode a :class:`CompressedAudio` with ``model`` (checked against its fingerprint) to a
    float32 ``(batch, channels, num_samples)`` array."""
    audio = np.empty((compressed.batch_size, compressed.audio_channels, compressed.num_samples), dtype=np.float32)
    filled = 0
    for block in decode_audio_blocks(model, compressed, source=source):
        audio[..., filled: filled + block.shape[-1]] = block
        filled += block.shape[-1]
    return audio


# --------------------------------------------------------------------------- files


def write_compressed(path: PathLike, compressed: CompressedAudio, *,
                     protect: PathLike | Iterable[PathLike] | None = None) -> Path:
    """Write ``compressed`` to ``path`` atomically (temporary file in the same folder, fsync,
    ``os.replace``): readers never see a partial file and a failure leaves ``path`` untouched.

    ``protect``: path(s) that must not be overwritten (the input file); raises ``ValueError``.
    """
    path = Path(path)
    protected = protected_by(path, protect)
    if protected is not None:
        raise ValueError(f"{path}: refusing to overwrite the input file {protected}")
    data = compressed.to_bytes()
    try:
        atomic_write(path, lambda f: f.write(data))
    except OSError as e:
        raise OSError(e.errno, f"cannot write {path}: {e.strerror}") from e
    return path


def read_compressed(path: PathLike, model=None) -> CompressedAudio:
    """Read and check a compressed file; with ``model``, also check that it made the file.

    Raises :class:`CompressedFileError` (bad content) or ``OSError`` (missing / unreadable).
    """
    path = Path(path)
    with open(path, "rb") as f:
        data = f.read()
    compressed = CompressedAudio.from_bytes(data, source=str(path))
    if model is not None:
        check_codec(compressed, model, source=str(path))
    return compressed


