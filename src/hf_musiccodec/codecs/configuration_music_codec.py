"""Configuration of the codec family: one config describes an autoencoder, a VQ-VAE,
SoundStream, EnCodec or DAC. Named presets live in ``presets.py``."""

from __future__ import annotations

import math

from transformers import PretrainedConfig

ARCHITECTURES = ("seanet", "dac")
QUANTIZER_TYPES = ("none", "euclidean", "factorized")
ENCODER_TYPES = ("time", "stft")
DECODER_TYPES = ("time", "istft")


class MusicCodecConfig(PretrainedConfig):
    r"""
    Args:
        architecture: ``"seanet"`` (SoundStream / EnCodec encoder-decoder, ELU, optional LSTM) or
            ``"dac"`` (Snake activations, dilated residual units 1/3/9).
        sampling_rate, audio_channels: of the waveform the codec takes and returns.
        hidden_size: channels of the latent between encoder and decoder.
        num_filters: channels after the first conv (``encoder_hidden_size`` in DAC); doubled at each
            downsampling.
        upsampling_ratios: decoder strides, in decoder order; the encoder uses them reversed. Their
            product is the hop length (samples per latent frame).
        num_residual_layers, kernel_size, last_kernel_size, residual_kernel_size, dilation_growth_rate,
        compress, num_lstm_layers, use_causal_conv, pad_mode, norm_type, trim_right_ratio,
        use_conv_shortcut: SEANet options, with EnCodec's meaning. ``norm_type`` is ``"weight_norm"``
            or ``"time_group_norm"``.
        final_activation: ``None`` or ``"tanh"`` at the SEANet decoder output (DAC always has tanh).
        decoder_hidden_size: channels at the DAC decoder input, halved at each upsampling; the
            ConvNeXt width of an ``"istft"`` decoder.
        encoder_type: ``"time"`` (the architecture's own strided encoder) or ``"stft"`` (log-magnitude
            STFT frames, one per latent frame, through ConvNeXt blocks; not causal; implies
            ``pad_to_hop``).
        encoder_hidden_size, encoder_num_layers: ConvNeXt width (default: ``decoder_hidden_size``)
            and blocks of an ``"stft"`` encoder.
        decoder_type: ``"time"`` (the architecture's own upsampling decoder) or ``"istft"`` (Vocos /
            WavTokenizer: ConvNeXt blocks at the frame rate predict STFT frames, an inverse STFT
            makes the audio; not causal, so it does not stream).
        decoder_num_layers: ConvNeXt blocks of an ``"istft"`` decoder.
        istft_n_fft: FFT size of an ``"stft"`` encoder and an ``"istft"`` decoder (default 4 x hop
            length: 75 % overlap).
        quantizer_type: ``"none"`` (plain autoencoder), ``"euclidean"`` (SoundStream / EnCodec codebooks,
            a single one for a VQ-VAE) or ``"factorized"`` (DAC's low-dimensional L2-normalised codes).
        num_quantizers: codebooks in the residual stack.
        codebook_size: codes per codebook, a power of two.
        codebook_dim: dimension of the factorized code space (DAC: 8); ignored by euclidean codebooks.
        target_bandwidths: bitrates in kbps that ``encode(bandwidth=...)`` accepts; each uses
            ``floor(bandwidth / bitrate of one codebook)`` codebooks. Defaults to every number of
            codebooks for DAC-like configs.
        quantizer_dropout: fraction of each training batch that uses a random number of codebooks.
        use_ema, ema_decay, kmeans_init, kmeans_iters, threshold_ema_dead_code: euclidean codebook
            training (see ``EuclideanCodebook``).
        commitment_weight, codebook_weight: weights of the VQ losses in ``forward``'s ``vq_loss``.
        normalize: scale each chunk to unit RMS before encoding and send the scale (EnCodec 48 kHz).
        chunk_length_s, overlap: encode in chunks of this many seconds overlapping by this fraction,
            and overlap-add them when decoding (EnCodec 48 kHz).
        pad_to_hop: right-pad inputs to a multiple of the hop length before encoding (DAC does).
    """

    model_type = "music_codec"

    def __init__(
        self,
        architecture: str = "seanet",
        sampling_rate: int = 24_000,
        audio_channels: int = 1,
        hidden_size: int = 128,
        num_filters: int = 32,
        upsampling_ratios=(8, 5, 4, 2),
        num_residual_layers: int = 1,
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        dilation_growth_rate: int = 2,
        compress: int = 2,
        num_lstm_layers: int = 2,
        use_causal_conv: bool = True,
        pad_mode: str = "reflect",
        norm_type: str = "weight_norm",
        trim_right_ratio: float = 1.0,
        use_conv_shortcut: bool = True,
        final_activation: str | None = None,
        decoder_hidden_size: int = 1536,
        encoder_type: str = "time",
        encoder_hidden_size: int | None = None,
        encoder_num_layers: int = 8,
        decoder_type: str = "time",
        decoder_num_layers: int = 8,
        istft_n_fft: int | None = None,
        quantizer_type: str = "euclidean",
        num_quantizers: int = 32,
        codebook_size: int = 1024,
        codebook_dim: int = 8,
        target_bandwidths=None,
        quantizer_dropout: float = 0.0,
        use_ema: bool = True,
        ema_decay: float = 0.99,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        threshold_ema_dead_code: float = 2.0,
        commitment_weight: float = 1.0,
        codebook_weight: float = 1.0,
        normalize: bool = False,
        chunk_length_s: float | None = None,
        overlap: float | None = None,
        pad_to_hop: bool = False,
        **kwargs,
    ):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        if quantizer_type not in QUANTIZER_TYPES:
            raise ValueError(f"quantizer_type must be one of {QUANTIZER_TYPES}, got {quantizer_type!r}")
        if encoder_type not in ENCODER_TYPES:
            raise ValueError(f"encoder_type must be one of {ENCODER_TYPES}, got {encoder_type!r}")
        if decoder_type not in DECODER_TYPES:
            raise ValueError(f"decoder_type must be one of {DECODER_TYPES}, got {decoder_type!r}")
        if codebook_size < 2 or codebook_size & (codebook_size - 1):
            raise ValueError(f"codebook_size must be a power of two, got {codebook_size}")
        if audio_channels not in (1, 2):
            raise ValueError(f"audio_channels must be 1 or 2, got {audio_channels}")
        self.architecture = architecture
        self.sampling_rate = int(sampling_rate)
        self.audio_channels = int(audio_channels)
        self.hidden_size = hidden_size
        self.num_filters = num_filters
        self.upsampling_ratios = list(upsampling_ratios)
        self.num_residual_layers = num_residual_layers
        self.kernel_size = kernel_size
        self.last_kernel_size = last_kernel_size
        self.residual_kernel_size = residual_kernel_size
        self.dilation_growth_rate = dilation_growth_rate
        self.compress = compress
        self.num_lstm_layers = num_lstm_layers
        self.use_causal_conv = use_causal_conv
        self.pad_mode = pad_mode
        self.norm_type = norm_type
        self.trim_right_ratio = trim_right_ratio
        self.use_conv_shortcut = use_conv_shortcut
        self.final_activation = final_activation
        self.decoder_hidden_size = decoder_hidden_size
        self.encoder_type = encoder_type
        self.encoder_hidden_size = encoder_hidden_size
        self.encoder_num_layers = encoder_num_layers
        self.decoder_type = decoder_type
        self.decoder_num_layers = decoder_num_layers
        self.istft_n_fft = istft_n_fft if istft_n_fft is not None else 4 * self.hop_length
        if (encoder_type, decoder_type) != ("time", "time") and (self.istft_n_fft < self.hop_length or (self.istft_n_fft - self.hop_length) % 2):
            raise ValueError(f"istft_n_fft must be at least the hop length ({self.hop_length}) and differ from it by an "
                             f"even number, got {self.istft_n_fft}")
        self.quantizer_type = quantizer_type
        self.num_quantizers = num_quantizers if quantizer_type != "none" else 0
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.quantizer_dropout = quantizer_dropout
        self.use_ema = use_ema
        self.ema_decay = ema_decay
        self.kmeans_init = kmeans_init
        self.kmeans_iters = kmeans_iters
        self.threshold_ema_dead_code = threshold_ema_dead_code
        self.commitment_weight = commitment_weight
        self.codebook_weight = codebook_weight
        self.normalize = normalize
        self.chunk_length_s = chunk_length_s
        self.overlap = overlap
        self.pad_to_hop = pad_to_hop or encoder_type == "stft"  # STFT frames need whole hops
        if target_bandwidths is None and self.num_quantizers:
            target_bandwidths = [round(n * self.bandwidth_per_quantizer, 3) for n in range(1, self.num_quantizers + 1)]
        self.target_bandwidths = [float(b) for b in (target_bandwidths or [])]
        for bandwidth in self.target_bandwidths:
            if not 1 <= self.num_quantizers_for_bandwidth(bandwidth) <= self.num_quantizers:
                raise ValueError(f"bandwidth {bandwidth} kbps needs more than the {self.num_quantizers} codebooks")
        super().__init__(**kwargs)

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsampling_ratios)

    @property
    def frame_rate(self) -> float:
        """Latent frames per second (exact; EnCodec's published rates are integers)."""
        return self.sampling_rate / self.hop_length

    @property
    def bits_per_codebook(self) -> int:
        return int(math.log2(self.codebook_size))

    @property
    def bandwidth_per_quantizer(self) -> float:
        """kbps that one codebook adds."""
        return self.bits_per_codebook * self.frame_rate / 1000

    def num_quantizers_for_bandwidth(self, bandwidth: float) -> int:
        # The small tolerance absorbs the rounding of target_bandwidths to 3 decimals.
        return int(math.floor(bandwidth / self.bandwidth_per_quantizer + 1e-2))

    @property
    def chunk_length(self) -> int | None:
        return None if self.chunk_length_s is None else int(self.chunk_length_s * self.sampling_rate)

    @property
    def chunk_stride(self) -> int | None:
        if self.chunk_length_s is None or self.overlap is None:
            return None
        return max(1, int((1.0 - self.overlap) * self.chunk_length))

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "MusicCodecConfig":
        """A named configuration: see ``hf_musiccodec.codecs.presets.PRESETS``."""
        from .presets import preset_kwargs

        return cls(**{**preset_kwargs(name), **overrides})
