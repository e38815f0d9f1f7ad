"""``MusicCodecModel``: one ``PreTrainedModel`` for the codec family, with the API of
transformers' ``EncodecModel`` (``encode``/``decode``), plus what training needs in ``forward``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_music_codec import MusicCodecConfig
from .modules.dac_blocks import DacDecoder, DacEncoder, Snake1d
from .modules.quantization import EuclideanVectorQuantizer, FactorizedVectorQuantizer, ResidualVectorQuantizer
from .modules.quantization.euclidean import EuclideanCodebook
from .modules.seanet import SEANetDecoder, SEANetEncoder
from .modules.weight_norm import _norm_except_dim0, _WeightNormMixin


@dataclass
class MusicCodecEncoderOutput(ModelOutput):
    """
    audio_codes: (chunks, batch, num_quantizers, frames) codes; ``None`` for a plain autoencoder.
    audio_scales: per chunk, a (batch, 1) scale or ``None`` (only configs with ``normalize``).
    last_frame_pad_length: frames of padding added to the last chunk's codes.
    latents: (chunks, batch, hidden_size, frames) continuous latents of a plain autoencoder.
    """

    audio_codes: torch.LongTensor | None = None
    audio_scales: list | None = None
    last_frame_pad_length: int | None = None
    latents: torch.Tensor | None = None


@dataclass
class MusicCodecDecoderOutput(ModelOutput):
    """audio_values: (batch, audio_channels, samples)."""

    audio_values: torch.Tensor | None = None


@dataclass
class MusicCodecOutput(ModelOutput):
    """
    audio_values: (batch, audio_channels, samples) reconstruction, trimmed to the input length.
    audio_codes: (batch, num_quantizers, frames) codes used.
    vq_loss: ``commitment_weight * commitment_loss + codebook_weight * codebook_loss``.
    latents / quantized_latents: (batch, hidden_size, frames) before and after quantization.
    num_quantizers: (batch,) codebooks used per item (varies under quantizer dropout).
    """

    audio_values: torch.Tensor | None = None
    audio_codes: torch.LongTensor | None = None
    vq_loss: torch.Tensor | None = None
    commitment_loss: torch.Tensor | None = None
    codebook_loss: torch.Tensor | None = None
    latents: torch.Tensor | None = None
    quantized_latents: torch.Tensor | None = None
    num_quantizers: torch.Tensor | None = None


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
        elif isinstance(module, nn.GroupNorm):
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


class MusicCodecModel(MusicCodecPreTrainedModel):
    """A waveform codec: ``encode`` to codes, ``decode`` back to audio, ``forward`` to train.

    Loads its own checkpoints and, through ``from_pretrained``, transformers' EnCodec and DAC
    checkpoints (``model_type`` ``encodec`` / ``dac``), converting them on the fly.
    """

    def __init__(self, config: MusicCodecConfig):
        super().__init__(config)
        if config.architecture == "dac":
            self.encoder, self.decoder = DacEncoder(config), DacDecoder(config)
        else:
            self.encoder, self.decoder = SEANetEncoder(config), SEANetDecoder(config)
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

    def _check_input(self, input_values: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(input_values):
            input_values = torch.as_tensor(input_values)
        if input_values.dim() == 2 and self.config.audio_channels == 1:
            input_values = input_values.unsqueeze(1)
        if input_values.dim() != 3:
            raise ValueError(f"input_values must be (batch, channels, samples), got shape {tuple(input_values.shape)}")
        if input_values.shape[1] != self.config.audio_channels:
            raise ValueError(f"this codec takes {self.config.audio_channels}-channel audio, "
                             f"got {input_values.shape[1]} channels")
        if input_values.shape[-1] == 0:
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

    def _encode_frame(self, x: torch.Tensor, num_quantizers: int):
        x, scale = self._scale(x)
        latents = self.encoder(self._pad_to_hop(x))
        if self.quantizer is None:
            return latents, scale
        return self.quantizer.encode(latents, num_quantizers), scale

    def _decode_frame(self, codes_or_latents: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        latents = codes_or_latents if self.quantizer is None else self.quantizer.decode(codes_or_latents)
        audio = self._full_length(self.decoder(latents), latents.shape[-1])
        return audio if scale is None else audio * scale.view(-1, 1, 1)

    # ------------------------------------------------------------------ public API
    def encode(self, input_values: torch.Tensor, padding_mask: torch.Tensor | None = None,
               bandwidth: float | None = None, return_dict: bool | None = None):
        """Codes of a waveform (batch, channels, samples).

        ``bandwidth`` (kbps) must be one of ``config.target_bandwidths``; ``None`` means the highest.
        Returns ``audio_codes`` of shape (chunks, batch, num_quantizers, frames) and ``audio_scales``.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
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
        output = MusicCodecEncoderOutput(codes, scales, last_pad, latents)
        return output if return_dict else output.to_tuple()

    def decode(self, audio_codes: torch.Tensor | None = None, audio_scales: list | None = None,
               padding_mask: torch.Tensor | None = None, return_dict: bool | None = None,
               last_frame_pad_length: int | None = None, latents: torch.Tensor | None = None):
        """Waveform (batch, audio_channels, samples) from ``encode``'s codes (or latents)."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        frames = latents if self.quantizer is None else audio_codes
        if frames is None:
            raise ValueError("decode needs audio_codes" + (" or latents" if self.quantizer is None else ""))
        if frames.dim() == 3:  # (batch, num_quantizers, frames): a single chunk
            frames = frames.unsqueeze(0)
        if self.quantizer is not None and frames.dtype.is_floating_point:
            raise ValueError(f"audio_codes must be integers, got {frames.dtype}")
        audio_scales = audio_scales if audio_scales is not None else [None] * len(frames)
        if len(audio_scales) != len(frames):
            raise ValueError(f"got {len(frames)} chunks of codes but {len(audio_scales)} scales")
        if self.config.chunk_length is None and len(frames) != 1:
            raise ValueError(f"this codec does not chunk its input: expected 1 chunk of codes, got {len(frames)}")
        decoded = []
        for i, (frame, scale) in enumerate(zip(frames, audio_scales)):
            if i == len(frames) - 1 and last_frame_pad_length:
                frame = frame[..., :-last_frame_pad_length]
            decoded.append(self._decode_frame(frame, scale))
        audio = decoded[0] if len(decoded) == 1 else linear_overlap_add(decoded, self.config.chunk_stride)
        if padding_mask is not None and padding_mask.shape[-1] < audio.shape[-1]:
            audio = audio[..., : padding_mask.shape[-1]]
        output = MusicCodecDecoderOutput(audio)
        return output if return_dict else output.to_tuple()

    def forward(self, input_values: torch.Tensor, bandwidth: float | None = None,
                return_dict: bool | None = None) -> MusicCodecOutput:
        """Encode, quantize (with quantizer dropout in training) and decode a training batch.

        No chunking: training crops are short. Returns the reconstruction and the VQ losses.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        x = self._check_input(input_values)
        length = x.shape[-1]
        x, scale = self._scale(x)
        latents = self.encoder(self._pad_to_hop(x))
        if self.quantizer is None:
            quantized, codes, commitment, codebook, used = latents, None, None, None, None
            vq_loss = latents.new_zeros(())
        else:
            rvq = self.quantizer(latents, self.num_quantizers_for_bandwidth(bandwidth))
            quantized, codes, used = rvq.quantized, rvq.codes, rvq.num_quantizers
            commitment, codebook = rvq.commitment_loss, rvq.codebook_loss
            vq_loss = self.config.commitment_weight * commitment + self.config.codebook_weight * codebook
        audio = self._full_length(self.decoder(quantized), quantized.shape[-1])[..., :length]
        if scale is not None:
            audio = audio * scale.view(-1, 1, 1)
        output = MusicCodecOutput(audio, codes, vq_loss, commitment, codebook, latents, quantized, used)
        return output if return_dict else output.to_tuple()


def linear_overlap_add(frames: list[torch.Tensor], stride: int) -> torch.Tensor:
    """Cross-fade overlapping decoded chunks with triangular weights (EnCodec)."""
    total = stride * (len(frames) - 1) + frames[-1].shape[-1]
    length = frames[0].shape[-1]
    t = torch.linspace(0, 1, length + 2, device=frames[0].device, dtype=frames[0].dtype)[1:-1]
    weight = 0.5 - (t - 0.5).abs()
    out = frames[0].new_zeros(*frames[0].shape[:-1], total)
    weight_sum = frames[0].new_zeros(total)
    for i, frame in enumerate(frames):
        n = frame.shape[-1]
        out[..., i * stride: i * stride + n] += weight[:n] * frame
        weight_sum[i * stride: i * stride + n] += weight[:n]
    return out / weight_sum
