"""Tiny configurations for tests: the structure of a preset at a few thousand parameters."""

from __future__ import annotations

from ..codecs import MusicCodecConfig


def tiny_codec_config(preset: str, **overrides) -> MusicCodecConfig:
    kwargs = dict(num_filters=4, hidden_size=8, codebook_size=16, kmeans_iters=2)
    if preset.startswith("dac"):
        kwargs.update(decoder_hidden_size=32, num_quantizers=3, hidden_size=16, num_filters=2)
    elif preset not in ("autoencoder", "vqvae"):
        kwargs.update(num_lstm_layers=1)
    if preset in ("encodec_24khz", "encodec_32khz", "encodec_48khz", "soundstream_24khz"):
        kwargs.update(num_quantizers=4, target_bandwidths=None)
    kwargs.update(overrides)
    return MusicCodecConfig.from_preset(preset, **kwargs)


def tiny_clap_config(**overrides):
    """A MusicClap of a few thousand parameters (8 kHz, 1 s clips) on the real frozen MiniLM."""
    from ..conditioning import MusicClapConfig

    values = dict(sampling_rate=8000, n_fft=256, hop_length=160, n_mels=32, f_min=20.0, f_max=4000.0,
                  clip_seconds=1.0, audio_channels=(32, 32), audio_hidden_size=32, audio_num_layers=1,
                  audio_num_heads=2, audio_intermediate_size=64, text_head_size=32, text_num_heads=2,
                  text_num_layers=1, text_intermediate_size=64, text_max_length=16, projection_dim=16,
                  dropout=0.0)  # fmt: skip
    values.update(overrides)
    return MusicClapConfig(**values)


def tiny_text_to_music_pipeline(seed: int = 0, context_seconds: float = 1.0, with_clap: bool = True,
                                with_melody: bool = True, with_attributes: bool = False, decoder_inputs: bool = False):
    """A random-weight :class:`TextToMusicPipeline` for tests: tiny EnCodec-24 kHz codec (2 codebooks
    of 16 at 75 Hz), a 1-layer decoder with a ``context_seconds`` context, the real frozen MiniLM,
    and (optionally) a tiny MusicClap, a melody condition and rhythm (8 phases) + key conditions
    (``decoder_inputs``: also added to the decoder's input per frame)."""
    import torch

    from ..codecs import MusicCodecModel
    from ..conditioning import MusicClapModel, build_music_clap_processor
    from ..pipelines.text_to_music import (
        MusicConditioner,
        MusicConditionerConfig,
        TextToMusicPipeline,
        build_text_to_music_model,
        load_lm_tokenizer,
    )

    torch.manual_seed(seed)
    codec = MusicCodecModel(tiny_codec_config("encodec_24khz", kmeans_init=False)).eval()
    frames = int(context_seconds * codec.config.frame_rate)
    musicgen = build_text_to_music_model(codec, 0.6, hidden_size=32, num_layers=1, num_heads=2, ffn_dim=64,
                                         max_position_embeddings=frames + 2, dropout=0.0).eval()  # fmt: skip
    clap = processor = None
    if with_clap:
        config = tiny_clap_config()
        clap, processor = MusicClapModel(config).eval(), build_music_clap_processor(config)
    conditioner = MusicConditioner(MusicConditionerConfig(clap_dim=16 if with_clap else 0,
                                                          melody_vocab=13 if with_melody else 0,
                                                          rhythm_vocab=8 if with_attributes else 0,
                                                          key_condition=with_attributes,
                                                          decoder_input_size=32 if decoder_inputs else 0)).eval()
    with torch.no_grad():  # large random weights, so that every condition visibly changes the tokens
        for module in (musicgen.decoder, musicgen.enc_to_dec_proj, conditioner):
            for p in module.parameters():
                if p.ndim >= 1 and p.dtype.is_floating_point:
                    p.normal_(0.0, 0.3)
    return TextToMusicPipeline(musicgen=musicgen, conditioner=conditioner, tokenizer=load_lm_tokenizer(), clap=clap,
                               clap_processor=processor)


def tiny_vampnet_pipeline(seed: int = 0, context_seconds: float = 1.0, with_clap: bool = True,
                          with_coarse_to_fine: bool = True):
    """A random-weight :class:`VampNetPipeline` for tests: the tiny EnCodec-24 kHz codec (4 codebooks
    of 16 at 75 Hz), a 1-layer coarse model over 2 codebooks with a ``context_seconds`` context,
    optionally a coarse-to-fine model over all 4 and a tiny MusicClap (condition)."""
    import torch

    from ..codecs import MusicCodecModel
    from ..conditioning import MusicClapModel, build_music_clap_processor
    from ..models.vampnet import VampNetConfig, VampNetModel
    from ..pipelines.vampnet import VampNetPipeline

    torch.manual_seed(seed)
    codec = MusicCodecModel(tiny_codec_config("encodec_24khz", kmeans_init=False)).eval()
    frames = int(context_seconds * codec.config.frame_rate)
    common = dict(codebook_size=codec.codebook_size, frame_rate=codec.config.frame_rate, context_frames=frames,
                  hidden_size=32, num_layers=1, num_heads=2, ffn_dim=64, dropout=0.0)
    clap = processor = None
    if with_clap:
        config = tiny_clap_config()
        clap, processor = MusicClapModel(config).eval(), build_music_clap_processor(config)
    coarse = VampNetModel(VampNetConfig(num_codebooks=2, condition_dim=16 if with_clap else 0, **common)).eval()
    fine = (VampNetModel(VampNetConfig(num_codebooks=4, num_conditioning_codebooks=2, **common)).eval()
            if with_coarse_to_fine else None)
    with torch.no_grad():  # large random weights, so that conditions and prompts visibly change the tokens
        for model in filter(None, (coarse, fine)):
            for p in model.parameters():
                if p.ndim >= 1 and p.dtype.is_floating_point:
                    p.normal_(0.0, 0.3)
    return VampNetPipeline(codec=codec, vampnet=coarse, coarse_to_fine=fine, clap=clap, clap_processor=processor)


def tiny_music_diffusion_pipeline(seed: int = 0, patch: int = 2):
    """A random-weight :class:`MusicDiffusionPipeline` for tests: the tiny EnCodec-24 kHz codec's latents
    (8 dimensions at 75 Hz, ``patch`` frames per U-Net column), a two-level U-Net of a few thousand
    parameters, DPM-Solver++ (v-prediction) and a tiny MusicClap."""
    import torch
    from diffusers import DPMSolverMultistepScheduler

    from ..codecs import MusicCodecModel
    from ..conditioning import MusicClapModel, build_music_clap_processor
    from ..pipelines.latent_diffusion import MusicDiffusionPipeline, build_music_unet

    torch.manual_seed(seed)
    codec = MusicCodecModel(tiny_codec_config("encodec_24khz", kmeans_init=False)).eval()
    config = tiny_clap_config()
    clap, processor = MusicClapModel(config).eval(), build_music_clap_processor(config)
    unet = build_music_unet(codec.config.hidden_size * patch, config.projection_dim, block_out_channels=(16, 32),
                            attention_head_dim=8, norm_num_groups=8).eval()
    scheduler = DPMSolverMultistepScheduler(prediction_type="v_prediction", beta_schedule="squaredcos_cap_v2")
    return MusicDiffusionPipeline(unet=unet, scheduler=scheduler, codec=codec, clap=clap, clap_processor=processor)


def tiny_music_controlnet_pipeline(seed: int = 0, zero_init: bool = False):
    """:func:`tiny_music_diffusion_pipeline` with a ControlNet made by ``ControlNetModel.from_unet`` on
    its U-Net; ``zero_init=False`` gives its zero convolutions random weights, so that controls
    visibly change the output of this untrained model."""
    import torch
    from diffusers import ControlNetModel

    from ..pipelines.controlnet import CONTROL_CHANNELS, MusicControlNetPipeline

    base = tiny_music_diffusion_pipeline(seed)
    controlnet = ControlNetModel.from_unet(base.unet, conditioning_channels=CONTROL_CHANNELS,
                                           conditioning_embedding_out_channels=(8,)).eval()
    if not zero_init:
        torch.manual_seed(seed + 1)
        with torch.no_grad():
            for name, p in controlnet.named_parameters():
                if "zero_conv" in name or "controlnet_down_blocks" in name or "controlnet_mid_block" in name \
                        or "conv_out" in name:
                    p.normal_(0.0, 0.3)
    return MusicControlNetPipeline(**base.components, controlnet=controlnet, latent_mean=base.config.latent_mean,
                                   latent_std=base.config.latent_std)
