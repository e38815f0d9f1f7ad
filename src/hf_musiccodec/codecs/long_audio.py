"""Encode and decode files of any length in bounded memory, with results equal to whole-file
processing.

``encode_blocks`` consumes the signal as an iterator of consecutive blocks (so the audio need not
be in memory: a file read block by block) and returns the codes of the whole signal;
``decode_blocks`` yields the audio as consecutive blocks. ``encode_long`` / ``decode_long`` are
the same machinery on whole tensors. Three modes, chosen from the codec's layers:

Non-causal codecs ("windows": DAC, the Fourier-domain bundled codec): the signal is cut into
windows of latent frames. Each window is extended on both sides by the receptive field of the
encoder (in samples) or decoder (in frames), plus a safety margin, and only its centre frames
are kept. A kept frame sees exactly
the samples it sees in a whole-file pass (windows start on hop boundaries, so every strided
layer keeps its phase, and the signal's true ends are processed with the same padding as
offline), so codes are identical and audio agrees to float rounding. Memory holds one window's
input and activations, and the codes.

Causal SEANet codecs ("stream": EnCodec 24 kHz, SoundStream): their LSTM gives them an unbounded
receptive field, so windows would not be exact; they are run through the streaming encoder and
decoder instead (``streaming.py``), which is exact and bounded.

A codec whose encoder streams but whose decoder does not (a causal SEANet encoder with an
``"istft"`` decoder) streams the encoder and decodes in windows.

Chunked codecs ("chunked": EnCodec 48 kHz): 1 s chunks with 1 % overlap, each with its own
scale, are encoded one at a time as their samples arrive, and decoded one at a time and cross-faded with
``linear_overlap_add``'s arithmetic (bit for bit): the samples before the next chunk's start are
final and are yielded.

The receptive field is computed from the layer configuration (``receptive_field``) by mapping
an output interval back through every convolution, and checked against a gradient probe in
the tests.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .modules.istft_decoder import InverseSTFT
from .modules.seanet import SConv1d, SConvTranspose1d, SLSTM
from .modules.stft_encoder import LogMagnitudeSTFT
from .modules.weight_norm import WeightNormConvTranspose1d
from .outputs import MusicCodecDecoderOutput, MusicCodecEncoderOutput

SAFETY_FRAMES = 2
DEFAULT_CHUNK_SECONDS = 5.0  # audio per window / streaming step: bounds the activations


def _layer_specs(module: nn.Module) -> list[tuple]:
    """The convolutions of ``module`` in forward order: ("conv", kernel, stride, dilation, left
    padding), ("convT", kernel, stride, left trim) or ("lstm",). Residual branches are in series
    with their main path here, which can only widen the computed field (a 1x1 shortcut adds none)."""
    specs, inside = [], set()
    for m in module.modules():
        if id(m) in inside:
            continue
        if isinstance(m, SConv1d):
            inside.update(id(c) for c in m.modules())
            left = m.padding_total if m.causal else m.padding_total - m.padding_total // 2
            specs.append(("conv", m.conv.kernel_size[0], m.stride, m.conv.dilation[0], left))
        elif isinstance(m, SConvTranspose1d):
            inside.update(id(c) for c in m.modules())
            specs.append(("convT", m.conv.kernel_size[0], m.conv.stride[0], m.trim[0]))
        elif isinstance(m, (nn.ConvTranspose1d, WeightNormConvTranspose1d)):
            specs.append(("convT", m.kernel_size[0], m.stride[0], m.padding[0]))
        elif isinstance(m, nn.Conv1d):
            specs.append(("conv", m.kernel_size[0], m.stride[0], m.dilation[0], m.padding[0]))
        elif isinstance(m, LogMagnitudeSTFT):  # framing = a conv of kernel n_fft at stride hop
            specs.append(("conv", m.n_fft, m.hop_length, 1, m.padding))
        elif isinstance(m, InverseSTFT):  # overlap-add of n_fft-long frames at hop, trimmed "same"
            specs.append(("convT", m.n_fft, m.hop_length, (m.n_fft - m.hop_length) // 2))
        elif isinstance(m, (SLSTM, nn.LSTM)):
            inside.update(id(c) for c in m.modules())
            specs.append(("lstm",))
    return specs


def _back(specs: list[tuple], lo: int, hi: int) -> tuple[float, float]:
    """Input interval that output interval [lo, hi] depends on."""
    for spec in reversed(specs):
        if spec[0] == "lstm":
            return -math.inf, math.inf
        if spec[0] == "conv":
            _, k, s, d, left = spec
            lo, hi = lo * s - left, hi * s - left + (k - 1) * d
        else:
            _, k, s, trim = spec
            lo, hi = -((-(lo + trim - k + 1)) // s), (hi + trim) // s
    return lo, hi


def receptive_field(model) -> dict:
    """Context each output needs on each side.

    ``encoder``: (left, right) input samples beyond the frame's own hop span that a latent
    frame depends on; ``decoder``: (left, right) latent frames beyond a sample's own frame that
    an output sample depends on. ``math.inf`` for recurrent models.
    """
    hop = model.config.hop_length
    far = 10_000  # a frame far from both ends: the field is the same for every such frame
    enc = _layer_specs(model.encoder)
    lo, hi = _back(enc, far, far)
    encoder = (far * hop - lo, hi - (far * hop + hop - 1))
    dec = _layer_specs(model.decoder)
    left = right = 0
    for phase in range(hop):
        lo, hi = _back(dec, far * hop + phase, far * hop + phase)
        left, right = max(left, far - lo), max(right, hi - far)
    return {"encoder": encoder, "decoder": (left, right)}


def margins(model, safety: int = SAFETY_FRAMES, parts=("encoder", "decoder")) -> dict:
    """Frames of context to add on each side of an encode / decode window, for each of ``parts``."""
    field = receptive_field(model)
    hop = model.config.hop_length
    out = {}
    for part in parts:
        left, right = field[part]
        if math.inf in (left, right):
            raise ValueError(f"this codec's {part} has a recurrent layer: its receptive field is unbounded")
        scale = hop if part == "encoder" else 1  # the encoder's field is in samples
        out[part] = (math.ceil(max(left, 0) / scale) + safety, math.ceil(max(right, 0) / scale) + safety)
    return out


def _mode(model, part: str) -> str:
    """How ``part`` ("encoder" or "decoder") of the codec runs on a long signal."""
    from .streaming import streaming_unsupported_reason

    cfg = model.config
    if cfg.chunk_length is not None:
        return "chunked"
    if streaming_unsupported_reason(cfg, part) is None:
        return "stream"
    if any(spec[0] == "lstm" for spec in _layer_specs(getattr(model, part))):
        raise ValueError(f"this codec's {part} is neither causal nor chunked and has an LSTM: it cannot be processed "
                         "in exact bounded-memory windows; use encode / decode")
    return "windows"


def _chunk_frames(model, chunk_seconds: float) -> int:
    if chunk_seconds <= 0:
        raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
    return max(1, round(chunk_seconds * model.config.frame_rate))


class _SampleBuffer:
    """The samples of a stream of (batch, channels, n) blocks from ``start`` on: a window of the
    signal read as far as needed, so that only a window's worth is ever held."""

    def __init__(self, blocks):
        self.blocks = iter(blocks)
        self.data: torch.Tensor | None = None
        self.pending: list[torch.Tensor] = []
        self.start = self.end = 0
        self.done = False

    def fill(self, upto: int) -> bool:
        """Read blocks until the buffer reaches sample ``upto``; False if the signal ends first."""
        while self.end < upto and not self.done:
            block = next(self.blocks, None)
            if block is None:
                self.done = True
            elif block.shape[-1]:
                self.pending.append(block)
                self.end += block.shape[-1]
        return self.end >= upto

    def _merge(self) -> None:
        if self.pending:
            parts = ([] if self.data is None else [self.data]) + self.pending
            self.data = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
            self.pending = []

    def get(self, a: int, b: int) -> torch.Tensor:
        """Samples [a, b) of the signal (a >= start)."""
        self._merge()
        return self.data[..., a - self.start: b - self.start]

    def drop(self, upto: int) -> None:
        """Forget the samples before ``upto``."""
        self._merge()
        if self.data is not None and upto > self.start:
            self.data = self.data[..., upto - self.start:]
            self.start = upto


def _pieces(blocks, size: int):
    """The blocks cut into pieces of at most ``size`` samples (bounds a streaming step's activations)."""
    for block in blocks:
        for start in range(0, block.shape[-1], size):
            yield block[..., start: start + size]


class _Growing:
    """Tensors appended along ``dim`` into one buffer that doubles when full. Thousands of small
    long-lived pieces (a window's codes) interleaved with each window's short-lived activations
    fragment the heap, and the process would grow with the length of the file."""

    def __init__(self, dim: int):
        self.dim, self.buffer, self.length = dim, None, 0

    def append(self, piece: torch.Tensor) -> None:
        n = piece.shape[self.dim]
        if self.buffer is None or self.length + n > self.buffer.shape[self.dim]:
            shape = list(piece.shape)
            shape[self.dim] = max(2 * (self.length + n), 64)
            grown = piece.new_empty(shape)
            if self.buffer is not None:
                grown.narrow(self.dim, 0, self.length).copy_(self.result())
            self.buffer = grown
        self.buffer.narrow(self.dim, self.length, n).copy_(piece)
        self.length += n

    def result(self) -> torch.Tensor:
        return self.buffer.narrow(self.dim, 0, self.length)


def _output(model, stacked: torch.Tensor, scales=None, last_pad: int = 0) -> MusicCodecEncoderOutput:
    codes, latents = (None, stacked) if model.quantizer is None else (stacked, None)
    return MusicCodecEncoderOutput(codes, scales or [None], last_pad, latents)


@torch.no_grad()
def encode_blocks(model, blocks, bandwidth=None, chunk_seconds: float = DEFAULT_CHUNK_SECONDS) -> MusicCodecEncoderOutput:
    """``model.encode`` of a signal given as an iterable of consecutive blocks, each
    ``(batch, channels, n)`` or ``(channels, n)`` (tensors or arrays of any lengths), holding only
    about ``chunk_seconds`` of it at a time; same output as ``encode`` of their concatenation.

    Windowed codecs keep a window and its context, streaming codecs one block, chunked codecs
    (EnCodec 48 kHz) one chunk; the codes of the whole signal are returned.
    """
    mode = _mode(model, "encoder")
    num_quantizers = model.num_quantizers_for_bandwidth(bandwidth)
    blocks = (model._check_input(torch.as_tensor(b)[None] if b.ndim == 2 else torch.as_tensor(b), allow_empty=True)
              for b in blocks)
    hop = model.config.hop_length
    step = _chunk_frames(model, chunk_seconds) * hop
    key = "latents" if model.quantizer is None else "audio_codes"
    if mode == "stream":
        codes = _Growing(dim=-1)
        with model.streaming() as stream:
            for piece in _pieces(blocks, step):
                codes.append(getattr(model.encode(piece, bandwidth=bandwidth), key))
            if stream.encoder is None:
                raise ValueError("input_values is empty (0 samples)")
        codes.append(getattr(stream.flushed, key))
        return _output(model, codes.result())

    buffer = _SampleBuffer(blocks)
    if mode == "chunked":  # EnCodec's chunks, one at a time: chunk i is x[i * stride: i * stride + length]
        length, stride = model.config.chunk_length, model.config.chunk_stride or model.config.chunk_length
        frames, scales, offset, last = _Growing(dim=0), _Growing(dim=0), 0, None
        while buffer.fill(offset + length) or offset < buffer.end:
            if last is not None:  # held back one chunk: only the last one is padded
                frames.append(last[None])
            last, scale = model._encode_frame(buffer.get(offset, offset + length), num_quantizers)
            if scale is not None:
                scales.append(scale[None])
            offset += stride
            buffer.drop(offset)
        if last is None:
            raise ValueError("input_values is empty (0 samples)")
        last_pad = frames.buffer.shape[-1] - last.shape[-1] if frames.length else 0
        frames.append(nn.functional.pad(last, (0, last_pad))[None])
        return _output(model, frames.result(), list(scales.result()) if scales.length else [None] * frames.length,
                       last_pad)

    # Windows: the latents of frames [a, b) from the samples of frames [a - left, b + right). A window
    # is complete once those samples are in; the window that reaches the end of the signal is cut
    # and padded there exactly as offline (which it can only be once the end is known).
    chunk = step // hop
    left, right = margins(model, parts=("encoder",))["encoder"]
    pieces, a = _Growing(dim=-1), 0
    while True:
        b = a + chunk
        ws = max(0, a - left)
        if buffer.fill((b + right) * hop):
            window = buffer.get(ws * hop, (b + right) * hop)
        else:
            frames = math.ceil(buffer.end / hop)
            if a >= frames:
                break
            b, we = min(b, frames), min(frames, b + right)
            window = buffer.get(ws * hop, buffer.end if we == frames else we * hop)
            if we == frames:
                window = model._pad_to_hop(window)
        latents = model.encoder(window)[..., a - ws: b - ws]
        pieces.append(latents if model.quantizer is None else model.quantizer.encode(latents, num_quantizers))
        a = b
        buffer.drop(max(0, a - left) * hop)
    if not pieces.length:
        raise ValueError("input_values is empty (0 samples)")
    return _output(model, pieces.result()[None])


@torch.no_grad()
def encode_long(model, input_values, padding_mask=None, bandwidth=None, chunk_seconds: float = DEFAULT_CHUNK_SECONDS):
    """``model.encode`` of a signal of any length in bounded memory; same output."""
    x = model._check_input(input_values)
    if padding_mask is not None:
        x = x * padding_mask.view(padding_mask.shape[0], -1, padding_mask.shape[-1]).to(x.dtype)
    step = _chunk_frames(model, chunk_seconds) * model.config.hop_length
    return encode_blocks(model, _pieces([x], step), bandwidth, chunk_seconds)


def _decoder_input(model, audio_codes, audio_scales, last_frame_pad_length, latents, mode: str):
    """The frames to decode, as ``(chunks, batch, ..., frames)``, and the scales, checked."""
    frames = model.decoder_frames(audio_codes, latents, "decode_blocks")
    scales = audio_scales if audio_scales is not None else [None] * len(frames)
    if len(scales) != len(frames):
        raise ValueError(f"got {len(frames)} chunks of codes but {len(scales)} scales")
    if mode != "chunked":
        if len(frames) != 1:
            raise ValueError(f"this codec does not chunk its input: expected 1 chunk of codes, got {len(frames)}")
        if any(s is not None for s in scales):
            raise ValueError("this codec has no per-chunk scales")
    if last_frame_pad_length:
        frames = list(frames)
        frames[-1] = frames[-1][..., :-last_frame_pad_length]
    return frames, scales


@torch.no_grad()
def decode_blocks(model, audio_codes=None, audio_scales=None, last_frame_pad_length=None, latents=None,
                  chunk_seconds: float = DEFAULT_CHUNK_SECONDS):
    """``model.decode`` as a generator of consecutive ``(batch, channels, n)`` audio blocks of about
    ``chunk_seconds`` each: concatenated they equal ``decode``'s output (to float rounding; chunked
    codecs bit for bit). Only the codes and one window of activations are held."""
    mode = _mode(model, "decoder")
    frames, scales = _decoder_input(model, audio_codes, audio_scales, last_frame_pad_length, latents, mode)
    if mode == "chunked":
        yield from _overlap_add_blocks(model, frames, scales)
        return
    frames = frames[0]
    chunk = _chunk_frames(model, chunk_seconds)
    total = frames.shape[-1]
    if total == 0:
        raise ValueError("no frames to decode")
    if mode == "stream":
        with model.streaming() as stream:
            for a in range(0, total, chunk):
                part = frames[..., a: a + chunk]
                out = model.decode(latents=part) if model.quantizer is None else model.decode(audio_codes=part)
                yield out.audio_values
        if stream.flushed is not None and stream.flushed.audio_values is not None:
            yield stream.flushed.audio_values
        return
    hop = model.config.hop_length
    left, right = margins(model, parts=("decoder",))["decoder"]
    for a in range(0, total, chunk):
        b = min(a + chunk, total)
        ws, we = max(0, a - left), min(total, b + right)
        part = frames[..., ws:we]
        latents = part.to(model.dtype) if model.quantizer is None else model.quantizer.decode(part)
        piece = model._full_length(model.decoder(latents), we - ws)
        yield piece[..., (a - ws) * hop: (b - ws) * hop]


def _overlap_add_blocks(model, frames, scales):
    """EnCodec's chunks decoded one at a time and cross-faded (``linear_overlap_add``'s arithmetic,
    bit for bit); the samples before the next chunk's start are final and are yielded."""
    if len(frames) == 1:  # ``decode`` does not overlap-add a single chunk
        yield model._decode_frame(frames[0], scales[0])
        return
    stride = model.config.chunk_stride
    out = weight_sum = weight = None
    for i, (frame, scale) in enumerate(zip(frames, scales)):
        audio = model._decode_frame(frame, scale)
        n = audio.shape[-1]
        if out is None:  # the first chunk is the longest: the window of unfinished samples
            t = torch.linspace(0, 1, n + 2, device=audio.device, dtype=audio.dtype)[1:-1]
            weight = 0.5 - (t - 0.5).abs()
            out = audio.new_zeros(audio.shape)
            weight_sum = audio.new_zeros(n)
        out[..., :n] += weight[:n] * audio
        weight_sum[:n] += weight[:n]
        done = n if i == len(frames) - 1 else stride
        yield out[..., :done] / weight_sum[:done]
        out = torch.cat([out[..., stride:], torch.zeros_like(out[..., :stride])], dim=-1)
        weight_sum = torch.cat([weight_sum[stride:], torch.zeros_like(weight_sum[:stride])])


@torch.no_grad()
def decode_long(model, audio_codes=None, audio_scales=None, padding_mask=None, last_frame_pad_length=None,
                latents=None, chunk_seconds: float = DEFAULT_CHUNK_SECONDS):
    """``model.decode`` of codes of any length in bounded memory; same output (to float rounding)."""
    audio, filled = None, 0
    for block in decode_blocks(model, audio_codes, audio_scales, last_frame_pad_length, latents, chunk_seconds):
        if audio is None:  # the output is the only full-length tensor
            audio = block.new_empty(*block.shape[:-1], _decoded_length(model, audio_codes, latents,
                                                                       last_frame_pad_length))
        audio[..., filled: filled + block.shape[-1]] = block
        filled += block.shape[-1]
    audio = audio[..., :filled]
    if padding_mask is not None and padding_mask.shape[-1] < audio.shape[-1]:
        audio = audio[..., : padding_mask.shape[-1]]
    return MusicCodecDecoderOutput(audio)


def _decoded_length(model, audio_codes, latents, last_frame_pad_length) -> int:
    """Samples ``decode`` returns: ``hop_length`` per frame, or EnCodec's overlap-added chunks."""
    frames = model.decoder_frames(audio_codes, latents, "decode_long")
    hop, count = model.config.hop_length, frames.shape[0]
    last = (frames.shape[-1] - (last_frame_pad_length or 0)) * hop
    return last if count == 1 else model.config.chunk_stride * (count - 1) + last


class LongAudioMixin:
    """``encode_long`` / ``decode_long`` for ``MusicCodecModel``: files of any length in bounded memory."""

    def encode_long(self, input_values: torch.Tensor, bandwidth: float | None = None, *,
                    padding_mask: torch.Tensor | None = None, chunk_seconds: float = DEFAULT_CHUNK_SECONDS) -> MusicCodecEncoderOutput:
        """``encode`` for signals of any length, in memory bounded by ``chunk_seconds`` of activations.

        Same output as ``encode`` (identical codes): DAC-like codecs encode windows of
        ``chunk_seconds`` extended by their receptive field and keep the centre frames; causal
        SEANet codecs stream; EnCodec 48 kHz already encodes 1 s chunks.
        """
        return encode_long(self, input_values, padding_mask, bandwidth, chunk_seconds)

    def decode_long(self, audio_codes: torch.Tensor | None = None, audio_scales: list | None = None, *,
                    padding_mask: torch.Tensor | None = None, last_frame_pad_length: int | None = None,
                    latents: torch.Tensor | None = None, chunk_seconds: float = DEFAULT_CHUNK_SECONDS) -> MusicCodecDecoderOutput:
        """``decode`` for codes of any length: only the output is held in full. Same output as
        ``decode`` to float rounding."""
        return decode_long(self, audio_codes, audio_scales, padding_mask, last_frame_pad_length, latents,
                           chunk_seconds)
