"""The original repositories' checkpoint files: EnCodec ``.th`` and DAC ``.pth``.

Both are read with ``torch.load(weights_only=True)``: a checkpoint is data, never code.
"""

from __future__ import annotations

import os
import re

import torch

from ..configuration_music_codec import MusicCodecConfig
from .state_dict import load_strict, rename_keys

# facebookresearch/encodec: SConv1d -> NormConv1d -> Conv1d, modules in ``model`` Sequentials.
ENCODEC_RULES = [
    (r"^(encoder|decoder)\.model\.", r"\1.layers."),
    (r"\.conv\.conv\.", ".conv."),
    (r"\.convtr\.convtr\.", ".conv."),
    (r"\.(conv|convtr)\.norm\.", ".norm."),
    (r"^quantizer\.vq\.layers\.(\d+)\._codebook\.", r"quantizer.layers.\1.codebook."),
]


def _dac_rules(num_blocks: int) -> list[tuple[str, str]]:
    """descript-audio-codec: everything in ``block``/``model`` Sequentials, residual units included."""
    unit = {0: "snake1", 1: "conv1", 2: "snake2", 3: "conv2"}
    rules = [
        (r"^quantizer\.quantizers\.", "quantizer.layers."),
        # residual units inside encoder/decoder blocks: block.{i}.block.{j}.block.{k}
        (r"^encoder\.block\.(\d+)\.block\.([012])\.block\.(\d)\.",
         lambda m: f"encoder.block.{int(m[1]) - 1}.res_unit{int(m[2]) + 1}.{unit[int(m[3])]}."),
        (r"^decoder\.model\.(\d+)\.block\.([234])\.block\.(\d)\.",
         lambda m: f"decoder.block.{int(m[1]) - 1}.res_unit{int(m[2]) - 1}.{unit[int(m[3])]}."),
        (r"^encoder\.block\.(\d+)\.block\.3\.", lambda m: f"encoder.block.{int(m[1]) - 1}.snake1."),
        (r"^encoder\.block\.(\d+)\.block\.4\.", lambda m: f"encoder.block.{int(m[1]) - 1}.conv1."),
        (r"^decoder\.model\.(\d+)\.block\.0\.", lambda m: f"decoder.block.{int(m[1]) - 1}.snake1."),
        (r"^decoder\.model\.(\d+)\.block\.1\.", lambda m: f"decoder.block.{int(m[1]) - 1}.conv_t1."),
        # first and last layers of the encoder and decoder
        (r"^encoder\.block\.0\.", "encoder.conv1."),
        (rf"^encoder\.block\.{num_blocks + 1}\.", "encoder.snake1."),
        (rf"^encoder\.block\.{num_blocks + 2}\.", "encoder.conv2."),
        (r"^decoder\.model\.0\.", "decoder.conv1."),
        (rf"^decoder\.model\.{num_blocks + 1}\.", "decoder.snake1."),
        (rf"^decoder\.model\.{num_blocks + 2}\.", "decoder.conv2."),
    ]
    return rules


def _apply(state: dict, rules) -> dict:
    out = {}
    for key, value in state.items():
        for pattern, replacement in rules:
            new = re.sub(pattern, replacement, key)
            if new != key:
                key = new
                if callable(replacement):  # each DAC rule consumes the prefix it matched
                    break
        out[key] = value
    return out


def _load(path) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"cannot read checkpoint {path}: {error}") from None


def convert_encodec_checkpoint(path, preset: str = "encodec_24khz", **config_overrides):
    """A ``MusicCodecModel`` from an original EnCodec ``.th`` file (``encodec_24khz-d7cc33bc.th``,
    ``encodec_48khz-7e698e3e.th``). ``preset`` names the configuration it was trained with."""
    from ..modeling_music_codec import MusicCodecModel

    state = _load(path)
    state = state.get("best_state", state) if isinstance(state, dict) else state
    state = rename_keys(state, ENCODEC_RULES)
    # The codebooks themselves say how many there are and how large they are.
    embeds = [v for k, v in state.items() if re.fullmatch(r"quantizer\.layers\.\d+\.codebook\.embed", k)]
    if embeds:
        config_overrides = {"num_quantizers": len(embeds), "codebook_size": embeds[0].shape[0], **config_overrides}
    model = MusicCodecModel(MusicCodecConfig.from_preset(preset, **config_overrides))
    return load_strict(model, state, str(path)).eval()


def convert_dac_checkpoint(path):
    """A ``MusicCodecModel`` from an original DAC ``.pth`` file (``weights_44khz_8kbps_0.0.1.pth``
    and the others): the configuration comes from the file's own metadata."""
    from ..modeling_music_codec import MusicCodecModel

    checkpoint = _load(path)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path} is not a DAC checkpoint (no 'state_dict' entry)")
    meta = (checkpoint.get("metadata") or {}).get("kwargs", {})
    rates = list(meta.get("encoder_rates", [2, 4, 8, 8]))
    encoder_dim = meta.get("encoder_dim", 64)
    config = MusicCodecConfig(
        architecture="dac", sampling_rate=meta.get("sample_rate", 44_100), num_filters=encoder_dim,
        hidden_size=meta.get("latent_dim") or encoder_dim * 2 ** len(rates), upsampling_ratios=list(reversed(rates)),
        decoder_hidden_size=meta.get("decoder_dim", 1536), quantizer_type="factorized",
        num_quantizers=meta.get("n_codebooks", 9), codebook_size=meta.get("codebook_size", 1024),
        codebook_dim=meta.get("codebook_dim", 8), quantizer_dropout=float(meta.get("quantizer_dropout", 0.0)),
        commitment_weight=0.25, codebook_weight=1.0, pad_to_hop=True,
    )
    if list(meta.get("decoder_rates", config.upsampling_ratios)) != config.upsampling_ratios:
        raise ValueError("DAC checkpoints whose decoder rates are not the reversed encoder rates are not supported")
    state = _apply(checkpoint["state_dict"], _dac_rules(len(rates)))
    model = MusicCodecModel(config)
    return load_strict(model, state, str(path)).eval()
