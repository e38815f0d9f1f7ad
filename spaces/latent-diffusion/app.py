"""Hugging Face Space: generate music from a text prompt, transform a clip (audio-to-audio) or
regenerate part of one (inpainting) with hf-musiccodec's latent diffusion MusicDiffusionPipeline.

Run locally from the repository root::

    .venv/bin/pip install -e ".[spaces]"
    .venv/bin/python spaces/latent-diffusion/app.py        # http://127.0.0.1:7860

``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` choose the address (a Space sets 0.0.0.0:7860),
``LATENT_DIFFUSION_MODEL`` the pipeline folder (default ``pipelines/music-diffusion``),
``LATENT_DIFFUSION_MAX_SECONDS`` the longest generation (default 30 s),
``LATENT_DIFFUSION_MAX_UPLOAD_SECONDS`` the longest upload (default 60 s). The logic lives in
``latent_diffusion_demo.py`` beside this file.
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

from latent_diffusion_demo import build_demo, main  # noqa: E402

if __name__ == "__main__":
    main()
else:  # imported (e.g. `gradio app.py` reload mode): expose the page as `demo`
    demo = build_demo()
