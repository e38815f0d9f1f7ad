"""MusicCodecModel against transformers' EncodecModel/DacModel, on tiny versions of each official layout."""

import json

import pytest
import torch

from hf_musiccodec import MusicCodecModel
from hf_musiccodec.codecs.conversion.state_dict import CheckpointMismatchError
from hf_musiccodec.testing.parity import OFFICIAL_CONFIGS, build_reference, compare, convert_through_hub_layout

SHRINK = {
    "encodec": dict(num_filters=4, hidden_size=8, codebook_size=32, num_lstm_layers=1),
    "dac": dict(encoder_hidden_size=2, decoder_hidden_size=16),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL_CONFIGS))
def test_codes_and_audio_match_transformers(name):
    kind, kwargs = OFFICIAL_CONFIGS[name]
    reference = build_reference(kind, **{**kwargs, **SHRINK[kind]})
    model = convert_through_hub_layout(reference)
    channels = reference.config.audio_channels if kind == "encodec" else 1
    length = int(1.3 * reference.config.sampling_rate)
    if kind == "dac":
        length -= length % reference.config.hop_length
    x = 0.3 * torch.randn(2, channels, length, generator=torch.Generator().manual_seed(1))
    for bandwidth in (model.config.target_bandwidths[0], model.config.target_bandwidths[-1]):
        result = compare(name, reference, model, x, bandwidth)
        assert result.codes_equal, result
        assert result.max_audio_diff < 1e-4, result


def test_hub_checkpoint_with_weight_g_and_v(tmp_path):
    """facebook/encodec_* files store weight norm as weight_g / weight_v (the pre-parametrization names)."""
    from safetensors.torch import load_file, save_file

    reference = build_reference("encodec", **SHRINK["encodec"])
    reference.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    renamed = {k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                                 "weight_v"): v for k, v in state.items()}
    save_file(renamed, tmp_path / "model.safetensors")
    model = MusicCodecModel.from_pretrained(tmp_path)
    x = 0.3 * torch.randn(1, 1, 4800)
    assert compare("encodec", reference, model, x, 24.0).codes_equal


def test_mismatched_checkpoint_lists_missing_and_unexpected_keys(tmp_path):
    reference = build_reference("dac", **SHRINK["dac"], n_codebooks=3)
    reference.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["n_codebooks"] = 4  # the config now promises a codebook the weights lack
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointMismatchError, match=r"missing keys \[quantizer\.layers\.3\..*unexpected keys \[\]"):
        MusicCodecModel.from_pretrained(tmp_path)
    config["n_codebooks"], config["codebook_dim"] = 3, 4
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointMismatchError, match="size mismatch"):
        MusicCodecModel.from_pretrained(tmp_path)
