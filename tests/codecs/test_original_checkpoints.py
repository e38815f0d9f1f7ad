"""The original repositories' checkpoint files (EnCodec ``.th``, DAC ``.pth``).

The files are made from transformers reference models by the inverse of the key tables in
transformers' own conversion scripts (which map the real published files), then converted back
with this package and compared with the reference on the same input.
"""

import copy
import re

import pytest
import torch
from transformers.models.encodec.modeling_encodec import EncodecConvTranspose1d

from hf_musiccodec.codecs.conversion import convert_dac_checkpoint, convert_encodec_checkpoint
from hf_musiccodec.testing.parity import OFFICIAL_CONFIGS, build_reference, compare

from .test_parity import SHRINK


def _weight_norm_names(key: str) -> str:
    return key.replace("parametrizations.weight.original0", "weight_g").replace(
        "parametrizations.weight.original1", "weight_v")


def encodec_original_state(reference) -> dict:
    transposed = {name for name, m in reference.named_modules() if isinstance(m, EncodecConvTranspose1d)}
    state = {}
    for key, value in reference.state_dict().items():
        key = _weight_norm_names(key)
        module, _, leaf = key.rpartition(".")
        if module.endswith(".conv") or module.endswith(".norm"):
            owner, kind = module.rsplit(".", 1)
            wrapper = "convtr" if owner in transposed else "conv"
            module = f"{owner}.{wrapper}.{wrapper if kind == 'conv' else 'norm'}"
        module = re.sub(r"^(encoder|decoder)\.layers\.", r"\1.model.", module)
        module = re.sub(r"^quantizer\.layers\.(\d+)\.codebook", r"quantizer.vq.layers.\1._codebook", module)
        state[f"{module}.{leaf}"] = value
    return state


def dac_original_state(reference) -> dict:
    n = len(reference.config.downsampling_ratios)
    unit = {"snake1": 0, "conv1": 1, "snake2": 2, "conv2": 3}
    rules = [
        (r"^encoder\.block\.(\d+)\.res_unit(\d)\.(\w+)\.", lambda m: f"encoder.block.{int(m[1]) + 1}.block.{int(m[2]) - 1}.block.{unit[m[3]]}."),
        (r"^decoder\.block\.(\d+)\.res_unit(\d)\.(\w+)\.", lambda m: f"decoder.model.{int(m[1]) + 1}.block.{int(m[2]) + 1}.block.{unit[m[3]]}."),
        (r"^encoder\.block\.(\d+)\.snake1\.", lambda m: f"encoder.block.{int(m[1]) + 1}.block.3."),
        (r"^encoder\.block\.(\d+)\.conv1\.", lambda m: f"encoder.block.{int(m[1]) + 1}.block.4."),
        (r"^decoder\.block\.(\d+)\.snake1\.", lambda m: f"decoder.model.{int(m[1]) + 1}.block.0."),
        (r"^decoder\.block\.(\d+)\.conv_t1\.", lambda m: f"decoder.model.{int(m[1]) + 1}.block.1."),
        (r"^encoder\.conv1\.", "encoder.block.0."), (r"^encoder\.snake1\.", f"encoder.block.{n + 1}."),
        (r"^encoder\.conv2\.", f"encoder.block.{n + 2}."), (r"^decoder\.conv1\.", "decoder.model.0."),
        (r"^decoder\.snake1\.", f"decoder.model.{n + 1}."), (r"^decoder\.conv2\.", f"decoder.model.{n + 2}."),
    ]
    normed = copy.deepcopy(reference)
    normed.apply_weight_norm()
    state = {}
    for key, value in normed.state_dict().items():
        key = _weight_norm_names(key)
        for pattern, replacement in rules:
            new = re.sub(pattern, replacement, key)
            if new != key:
                key = new
                break
        state[key] = value.clone()
    return state


@pytest.mark.parametrize("name", ["encodec_24khz", "encodec_32khz", "encodec_48khz"])
def test_encodec_th_checkpoint(tmp_path, name):
    kind, kwargs = OFFICIAL_CONFIGS[name]
    reference = build_reference(kind, **{**kwargs, **SHRINK[kind]})
    path = tmp_path / f"{name}.th"
    torch.save(encodec_original_state(reference), path)
    model = convert_encodec_checkpoint(path, preset=name, **{k: v for k, v in SHRINK[kind].items()})
    x = 0.3 * torch.randn(1, reference.config.audio_channels, reference.config.sampling_rate // 2)
    result = compare(name, reference, model, x, model.config.target_bandwidths[-1])
    assert result.codes_equal and result.max_audio_diff < 1e-4


@pytest.mark.parametrize("name", ["dac_16khz", "dac_44khz"])
def test_dac_pth_checkpoint(tmp_path, name):
    kind, kwargs = OFFICIAL_CONFIGS[name]
    reference = build_reference(kind, **{**kwargs, **SHRINK[kind]})
    cfg = reference.config
    metadata = {"kwargs": dict(encoder_dim=cfg.encoder_hidden_size, encoder_rates=list(cfg.downsampling_ratios),
                               latent_dim=None, decoder_dim=cfg.decoder_hidden_size,
                               decoder_rates=list(cfg.upsampling_ratios), n_codebooks=cfg.n_codebooks,
                               codebook_size=cfg.codebook_size, codebook_dim=cfg.codebook_dim,
                               quantizer_dropout=0.0, sample_rate=cfg.sampling_rate)}
    path = tmp_path / f"{name}.pth"
    torch.save({"state_dict": dac_original_state(reference), "metadata": metadata}, path)
    model = convert_dac_checkpoint(path)
    x = 0.3 * torch.randn(1, 1, cfg.hop_length * 20)
    result = compare(name, reference, model, x, model.config.target_bandwidths[-1])
    assert result.codes_equal and result.max_audio_diff < 1e-4


def test_unreadable_or_foreign_checkpoint_files(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        convert_dac_checkpoint(junk)
    plain = tmp_path / "plain.pth"
    torch.save({"weights": torch.zeros(1)}, plain)
    with pytest.raises(ValueError, match="not a DAC checkpoint"):
        convert_dac_checkpoint(plain)
    with pytest.raises(FileNotFoundError):
        convert_encodec_checkpoint(tmp_path / "missing.th")
