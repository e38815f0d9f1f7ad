"""The ``hf-musiccodec`` command line: ``compress``, ``decompress``, ``info`` and ``demo``.

Importing this package is cheap: torch and the models load only when a command runs.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
