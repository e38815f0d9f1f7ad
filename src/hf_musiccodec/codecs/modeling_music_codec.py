"""``MusicCodecModel``: one ``PreTrainedModel`` for the codec family, with the API of
transformers' ``EncodecModel`` (``encode``/``decode``), plus what training needs in ``forward``."""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init

from .configuration_music_codec import MusicCodecConfig
from .long_audio import LongAudioMixin
from .outputs import MusicCodecDecoderOutput, MusicCodecEncoderOutput, MusicCodecOutput, MusicCodecStreamOutput
from .modules.dac_blocks import DacDecoder, DacEncoder, Snake1d
from .modules.convnext import ConvNeXtBlock
from .modules.istft_decoder import ISTFTDecoder
from .modules.quantization import EuclideanVectorQuantizer, FactorizedVectorQuantizer, ResidualVectorQuantizer
from .modules.quantization.euclidean import EuclideanCodebook
from .modules.stft_encoder import STFTEncoder
from .modules.seanet import SEANetDecoder, SEANetEncoder
from .modules.weight_norm import _norm_except_dim0, _WeightNormMixin, from_channels_last_1d, to_channels_last_1d
from .streaming import CodecStream, LayerStream, streaming_unsupported_reason


class MusicCodecPreTrainedModel(PreTrainedModel):
    config_class = MusicCodecConfig
    base_model_prefix = "music_codec"
    main_input_name = "input_values"
    input_modalities = "audio"

    @torch.no_grad()
    def _init_weights(self, module):
        if isinstance(module, _WeightNormMixin):
            init.kaiming_uniform_(module.weight_v, a=math.sqrt(5))
            init.copy_(module.weight_g, _norm_except_dim0(module.weight_v))
        elif isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
        elif isinstance(module, Snake1d):
            init.ones_(module.alpha)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight)
        elif isinstance(module, nn.Linear):  # ConvNeXt trunks' pointwise layers and heads (Vocos' init)
            init.trunc_normal_(module.weight, std=0.02)
            init.zeros_(module.bias)
        elif isinstance(module, ConvNeXtBlock):
            init.constant_(module.gamma, module.layer_scale)
        elif isinstance(module, (nn.GroupNorm, nn.LayerNorm)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.LSTM):
            for name, param in module.named_parameters():
                bound = 1 / math.sqrt(module.hidden_size)
                init.uniform_(param, -bound, bound)
        elif isinstance(module, EuclideanCodebook) and not module.inited.item():
            init.zeros_(module.cluster_size)
        if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)) and module.bias is not None:
            fan_in = module.in_channels * module.kernel_size[0] // module.groups
            if isinstance(module, nn.ConvTranspose1d):
                fan_in = module.out_channels * module.kernel_size[0] // module.groups
            init.uniform_(module.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))


def build_quantizer(config: MusicCodecConfig) -> ResidualVectorQuantizer | None:
    if config.quantizer_type == "none":
        return None
    if config.quantizer_type == "factorized":
        layers = [FactorizedVectorQuantizer(config.hidden_size, config.codebook_size, config.codebook_dim)
                  for _ in range(config.num_quantizers)]
    else:
        layers = [EuclideanVectorQuantizer(
            config.hidden_size, config.codebook_size, use_ema=config.use_ema, decay=config.ema_decay,
            kmeans_init=config.kmeans_init, kmeans_iters=config.kmeans_iters,
            threshold_ema_dead_code=config.threshold_ema_dead_code) for _ in range(config.num_quantizers)]
    return ResidualVectorQuantizer(layers, config.quantizer_dropout)


class MusicCodecModel(LongAudioMixin, MusicCodecPreTrainedModel):
    """A waveform codec: ``encode`` to codes, ``decode`` back to audio, ``forward`` to train.

    Loads its own checkpoints and, through ``from_pretrained``, transformers' EnCodec and DAC
    checkpoints (``model_type`` ``encodec`` / ``dac``), converting them on the fly.
    """

    def __init__(self, config: MusicCodecConfig):
        super().__init__(config)
        dac = config.architecture == "dac"
        if config.encoder_type == "stft":
            self.encoder = STFTEncoder(config)
        else:
            self.encoder = DacEncoder(config) if dac else SEANetEncoder(config)
        if config.decoder_type == "istft":
            self.decoder = ISTFTDecoder(config)
        else:
            self.decoder = DacDecoder(config) if dac else SEANetDecoder(config)
        self.quantizer = build_quantizer(config)
        self.post_init()

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        from .conversion.hub_layout import foreign_model_type, load_foreign_checkpoint

        model_type = foreign_model_type(pretrained_model_name_or_path)
        if model_type is not None:
            return load_foreign_checkpoint(cls, pretrained_model_name_or_path, model_type, **kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    # ------------------------------------------------------------------ helpers
    def num_quantizers_for_bandwidth(self, bandwidth: float | None) -> int:
        """Codebooks for ``bandwidth`` kbps; ``None`` means the highest supported bandwidth."""
        cfg = self.config
        if self.quantizer is None:
            if bandwidth is not None:
                raise ValueError("this codec has no quantizer (a plain autoencoder): bandwidth must be None")
            return 0
        if bandwidth is None:
            bandwidth = max(cfg.target_bandwidths)
        if not any(math.isclose(bandwidth, b, abs_tol=1e-3) for b in cfg.target_bandwidths):
            raise ValueError(f"unsupported bandwidth {bandwidth} kbps; this model supports "
                             f"{', '.join(f'{b:g}' for b in cfg.target_bandwidths)} kbps")
        return cfg.num_quantizers_for_bandwidth(bandwidth)

    def _inference_context(self, *tensors):
        """``torch.no_grad()`` unless a gradient can be wanted: grad enabled and either an input
        requires grad (e.g. latents optimised through a frozen decoder) or the model is in
        training mode with trainable weights. So ``encode``/``decode`` of an ``eval()`` model
        never build a graph by accident, and take the inference fast paths."""
        if not torch.is_grad_enabled():
            return contextlib.nullcontext()
        if any(t is not None and torch.is_tensor(t) and t.requires_grad for t in tensors) or \
                (self.training and any(p.requires_grad for p in self.parameters())):
            return contextlib.nullcontext()
        return torch.no_grad()

    def _check_input(self, input_values: torch.Tensor, allow_empty: bool = False) -> torch.Tensor:
        if not torch.is_tensor(input_values):
            input_values = torch.as_tensor(input_values)
        if input_values.dim() == 2 and self.config.audio_channels == 1:
            input_values = input_values.unsqueeze(1)
        if input_values.dim() != 3:
            raise ValueError(f"input_values must be (batch, channels, samples), got shape {tuple(input_values.shape)}")
        if input_values.shape[1] != self.config.audio_channels:
            raise ValueError(f"this codec takes {self.config.audio_channels}-channel audio, "
                             f"got {input_values.shape[1]} channels")
        if input_values.shape[-1] == 0 and not allow_empty:
            raise ValueError("input_values is empty (0 samples)")
        if not torch.isfinite(input_values).all():
            raise ValueError("input_values contains NaN or infinite samples")
        return input_values.to(self.dtype)

    def _pad_to_hop(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.pad_to_hop:
            x = nn.functional.pad(x, (0, -x.shape[-1] % self.config.hop_length))
        return x

    def _full_length(self, audio: torch.Tensor, frames: int) -> torch.Tensor:
        # DAC's transposed convs with odd strides (16 and 24 kHz) lose one sample each: pad the end
        # so that every frame decodes to exactly hop_length samples.
        missing = frames * self.config.hop_length - audio.shape[-1]
        return nn.functional.pad(audio, (0, missing)) if missing > 0 else audio

    def _scale(self, x: torch.Tensor):
        """EnCodec's per-chunk normalisation: divide by the RMS of the mono mix."""
        if not self.config.normalize:
            return x, None
        scale = x.mean(dim=1, keepdim=True).pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8
        return x / scale, scale.view(-1, 1)

    def _encode_latents(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self._pad_to_hop(x))

    def _decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return self._full_length(self.decoder(latents), latents.shape[-1])

    def _encode_frame(self, x: torch.Tensor, num_quantizers: int):
        x, scale = self._scale(x)
        latents = self._encode_latents(x)
        if self.quantizer is None:
            return latents, scale
        return self.quantizer.encode(latents, num_quantizers), scale

    def _decode_frame(self, codes_or_latents: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        latents = codes_or_latents if self.quantizer is None else self.quantizer.decode(codes_or_latents)
        audio = self._decode_latents(latents)
        return audio if scale is None else audio * scale.view(-1, 1, 1)

    # ------------------------------------------------------------------ interface for generators
    # What a generator needs from a codec (audiocraft's ``CompressionModel``, DAC's ``from_codes``):
    # its rates and sizes, and codes <-> continuous latents <-> audio without chunks or scales.
    @property
    def sampling_rate(self) -> int:
        return self.config.sampling_rate

    @property
    def audio_channels(self) -> int:
        return self.config.audio_channels

    @property
    def hop_length(self) -> int:
        """Audio samples per latent frame."""
        return self.config.hop_length

    @property
    def frame_rate(self) -> float:
        """Latent frames (code time steps) per second."""
        return self.config.frame_rate

    @property
    def num_codebooks(self) -> int:
        """Codebooks at the highest bandwidth (0 for a plain autoencoder)."""
        return 0 if self.quantizer is None else self.quantizer.num_quantizers

    @property
    def codebook_size(self) -> int | None:
        """Codes per codebook (``None`` for a plain autoencoder)."""
        return None if self.quantizer is None else self.config.codebook_size

    def _check_latent_interface(self, method: str) -> None:
        if self.config.normalize or self.config.chunk_length is not None:
            raise ValueError(f"{method} works on whole signals without scales; this codec normalises or chunks its "
                             "input (EnCodec 48 kHz): use encode / decode")

    def encode_latents(self, input_values: torch.Tensor) -> torch.Tensor:
        """Continuous latents before quantization, (batch, hidden_size, frames), of a waveform
        (batch, channels, samples). Differentiable when the input requires grad (also in ``eval()``)."""
        self._check_latent_interface("encode_latents")
        with self._inference_context(input_values):
            return self._encode_latents(self._check_input(input_values))

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Waveform (batch, audio_channels, frames * hop_length) of latents (batch, hidden_size, frames),
        quantized (``codes_to_latents``) or not. Differentiable when ``latents`` require grad, also
        in ``eval()``: gradients reach the latents through the decoder (as DITTO optimises them)."""
        self._check_latent_interface("decode_latents")
        if latents.dim() != 3 or latents.shape[1] != self.config.hidden_size:
            raise ValueError(f"latents must be (batch, {self.config.hidden_size}, frames), got {tuple(latents.shape)}")
        with self._inference_context(latents):
            return self._decode_latents(latents.to(self.dtype))

    def codes_to_latents(self, codes: torch.Tensor) -> torch.Tensor:
        """Quantized latents (batch, hidden_size, frames): the sum of the codebook vectors of ``codes``
        (batch, n, frames), any n up to ``num_codebooks`` (as DAC's ``from_codes``). ``encode``'s
        (1, batch, n, frames) codes are accepted too."""
        if self.quantizer is None:
            raise ValueError("this codec has no quantizer (a plain autoencoder): it has no codes")
        frames = self.decoder_frames(codes, None, "codes_to_latents")
        if frames.shape[0] != 1:
            raise ValueError(f"codes_to_latents takes one chunk of codes, got {frames.shape[0]}")
        with self._inference_context():
            return self.quantizer.decode(frames[0])

    def latents_to_codes(self, latents: torch.Tensor, num_quantizers: int | None = None) -> torch.Tensor:
        """Codes (batch, num_quantizers, frames) of latents (batch, hidden_size, frames) by residual
        quantization with the first ``num_quantizers`` codebooks (default: all)."""
        if self.quantizer is None:
            raise ValueError("this codec has no quantizer (a plain autoencoder): it has no codes")
        with torch.no_grad():  # codes are integers: no gradient to keep
            return self.quantizer.encode(latents.to(self.dtype), num_quantizers)

    # ------------------------------------------------------------------ public API
    def encode(self, input_values: torch.Tensor, padding_mask: torch.Tensor | None = None,
               bandwidth: float | None = None, return_dict: bool | None = None):
        """Codes of a waveform (batch, channels, samples).

        ``bandwidth`` (kbps) must be one of ``config.target_bandwidths``; ``None`` means the highest.
        Returns ``audio_codes`` of shape (chunks, batch, num_quantizers, frames) and ``audio_scales``.
        An ``eval()`` model runs without autograd (and on the inference fast paths) unless the
        input requires grad; inside ``with model.streaming():`` it encodes a stream chunk.
        For signals of any length in bounded memory, see ``encode_long``.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if getattr(self, "_stream", None) is not None:
            output = self._stream_encode(input_values, padding_mask, bandwidth)
            return output if return_dict else output.to_tuple()
        with self._inference_context(input_values):
            output = self._encode(input_values, padding_mask, bandwidth)
        return output if return_dict else output.to_tuple()

    def _encode(self, input_values, padding_mask, bandwidth) -> MusicCodecEncoderOutput:
        num_quantizers = self.num_quantizers_for_bandwidth(bandwidth)
        x = self._check_input(input_values)
        length = x.shape[-1]
        chunk = self.config.chunk_length or length
        stride = self.config.chunk_stride or length
        if padding_mask is not None:
            x = x * padding_mask.view(padding_mask.shape[0], -1, padding_mask.shape[-1]).to(x.dtype)
        frames, scales = [], []
        for offset in range(0, length, stride):
            codes, scale = self._encode_frame(x[..., offset: offset + chunk], num_quantizers)
            frames.append(codes)
            scales.append(scale)
        last_pad = frames[0].shape[-1] - frames[-1].shape[-1]
        if last_pad > 0:
            frames[-1] = nn.functional.pad(frames[-1], (0, last_pad))
        stacked = torch.stack(frames)
        codes, latents = (None, stacked) if self.quantizer is None else (stacked, None)
        return MusicCodecEncoderOutput(codes, scales, last_pad, latents)

    def decode(self, audio_codes: torch.Tensor | None = None, audio_scales: list | None = None,
               padding_mask: torch.Tensor | None = None, return_dict: bool | None = None,
               last_frame_pad_length: int | None = None, latents: torch.Tensor | None = None):
        """Waveform (batch, audio_channels, samples) from ``encode``'s codes (or latents).

        Runs without autograd for an ``eval()`` model unless ``latents`` require grad; inside
        ``with model.streaming():`` it decodes a stream chunk. See also ``decode_long``.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if getattr(self, "_stream", None) is not None:
            output = self._stream_decode(audio_codes, latents)
            return output if return_dict else output.to_tuple()
        with self._inference_context(latents):
            output = self._decode(audio_codes, audio_scales, padding_mask, last_frame_pad_length, latents)
        return output if return_dict else output.to_tuple()

    def decoder_frames(self, audio_codes, latents, caller: str = "decode") -> torch.Tensor:
        """What ``decode`` decodes, as (chunks, batch, ..., frames): the codes, or the latents of a plain
        autoencoder; checked to be present and (for codes) integers."""
        frames = latents if self.quantizer is None else audio_codes
        if frames is None:
            raise ValueError(f"{caller} needs audio_codes" + (" or latents" if self.quantizer is None else ""))
        if frames.dim() == 3:  # (batch, num_quantizers, frames): a single chunk
            frames = frames.unsqueeze(0)
        if self.quantizer is not None and frames.dtype.is_floating_point:
            raise ValueError(f"audio_codes must be integers, got {frames.dtype}")
        return frames

    def _decode(self, audio_codes, audio_scales, padding_mask, last_frame_pad_length, latents):
        frames = self.decoder_frames(audio_codes, latents)
        # No scales: ``None``, or a list of ``None`` of any length (MusicGen passes one per batch item).
        if audio_scales is None or (isinstance(audio_scales, (list, tuple)) and all(s is None for s in audio_scales)):
            audio_scales = [None] * len(frames)
        if len(audio_scales) != len(frames):
            raise ValueError(f"got {len(frames)} chunks of codes but {len(audio_scales)} scales")
        if self.config.chunk_length is None and len(frames) != 1:
            raise ValueError(f"this codec does not chunk its input: expected 1 chunk of codes, got {len(frames)}")
        if len(frames) == 1:
            frame = frames[0]
            if last_frame_pad_length:
                frame = frame[..., :-last_frame_pad_length]
            audio = self._decode_frame(frame, audio_scales[0])
        else:
            overlap_add = _LinearOverlapAdd(self.config.chunk_stride, len(frames))
            for i, (frame, scale) in enumerate(zip(frames, audio_scales)):
                if i == len(frames) - 1 and last_frame_pad_length:
                    frame = frame[..., :-last_frame_pad_length]
                overlap_add.add(self._decode_frame(frame, scale))
            audio = overlap_add.result()
        if padding_mask is not None and padding_mask.shape[-1] < audio.shape[-1]:
            audio = audio[..., : padding_mask.shape[-1]]
        return MusicCodecDecoderOutput(audio)

    # ------------------------------------------------------------------ streaming
    @contextlib.contextmanager
    def streaming(self):
        """Stream encode / decode (causal SEANet codecs: EnCodec 24 kHz, SoundStream; with an
        ``"istft"`` decoder, which looks ahead, only encode streams).

        Inside the block, ``encode(chunk)`` returns the codes of the frames completed so far and
        ``decode(codes)`` the audio of the frames received so far; ``flush()`` (or leaving the
        block) ends the signal and returns the rest. Concatenated, they equal offline ``encode``
        and ``decode`` of the whole signal. Yields a ``CodecStream`` whose ``flushed`` attribute
        holds the final flush's ``MusicCodecStreamOutput``. See ``streaming.py``.

            with model.streaming() as stream:
                for chunk in chunks:
                    codes = model.encode(chunk).audio_codes        # (1, B, n_q, frames so far)
                    audio = model.decode(codes).audio_values       # (B, C, frames * hop)
                rest = model.flush()                               # last partial frame, its audio
        """
        reason = streaming_unsupported_reason(self.config, "encoder")
        if reason is not None:
            raise ValueError(f"streaming is not supported: {reason}; use encode_long / decode_long for long files")
        if getattr(self, "_stream", None) is not None:
            raise RuntimeError("this model is already streaming")
        stream = self._stream = CodecStream()
        ok = False
        try:
            yield stream
            ok = True
        finally:
            try:
                if ok and (stream.encoder is not None or stream.decoder is not None):
                    self.flush()
            finally:
                self._stream = None

    def flush(self) -> MusicCodecStreamOutput:
        """End the current stream: emit the last (partial) frame's codes, padded exactly as offline
        ``encode`` pads it, and the remaining audio. When one stream both encodes and decodes,
        the final codes are decoded too, so the audio totals offline ``decode(encode(x))``."""
        stream = getattr(self, "_stream", None)
        if stream is None:
            raise RuntimeError("flush() is only meaningful inside `with model.streaming():`")
        codes = latents = audio = None
        with torch.no_grad():
            final_latents = None
            if stream.encoder is not None:
                pad = -stream.samples_in % self.config.hop_length if self.config.pad_to_hop else 0
                batch, channels = stream.input_shape
                zeros = torch.zeros(batch, channels, 1, pad, dtype=self.dtype, device=self.device)
                final_latents = from_channels_last_1d(stream.encoder.flush(zeros))
                codes, latents = self._stream_codes(final_latents, stream.num_quantizers)
            if stream.decoder is not None:
                if final_latents is not None and codes is not None:
                    final_latents = self._stream_latents(codes[0])
                if final_latents is None:
                    final_latents = torch.zeros(stream.decoder_batch, self.config.hidden_size, 0, dtype=self.dtype,
                                                device=self.device)
                audio = from_channels_last_1d(stream.decoder.flush(to_channels_last_1d(final_latents)))
        output = MusicCodecStreamOutput(codes, audio, latents)
        stream.reset()
        stream.flushed = output
        return output

    def _stream_codes(self, latents: torch.Tensor, num_quantizers: int | None):
        if self.quantizer is None:
            return None, latents[None]
        if latents.shape[-1] == 0:
            n = num_quantizers or self.quantizer.num_quantizers
            return latents.new_zeros(1, latents.shape[0], n, 0, dtype=torch.long), None
        return self.quantizer.encode(latents, num_quantizers)[None], None

    def _stream_latents(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.shape[-1] == 0:
            return torch.zeros(codes.shape[0], self.config.hidden_size, 0, dtype=self.dtype, device=self.device)
        return self.quantizer.decode(codes)

    def _stream_encode(self, input_values, padding_mask, bandwidth) -> MusicCodecEncoderOutput:
        stream = self._stream
        num_quantizers = self.num_quantizers_for_bandwidth(bandwidth)
        x = self._check_input(input_values, allow_empty=True)
        if padding_mask is not None:
            x = x * padding_mask.view(padding_mask.shape[0], -1, padding_mask.shape[-1]).to(x.dtype)
        with torch.no_grad():
            if stream.encoder is None:
                stream.encoder = LayerStream(self.encoder.layers)
                stream.input_shape = tuple(x.shape[:2])
            elif tuple(x.shape[:2]) != stream.input_shape:
                raise ValueError(f"stream chunks must keep their (batch, channels) = {stream.input_shape}, "
                                 f"got {tuple(x.shape[:2])}")
            stream.samples_in += x.shape[-1]
            stream.num_quantizers = num_quantizers
            latents = from_channels_last_1d(stream.encoder.step(to_channels_last_1d(x)))
            codes, latents = self._stream_codes(latents, num_quantizers)
        return MusicCodecEncoderOutput(codes, [None], 0, latents)

    def _stream_decode(self, audio_codes, latents) -> MusicCodecDecoderOutput:
        reason = streaming_unsupported_reason(self.config, "decoder")
        if reason is not None:
            raise ValueError(f"streaming decode is not supported: {reason}; use decode or decode_long")
        stream = self._stream
        frames = self.decoder_frames(audio_codes, latents)
        if frames.shape[0] != 1:
            raise ValueError(f"streaming decode takes one chunk of codes, got {frames.shape[0]}")
        frames = frames[0]
        with torch.no_grad():
            lat = frames.to(self.dtype) if self.quantizer is None else self._stream_latents(frames)
            if stream.decoder is None:
                stream.decoder = LayerStream(self.decoder.layers)
                stream.decoder_batch = lat.shape[0]
            audio = from_channels_last_1d(stream.decoder.step(to_channels_last_1d(lat)))
        return MusicCodecDecoderOutput(audio)

    def forward(self, input_values: torch.Tensor, bandwidth: float | None = None,
                return_dict: bool | None = None) -> MusicCodecOutput:
        """Encode, quantize (with quantizer dropout in training) and decode a training batch.

        No chunking: training crops are short. Returns the reconstruction and the VQ losses.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        x = self._check_input(input_values)
        length = x.shape[-1]
        x, scale = self._scale(x)
        latents = self._encode_latents(x)
        if self.quantizer is None:
            quantized, codes, commitment, codebook, used = latents, None, None, None, None
            vq_loss = latents.new_zeros(())
        else:
            rvq = self.quantizer(latents, self.num_quantizers_for_bandwidth(bandwidth))
            quantized, codes, used = rvq.quantized, rvq.codes, rvq.num_quantizers
            commitment, codebook = rvq.commitment_loss, rvq.codebook_loss
            vq_loss = self.config.commitment_weight * commitment + self.config.codebook_weight * codebook
        audio = self._decode_latents(quantized)[..., :length]
        if scale is not None:
            audio = audio * scale.view(-1, 1, 1)
        output = MusicCodecOutput(audio, codes, vq_loss, commitment, codebook, latents, quantized, used)
        return output if return_dict else output.to_tuple()


class _LinearOverlapAdd:
    """EnCodec's cross-fade of overlapping decoded chunks (triangular weights), one chunk at a time
    into a preallocated output, so a long input never holds more than the output and one chunk."""

    def __init__(self, stride: int, count: int):
        self.stride, self.count, self.index = stride, count, 0
        self.out = self.weight_sum = self.weight = None
        self.total = 0

    def add(self, frame: torch.Tensor) -> None:
        if self.out is None:
            # No chunk is longer than the first: it bounds the output length.
            length = frame.shape[-1]
            t = torch.linspace(0, 1, length + 2, device=frame.device, dtype=frame.dtype)[1:-1]
            self.weight = 0.5 - (t - 0.5).abs()
            self.out = frame.new_zeros(*frame.shape[:-1], self.stride * (self.count - 1) + length)
            self.weight_sum = frame.new_zeros(self.out.shape[-1])
        i, n = self.index, frame.shape[-1]
        self.out[..., i * self.stride: i * self.stride + n] += self.weight[:n] * frame
        self.weight_sum[i * self.stride: i * self.stride + n] += self.weight[:n]
        self.total = i * self.stride + n
        self.index += 1

    def result(self) -> torch.Tensor:
        out = self.out[..., : self.total]
        return out.div_(self.weight_sum[: self.total])

