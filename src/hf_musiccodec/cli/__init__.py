"""The ``hf-musiccodec`` command line: ``compress``, ``decompress``, ``info``, ``demo``, ``text-to-music`` and ``vamp``.

Importing this package is cheap: torch and the models load only when a command runs.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
