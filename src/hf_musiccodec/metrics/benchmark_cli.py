"""The command-line contract the generation benchmarks under ``benchmarks/`` share."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable


def run_benchmark(name: str, args, run: Callable, report: Callable[[dict], str],
                  to_json: Callable[[dict], object] = lambda result: result) -> int:
    """A benchmark script's ``main``: ``result = run(args)``, ``report(result)`` on stdout and, with
    ``args.json``, ``to_json(result)`` written there; returns the exit status.

    Bad input (a ``ValueError`` or ``OSError``: ``GeneratorError`` and the benchmarks' own errors are
    ValueErrors) is one line ``<name>: error: <first line>`` on stderr and exit status 2, no traceback.
    """
    try:
        result = run(args)
    except (ValueError, OSError) as e:
        message = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"{name}: error: {message}", file=sys.stderr)
        return 2
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(result), indent=2) + "\n")
    return 0
