import json

import pytest
from transformers import AutoConfig

from hf_musiccodec import MusicCodecConfig
from hf_musiccodec.codecs import PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_a_consistent_config(name):
    config = MusicCodecConfig.from_preset(name)
    assert config.hop_length == 1 if not config.upsampling_ratios else config.hop_length > 1
    for bandwidth in config.target_bandwidths:
        assert 1 <= config.num_quantizers_for_bandwidth(bandwidth) <= config.num_quantizers


def test_published_bitrates():
    encodec = MusicCodecConfig.from_preset("encodec_24khz")
    assert encodec.frame_rate == 75 and encodec.num_quantizers == 32
    assert [encodec.num_quantizers_for_bandwidth(b) for b in encodec.target_bandwidths] == [2, 4, 8, 16, 32]
    encodec48 = MusicCodecConfig.from_preset("encodec_48khz")
    assert encodec48.frame_rate == 150 and encodec48.num_quantizers_for_bandwidth(24.0) == 16
    dac44 = MusicCodecConfig.from_preset("dac_44khz")
    assert dac44.hop_length == 512 and dac44.num_quantizers == 9
    assert dac44.target_bandwidths[-1] == pytest.approx(7.752, abs=1e-3)  # DAC's "8 kbps"
    soundstream = MusicCodecConfig.from_preset("soundstream_24khz")
    assert [soundstream.num_quantizers_for_bandwidth(b) for b in (3, 6, 12, 18)] == [4, 8, 16, 24]


def test_invalid_values_are_rejected():
    with pytest.raises(ValueError, match="power of two"):
        MusicCodecConfig(codebook_size=1000)
    with pytest.raises(ValueError, match="architecture"):
        MusicCodecConfig(architecture="wavenet")
    with pytest.raises(ValueError, match="needs more"):
        MusicCodecConfig(num_quantizers=2, target_bandwidths=[24.0])
    with pytest.raises(ValueError, match="unknown preset"):
        MusicCodecConfig.from_preset("mp3")


def test_round_trip_and_auto_config(tmp_path):
    config = MusicCodecConfig.from_preset("dac_24khz", quantizer_dropout=0.5)
    config.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "music_codec"
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, MusicCodecConfig)
    assert loaded.to_diff_dict() | {"_name_or_path": ""} == config.to_diff_dict() | {"_name_or_path": ""}
