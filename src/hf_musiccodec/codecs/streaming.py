"""Streaming encode and decode for the causal SEANet codecs (EnCodec 24 kHz, SoundStream).

Inside ``with model.streaming():`` each ``model.encode(chunk)`` returns the codes of the latent
frames completed by the samples received so far, and each ``model.decode(codes)`` the audio of
the frames received so far. Chunks may have any length, including 0 and lengths that are not
multiples of the hop.

What "equal to offline" means
-----------------------------
Offline, every causal conv of the model reflect-pads its *whole* input: on the left by
``kernel - stride`` samples (a reflection of the signal's start), and on the right by the
"extra padding" that completes the last partial frame (a reflection of the signal's end).
A streamed layer therefore emits an output only when its value is final:

* at the start it waits until it has ``padding + 1`` inputs, the samples the left reflection
  copies, then emits every output those inputs determine (a start-up delay only: once the first
  outputs are out, the stream runs with no extra delay; with EnCodec's kernels the first codes
  come out after about 7 frames, 93 ms, and then one frame per hop);
* it never emits an output whose window reaches past the samples received (a partial frame);
* ``model.flush()`` (or leaving the ``with`` block) ends the signal: each layer then pads its
  input on the right exactly as offline and emits the rest, including the last partial frame.

Concatenated over the whole stream plus the flush, the codes equal offline ``encode`` and the
audio equals offline ``decode``, float rounding aside: chunks of a few frames run the LSTM a
step at a time and small convs through other kernels than the long offline pass, which moves
values by about 1e-7 relative, so codes are identical unless a latent lies within that of a
tie between two codes (never seen in the tests; about 1e-7 max audio difference at full size).
Every layer
keeps its own state: the unconsumed tail of its input for convs, ``(h, c)`` for the LSTM, the
not-yet-final overlap-add tail for transposed convs (EnCodec trims all their padding on the
right, ``trim_right_ratio=1``, so the last ``kernel - stride`` samples of each chunk's output
wait for the next frame's contribution), and the shortcut branch of each residual block is
buffered until the conv branch catches up.

Steady-state algorithmic latency: one hop (``hop_length / sampling_rate``, 13.3 ms at 24 kHz),
the time to collect a frame's samples; the decoder adds none (a causal transposed conv emits a
frame's samples as soon as the frame arrives). Streaming is inference only (no gradients).

Threads: a chunk of a few frames is many small ops, and on a busy CPU every op that torch splits
over several threads can wait a scheduler time slice for a descheduled one (measured on 2 loaded
cores: 20 ms chunks took a median 24 ms on one thread, 36-120 ms on two). The library leaves
torch's process-wide thread count alone; a latency-bound streaming application should call
``torch.set_num_threads(1)`` itself.
"""

from __future__ import annotations

import torch
from torch import nn

from .modules.seanet import SConv1d, SConvTranspose1d, SEANetResnetBlock, SLSTM

_CL = torch.channels_last


def _cat(a: torch.Tensor | None, b: torch.Tensor) -> torch.Tensor:
    if a is None or a.shape[-1] == 0:
        return b
    if b.shape[-1] == 0:
        return a
    return torch.cat([a, b], dim=-1).contiguous(memory_format=_CL)


def _empty(batch: int, channels: int, like: torch.Tensor) -> torch.Tensor:
    return torch.empty((batch, channels, 1, 0), dtype=like.dtype, device=like.device)


def streaming_unsupported_reason(config, part: str = "both") -> str | None:
    """Why this configuration cannot stream exactly (``part``: "encoder", "decoder" or "both"), or
    ``None`` if it can."""
    if part != "encoder" and config.decoder_type == "istft":
        return "the iSTFT decoder is not causal (its ConvNeXt blocks and overlapping frames look ahead)"
    if part != "decoder" and config.encoder_type == "stft":
        return "the STFT encoder is not causal (its ConvNeXt blocks and centred frames look ahead)"
    if config.architecture != "seanet":
        return "only the causal SEANet codecs (EnCodec 24 kHz, SoundStream) stream; DAC is not causal"
    if not config.use_causal_conv:
        return "this SEANet configuration is not causal (use_causal_conv=False)"
    if config.norm_type != "weight_norm":
        return f"norm_type={config.norm_type!r} normalises over time and cannot stream"
    if config.chunk_length is not None or config.normalize:
        return "chunked / RMS-normalised codecs (EnCodec 48 kHz) cannot stream frame by frame"
    return None


class _ConvStream:
    """A causal ``SConv1d`` (optionally preceded by an ELU) on a stream."""

    def __init__(self, conv: SConv1d, pre_elu: bool):
        if not conv.causal or hasattr(conv, "norm"):
            raise ValueError("streaming needs causal, weight-normalised convolutions")
        self.conv, self.pre_elu = conv, pre_elu
        self.kernel, self.stride, self.left = conv.effective_kernel, conv.stride, conv.padding_total
        if conv.pad_mode == "reflect" and self.left and self.left < self.stride - 1:
            raise NotImplementedError("reflect padding shorter than stride - 1 is not supported in streaming")
        self.out_channels = conv.conv.out_channels
        self.length = 0                  # input samples received
        self.pending: torch.Tensor | None = None  # inputs before the left padding can be built
        self.buffer: torch.Tensor | None = None   # padded input not yet consumed
        self.tail: torch.Tensor | None = None     # the last stride + 1 inputs (right padding)
        # The right padding (at most stride - 1 samples) reflects the last inputs: the buffer
        # always holds the last ``left`` of them, enough unless left < stride.
        self.keep_tail = self.stride > 1 and self.left < self.stride

    def _frames(self) -> torch.Tensor:
        buffer = self.buffer
        count = (buffer.shape[-1] - self.kernel) // self.stride + 1 if buffer.shape[-1] >= self.kernel else 0
        if count <= 0:
            return _empty(buffer.shape[0], self.out_channels, buffer)
        y = self.conv.conv.forward_cl(buffer[..., : (count - 1) * self.stride + self.kernel])
        self.buffer = buffer[..., count * self.stride:]
        return y

    def step(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == 0 and self.buffer is not None:
            return _empty(x.shape[0], self.out_channels, x)
        if self.pre_elu and x.shape[-1]:
            x = nn.functional.elu(x)
        self.length += x.shape[-1]
        if self.keep_tail:
            self.tail = _cat(self.tail, x)[..., -(self.stride + 1):]
        if self.buffer is None:
            self.pending = _cat(self.pending, x)
            need = self.left + 1 if self.conv.pad_mode == "reflect" else 0
            if self.pending.shape[-1] < max(need, 1):
                return _empty(x.shape[0], self.out_channels, x)
            p, self.pending = self.pending, None
            left = self.left
            if left:  # the offline left padding of the signal's start
                if self.conv.pad_mode == "reflect":
                    head = p[..., 1: left + 1].flip(-1)
                elif self.conv.pad_mode == "replicate":
                    head = p[..., :1].expand(-1, -1, -1, left)
                else:
                    head = torch.zeros_like(p[..., :1]).expand(-1, -1, -1, left)
                p = torch.cat([head, p], dim=-1)
            self.buffer = p.contiguous(memory_format=_CL)
        else:
            self.buffer = _cat(self.buffer, x)
        return self._frames()

    def flush(self, x: torch.Tensor) -> torch.Tensor:
        y = self.step(x)
        if self.buffer is None:  # too short to have started: run the offline conv on all of it
            p, self.pending = self.pending, None
            if p is None or p.shape[-1] == 0:
                return y
            return _cat(y, self.conv.forward_cl(p.contiguous(memory_format=_CL)))
        extra = self.conv.extra_padding(self.length)
        if extra > 0:
            tail = self.tail if self.keep_tail else self.buffer
            if self.conv.pad_mode == "reflect":
                right = tail[..., tail.shape[-1] - 1 - extra: tail.shape[-1] - 1].flip(-1)
            elif self.conv.pad_mode == "replicate":
                right = tail[..., -1:].expand(-1, -1, -1, extra)
            else:
                right = torch.zeros_like(tail[..., :1]).expand(-1, -1, -1, extra)
            self.buffer = _cat(self.buffer, right.contiguous(memory_format=_CL))
        return _cat(y, self._frames())


class _ConvTransposeStream:
    """A causal ``SConvTranspose1d``: overlap-adds each chunk's output onto the previous tail."""

    def __init__(self, conv: SConvTranspose1d):
        if hasattr(conv, "norm"):
            raise ValueError("streaming needs weight-normalised transposed convolutions")
        self.conv = conv.conv
        self.stride = self.conv.stride[0]
        self.overlap = self.conv.kernel_size[0] - self.stride
        self.trim_left, _ = conv.trim
        self.out_channels = self.conv.out_channels
        self.tail: torch.Tensor | None = None  # sums of the last frames' outputs, not final yet
        self.emitted = 0                       # samples of the untrimmed output emitted or dropped

    def _bias(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.conv.bias is None else y.add_(self.conv.bias.view(1, -1, 1, 1))

    def _emit(self, y: torch.Tensor) -> torch.Tensor:
        drop = max(0, self.trim_left - self.emitted)  # the offline left trim of the signal's start
        self.emitted += y.shape[-1]
        return y[..., drop:] if drop else y

    def step(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == 0:
            return _empty(x.shape[0], self.out_channels, x)
        y = self.conv.forward_cl(x, bias=False)  # (n - 1) * stride + kernel samples
        if self.tail is not None and self.overlap:
            y[..., : self.overlap] += self.tail
        ready = x.shape[-1] * self.stride
        self.tail = y[..., ready:].clone(memory_format=_CL)
        return self._emit(self._bias(y[..., :ready].contiguous(memory_format=_CL)))

    def flush(self, x: torch.Tensor) -> torch.Tensor:
        y = self.step(x)
        if self.tail is None or not self.trim_left:
            return y  # offline trims the whole tail (trim_right_ratio=1)
        # Offline keeps trim_left samples past the last frame's stride (trim_right_ratio < 1).
        keep = self._bias(self.tail[..., : self.trim_left].clone(memory_format=_CL))
        return _cat(y, self._emit(keep))


class _LSTMStream:
    def __init__(self, lstm: SLSTM):
        self.lstm, self.state = lstm, None

    def step(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == 0:
            return x
        y, self.state = self.lstm.forward_cl(x, self.state)
        return y

    flush = step


class _PointwiseStream:
    def __init__(self, fn):
        self.fn = fn

    def step(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) if x.shape[-1] else x

    flush = step


class _ResnetBlockStream:
    """Conv branch and shortcut branch on a stream; the shortcut waits for the conv branch."""

    def __init__(self, block: SEANetResnetBlock):
        layers = list(block.block)
        if len(layers) != 4 or not all(isinstance(layers[i], nn.ELU) for i in (0, 2)):
            raise ValueError("unexpected SEANet residual block layout")
        self.first = _ConvStream(layers[1], pre_elu=True)
        self.second = _ConvStream(layers[3], pre_elu=True) if layers[3].effective_kernel > 1 else layers[3]
        self.shortcut = _ConvStream(block.shortcut, pre_elu=False) if isinstance(block.shortcut, SConv1d) else None
        self.pending: torch.Tensor | None = None  # shortcut outputs waiting for the conv branch

    def _combine(self, x: torch.Tensor, h: torch.Tensor, final: bool) -> torch.Tensor:
        if self.shortcut is None:
            s = x.clone(memory_format=_CL) if x.shape[-1] else x
        else:
            s = self.shortcut.flush(x) if final else self.shortcut.step(x)
        self.pending = _cat(self.pending, s)
        if isinstance(self.second, SConv1d):
            if h.shape[-1] == 0:
                return h
            # ELU in place (h is ours), then the 1x1 conv accumulates into the shortcut, as offline.
            m = h.shape[-1]
            residual = self.pending[..., :m].contiguous(memory_format=_CL)
            self.pending = self.pending[..., m:]
            return self.second.forward_cl(nn.functional.elu(h, inplace=True), residual=residual)
        y = self.second.flush(h) if final else self.second.step(h)
        m = y.shape[-1]
        out = y.add_(self.pending[..., :m])
        self.pending = self.pending[..., m:]
        return out

    def step(self, x: torch.Tensor) -> torch.Tensor:
        return self._combine(x, self.first.step(x), final=False)

    def flush(self, x: torch.Tensor) -> torch.Tensor:
        return self._combine(x, self.first.flush(x), final=True)


class LayerStream:
    """A SEANet encoder or decoder (its ``layers``) run on a stream of (B, C, 1, n) chunks."""

    def __init__(self, layers: nn.ModuleList):
        self.ops = []
        items = list(layers)
        i = 0
        while i < len(items):
            layer = items[i]
            if isinstance(layer, nn.ELU) and i + 1 < len(items) and isinstance(items[i + 1], SConv1d):
                self.ops.append(_ConvStream(items[i + 1], pre_elu=True))
                i += 2
                continue
            if isinstance(layer, SConv1d):
                self.ops.append(_ConvStream(layer, pre_elu=False))
            elif isinstance(layer, SConvTranspose1d):
                self.ops.append(_ConvTransposeStream(layer))
            elif isinstance(layer, SLSTM):
                self.ops.append(_LSTMStream(layer))
            elif isinstance(layer, SEANetResnetBlock):
                self.ops.append(_ResnetBlockStream(layer))
            elif isinstance(layer, nn.ELU):
                self.ops.append(_PointwiseStream(nn.functional.elu))
            elif isinstance(layer, nn.Tanh):
                self.ops.append(_PointwiseStream(torch.tanh))
            else:
                raise ValueError(f"cannot stream layer {type(layer).__name__}")
            i += 1

    def step(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op.step(x)
        return x

    def flush(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op.flush(x)
        return x


class CodecStream:
    """State of one ``model.streaming()`` session (encoder and decoder sides are independent).

    ``flushed`` holds the output of the final flush (``MusicCodecStreamOutput``) once the stream
    has been flushed, by ``model.flush()`` or by leaving the ``with`` block.
    """

    def __init__(self):
        self.encoder: LayerStream | None = None
        self.decoder: LayerStream | None = None
        self.samples_in = 0          # audio samples given to encode
        self.num_quantizers: int | None = None
        self.input_shape: tuple | None = None   # (batch, channels) of the encoded chunks
        self.decoder_batch: int | None = None
        self.flushed = None

    def reset(self) -> None:
        """Forget the signal (after a flush): the next chunk starts a new one."""
        self.encoder = self.decoder = None
        self.samples_in = 0
        self.num_quantizers = None
        self.input_shape = self.decoder_batch = None
