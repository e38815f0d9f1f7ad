"""Benchmarks are scripts, not package modules: the tests load each one as a module."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` as a module (registered in ``sys.modules``: dataclasses look their
    module up there); the caller removes it with ``sys.modules.pop(module.__name__)``."""
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def benchmark_fixture(name: str):
    """A module-scoped fixture giving ``benchmarks/<name>.py`` as a module, unregistered afterwards."""

    @pytest.fixture(scope="module")
    def fixture():
        module = load_benchmark(name)
        yield module
        sys.modules.pop(module.__name__, None)

    return fixture
