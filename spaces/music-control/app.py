"""Hugging Face Space: Music ControlNet (controls from a reference) and DITTO (a drawn loudness curve)
with hf-musiccodec's MusicControlNetPipeline and DittoPipeline.

Run locally from the repository root::

    .venv/bin/pip install -e ".[spaces]"
    .venv/bin/python spaces/music-control/app.py        # http://127.0.0.1:7860

``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` choose the address (a Space sets 0.0.0.0:7860),
``MUSIC_CONTROL_MODEL`` the ControlNet pipeline folder (default ``pipelines/music-controlnet``),
``DITTO_MODEL`` the DITTO one (default ``pipelines/ditto``). The logic lives in
``music_control_demo.py`` beside this file.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
try:
    import hf_musiccodec  # noqa: F401
except ImportError:  # a source checkout without `pip install`: use the repository's src/
    _SRC = _HERE.parents[1] / "src"
    if (_SRC / "hf_musiccodec").is_dir():
        sys.path.insert(0, str(_SRC))

from music_control_demo import build_demo, main  # noqa: E402

if __name__ == "__main__":
    main()
else:  # imported (e.g. `gradio app.py` reload mode): expose the page as `demo`
    demo = build_demo()
