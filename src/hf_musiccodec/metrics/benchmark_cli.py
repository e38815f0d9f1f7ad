"""What the generation benchmarks under ``benchmarks/`` share: their command-line contract and the
process memory readings (Linux ``/proc``) that their peak-memory columns use."""

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


def process_memory_mb(field: str = "VmRSS") -> float:
    """This process's ``VmRSS`` (resident now) or ``VmHWM`` (peak resident) in MB; NaN off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def reset_peak_memory() -> None:
    """Reset ``VmHWM`` to the current resident size (Linux), so a later reading is the peak since now."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
