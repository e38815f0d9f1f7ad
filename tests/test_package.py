"""The package root: lazy public classes, and transformers' Auto classes knowing our models in
whatever order the two packages are imported."""

import subprocess
import sys

import pytest

ORDERS = {
    "ours first": "import hf_musiccodec; import transformers",
    "transformers first": "import transformers; import hf_musiccodec",
    "a subpackage first": "import hf_musiccodec.codecs; import transformers",
    # gradio looks for transformers with find_spec before anything imports it
    "found before imported": "import hf_musiccodec, importlib.util; importlib.util.find_spec('transformers'); "
                             "import transformers",
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_auto_classes_know_our_models(order):
    script = ORDERS[order] + """
from transformers import AutoConfig, AutoModel, AutoProcessor
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
assert "music_codec" in CONFIG_MAPPING and "music_clap" in CONFIG_MAPPING and "frozen_minilm" in CONFIG_MAPPING
config = AutoConfig.for_model("music_codec")
assert type(AutoModel.from_config(config)).__name__ == "MusicCodecModel"
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_root_import_is_light_and_lazy():
    script = """
import sys, hf_musiccodec
assert "torch" not in sys.modules and "transformers" not in sys.modules, "the root imported torch"
from hf_musiccodec import MusicCodecModel, MusicClapModel, TextEncoder
assert MusicCodecModel.__module__.startswith("hf_musiccodec.codecs")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
