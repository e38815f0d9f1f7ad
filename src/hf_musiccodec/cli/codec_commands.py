"""``compress``, ``decompress`` and ``info``: audio <-> ``.hfmc`` files (see
``hf_musiccodec.codecs.file_format`` for the format).

Heavy imports (torch, transformers, the codec) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

PROG = "hf-musiccodec"


class CommandError(ValueError):
    """A command's refusal (overwrite of its input, missing model, ...): one line, exit status 2."""


def one_line(error, limit: int = 500) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def warn(message: str) -> None:
    print(f"{PROG}: warning: {one_line(message)}", file=sys.stderr)


# --------------------------------------------------------------------------- parsers


def add_codec_commands(subparsers) -> None:
    model_help = ("codec folder saved with save_pretrained (or a transformers EnCodec/DAC folder); "
                  "default: the package's default codec")
    p = subparsers.add_parser(
        "compress", help="encode an audio file into a compressed .hfmc file",
        description="Encode an audio file with a neural codec and write its bit-packed codes. The "
                    "audio is resampled to the codec's rate and its channels matched (with a warning).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="audio file (wav, flac, ogg, opus, mp3, aiff)")
    p.add_argument("output", metavar="OUTPUT", help="compressed file to write, e.g. song.hfmc")
    p.add_argument("--model", metavar="PATH", help=model_help)
    p.add_argument("--bandwidth", metavar="KBPS", type=float,
                   help="one of the codec's target bandwidths; default: the highest")
    p.set_defaults(handler=cmd_compress)

    p = subparsers.add_parser(
        "decompress", help="decode a .hfmc file back to audio",
        description="Decode a compressed file to audio at the codec's sampling rate. The codec must "
                    "be the one that made the file (checked by its fingerprint); without --model, the "
                    "model the file records is used.")
    p.add_argument("input", metavar="INPUT", help="compressed file made by 'compress'")
    p.add_argument("output", metavar="OUTPUT", help="audio file to write (.wav, .flac, .ogg, ...)")
    p.add_argument("--model", metavar="PATH",
                   help="codec folder; default: the model the file was made with (recorded in it), else the "
                        "package's default codec")
    p.set_defaults(handler=cmd_decompress)

    p = subparsers.add_parser(
        "info", help="print the header of a .hfmc file",
        description="Check a compressed file (structure and checksum) and print its header.")
    p.add_argument("file", metavar="FILE", help="compressed file")
    p.add_argument("--json", action="store_true", help="print the fields as JSON")
    p.set_defaults(handler=cmd_info)


# --------------------------------------------------------------------------- helpers


def refuse_same(input_path: Path, output_path: Path) -> None:
    from ..utils.files import same_path

    if same_path(input_path, output_path):
        raise CommandError(f"{output_path}: refusing to overwrite the input file")


def resolve_model_path(model: str | None) -> Path:
    if model is None:
        try:
            from ..codecs import default_model_path
        except ImportError:
            raise CommandError("no default codec in this installation: pass --model PATH") from None
        model = default_model_path()
    path = Path(model)
    if not path.exists():
        raise CommandError(f"{path}: codec folder not found")
    if not path.is_dir() or not (path / "config.json").is_file():
        raise CommandError(f"{path}: not a codec folder (expected a directory with config.json)")
    return path


@contextlib.contextmanager
def _quiet_transformers():
    """Hide transformers' progress bars and info logs while loading; restore them afterwards."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_codec(model: str | None):
    """The codec at ``model`` (default: ``hf_musiccodec.codecs.default_model_path()``), in eval mode."""
    path = resolve_model_path(model)
    from ..codecs import MusicCodecModel

    with _quiet_transformers():
        try:
            codec = MusicCodecModel.from_pretrained(str(path), local_files_only=True)
        except Exception as e:  # broken config/weights raise many types: report them as one line
            raise CommandError(f"{path}: cannot load the codec ({one_line(e, 300)})") from e
    if not codec.name_or_path:  # transformers EnCodec/DAC folders are converted on loading and forget it
        codec.name_or_path = codec.config.name_or_path = str(path)
    return codec.eval()


# --------------------------------------------------------------------------- commands


def cmd_compress(args) -> int:
    from ..audio.io import audio_info, read_audio_blocks
    from ..codecs.file_format import encode_audio_blocks, write_compressed

    source, target = Path(args.input), Path(args.output)
    refuse_same(source, target)
    codec = load_codec(args.model)
    cfg = codec.config
    if cfg.quantizer_type == "none":
        raise CommandError("this codec has no quantizer (a plain autoencoder): it cannot compress")
    codec.num_quantizers_for_bandwidth(args.bandwidth)  # an unsupported bandwidth fails before decoding
    info = audio_info(source)
    if info.channels != cfg.audio_channels:
        warn(f"{source}: converting {info.channels} channel(s) to the codec's {cfg.audio_channels}")
    if info.samplerate != cfg.sampling_rate:
        warn(f"{source}: resampling from {info.samplerate} Hz to the codec's {cfg.sampling_rate} Hz")
    # Read, resample and encode block by block: memory holds the codes, not the audio.
    blocks = read_audio_blocks(source, cfg.sampling_rate, cfg.audio_channels)
    compressed = encode_audio_blocks(codec, blocks, args.bandwidth)
    write_compressed(target, compressed, protect=[source])
    size = target.stat().st_size
    print(f"{target}: {compressed.duration:.2f} s, codec '{compressed.model_name}' at "
          f"{compressed.bandwidth:g} kbps, {size} bytes ({compressed.bitrate(size):.3f} kbps)")
    return 0


def model_for_file(compressed, path: Path) -> str | None:
    """The model to decode ``compressed`` with when none is given: the one the file records, or
    the default codec for files that record none (format version 1)."""
    from ..codecs.file_format import resolve_model_source

    if not compressed.source:
        return None
    folder = resolve_model_source(compressed.source)
    if folder is None:
        raise CommandError(f"{path}: made with codec '{compressed.model_name}' from {compressed.source}, which is "
                           f"not found here: pass --model PATH (that codec's folder)")
    return str(folder)


def cmd_decompress(args) -> int:
    from ..audio.io import AUDIO_EXTENSIONS, write_audio_blocks
    from ..codecs.file_format import decode_audio_blocks, read_compressed

    source, target = Path(args.input), Path(args.output)
    refuse_same(source, target)
    if target.suffix.lower() not in AUDIO_EXTENSIONS:
        raise CommandError(f"{target}: unsupported output extension, use one of {', '.join(AUDIO_EXTENSIONS)}")
    compressed = read_compressed(source)  # structure and checksum, before loading any model
    if compressed.batch_size != 1:
        raise CommandError(f"{source}: holds a batch of {compressed.batch_size} signals; "
                           "decode it with hf_musiccodec.codecs.file_format.decode_waveform")
    codec = load_codec(args.model if args.model is not None else model_for_file(compressed, source))
    blocks = decode_audio_blocks(codec, compressed, source=str(source))  # checks the fingerprint first
    write_audio_blocks(target, (block[0] for block in blocks), compressed.sampling_rate, protect=[source])
    print(f"{target}: {compressed.duration:.2f} s, {compressed.audio_channels} channel(s) at "
          f"{compressed.sampling_rate} Hz, decoded with codec '{compressed.model_name}'")
    return 0


def info_fields(compressed, path: Path, size: int) -> dict:
    fp = compressed.fingerprint
    return {
        "file": str(path),
        "file_bytes": size,
        "format_version": compressed.version,
        "codec": compressed.model_name,
        "source": compressed.source,
        "fingerprint": fp.hex(),
        "config_digest": fp[:8].hex(),
        "weights_digest": fp[8:].hex(),
        "sampling_rate": compressed.sampling_rate,
        "channels": compressed.audio_channels,
        "num_samples": compressed.num_samples,
        "duration_s": round(compressed.duration, 6),
        "bandwidth_kbps": compressed.bandwidth,
        "file_bitrate_kbps": round(compressed.bitrate(size), 4),
        "bits_per_code": compressed.bits,
        "codes_shape": list(compressed.audio_codes.shape),
        "last_frame_pad_length": compressed.last_frame_pad_length,
        "has_scales": compressed.audio_scales is not None,
    }


def cmd_info(args) -> int:
    from ..codecs.file_format import read_compressed

    path = Path(args.file)
    compressed = read_compressed(path)
    fields = info_fields(compressed, path, path.stat().st_size)
    if args.json:
        print(json.dumps(fields, indent=2))
        return 0
    chunks, batch, quantizers, frames = fields["codes_shape"]
    lines = [
        ("file", f"{path} ({fields['file_bytes']} bytes, format version {fields['format_version']})"),
        ("codec", fields["codec"] or "(unnamed)"),
        ("model source", fields["source"] or ("(not recorded)" if compressed.version >= 2 else
                                              "(not recorded: format version 1)")),
        ("fingerprint", f"{fields['config_digest']} {fields['weights_digest']} (config, weights)"),
        ("sample rate", f"{fields['sampling_rate']} Hz"),
        ("channels", str(fields["channels"])),
        ("duration", f"{compressed.duration:.3f} s ({fields['num_samples']} samples)"),
        ("bandwidth", f"{fields['bandwidth_kbps']:g} kbps (nominal)"),
        ("file bitrate", f"{fields['file_bitrate_kbps']:.3f} kbps"),
        ("codes", f"{chunks} chunk(s) x {batch} item(s) x {quantizers} codebook(s) x {frames} frames, "
                  f"{fields['bits_per_code']} bits each"
                  + (f", last chunk padded by {fields['last_frame_pad_length']}" if fields["last_frame_pad_length"] else "")),
        ("scales", "per chunk (float32)" if fields["has_scales"] else "none"),
    ]
    width = max(len(k) for k, _ in lines) + 1
    for key, value in lines:
        print(f"{key + ':':<{width}} {value}")
    return 0
