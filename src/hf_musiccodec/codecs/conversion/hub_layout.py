"""transformers' hub layout of EnCodec (facebook/encodec_*) and DAC (descript/dac_*) checkpoints.

Module names in this package follow transformers', so conversion is a config translation, the
rename ``quantizer.quantizers`` -> ``quantizer.layers`` for DAC, and weight norm (which the
weight-norm modules accept in every stored form).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..configuration_music_codec import MusicCodecConfig
from .state_dict import load_strict, rename_keys

FOREIGN_MODEL_TYPES = ("encodec", "dac")


def config_from_encodec(cfg: dict) -> MusicCodecConfig:
    """A ``MusicCodecConfig`` equal to a transformers ``EncodecConfig`` (as a dict)."""
    bandwidths = cfg.get("target_bandwidths", [1.5, 3.0, 6.0, 12.0, 24.0])
    sampling_rate = cfg.get("sampling_rate", 24_000)
    ratios = cfg.get("upsampling_ratios", [8, 5, 4, 2])
    codebook_size = cfg.get("codebook_size", 1024)
    frame_rate = -(-sampling_rate // int(torch.tensor(ratios).prod()))  # EnCodec rounds up
    num_quantizers = int(1000 * bandwidths[-1] // (frame_rate * (codebook_size.bit_length() - 1)))
    keys = ("sampling_rate", "audio_channels", "normalize", "chunk_length_s", "overlap", "hidden_size",
            "num_filters", "num_residual_layers", "upsampling_ratios", "norm_type", "kernel_size",
            "last_kernel_size", "residual_kernel_size", "dilation_growth_rate", "use_causal_conv", "pad_mode",
            "compress", "num_lstm_layers", "trim_right_ratio", "codebook_size", "use_conv_shortcut")
    kwargs = {k: cfg[k] for k in keys if k in cfg}
    if cfg.get("codebook_dim") not in (None, cfg.get("hidden_size", 128)):
        raise ValueError("EnCodec checkpoints with codebook_dim != hidden_size are not supported")
    return MusicCodecConfig(architecture="seanet", quantizer_type="euclidean", num_quantizers=num_quantizers,
                            target_bandwidths=bandwidths, **kwargs)


def config_from_dac(cfg: dict) -> MusicCodecConfig:
    """A ``MusicCodecConfig`` equal to a transformers ``DacConfig`` (as a dict)."""
    down = cfg.get("downsampling_ratios", [2, 4, 8, 8])
    encoder_hidden = cfg.get("encoder_hidden_size", 64)
    return MusicCodecConfig(
        architecture="dac", sampling_rate=cfg.get("sampling_rate", 16_000), audio_channels=1,
        num_filters=encoder_hidden, hidden_size=encoder_hidden * 2 ** len(down),
        upsampling_ratios=list(reversed(down)), decoder_hidden_size=cfg.get("decoder_hidden_size", 1536),
        quantizer_type="factorized", num_quantizers=cfg.get("n_codebooks", 9),
        codebook_size=cfg.get("codebook_size", 1024), codebook_dim=cfg.get("codebook_dim", 8),
        quantizer_dropout=float(cfg.get("quantizer_dropout", 0.0)),
        commitment_weight=cfg.get("commitment_loss_weight", 0.25), codebook_weight=cfg.get("codebook_loss_weight", 1.0),
        pad_to_hop=True,
    )


def foreign_model_type(path) -> str | None:
    """``"encodec"`` or ``"dac"`` if ``path`` is a local folder in transformers' layout of those."""
    config_file = Path(os.fspath(path)) / "config.json"
    if not config_file.is_file():
        return None
    model_type = json.loads(config_file.read_text()).get("model_type")
    return model_type if model_type in FOREIGN_MODEL_TYPES else None


def read_weights(folder: Path) -> dict:
    safetensors = sorted(folder.glob("*.safetensors"))
    if safetensors:
        state = {}
        for file in safetensors:
            state.update(load_file(file))
        return state
    bins = sorted(folder.glob("pytorch_model*.bin"))
    if not bins:
        raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {folder}")
    state = {}
    for file in bins:
        state.update(torch.load(file, map_location="cpu", weights_only=True))
    return state


def load_foreign_checkpoint(cls, path, model_type: str, **kwargs):
    """Build ``cls`` from a transformers EnCodec/DAC folder: converted config, converted weights."""
    folder = Path(os.fspath(path))
    cfg = json.loads((folder / "config.json").read_text())
    config = config_from_encodec(cfg) if model_type == "encodec" else config_from_dac(cfg)
    state = read_weights(folder)
    if model_type == "dac":
        state = rename_keys(state, [(r"^quantizer\.quantizers\.", "quantizer.layers.")])
    model = cls(config)
    load_strict(model, state, str(folder))
    dtype = kwargs.get("torch_dtype") or kwargs.get("dtype")
    if dtype is not None and dtype != "auto":
        model = model.to(dtype)
    return model.eval()
