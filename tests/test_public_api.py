"""The public API is what ``__all__`` says: complete, sorted, importable, and light to import."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

PUBLIC_MODULES = ["mattrace", "mattrace.recording", "mattrace.testing", "mattrace.errors",
                  "mattrace.trace", "mattrace.tracefile", "mattrace.recording.interceptors",
                  "mattrace.recording.boundaries",
                  "mattrace.recording.redact", "mattrace.recording.recorder", "mattrace.contracts",
                  "mattrace.store", "mattrace.replay", "mattrace.faults",
                  "mattrace.governance", "mattrace.search"]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_every_name_exists(name: str) -> None:
    """Each public module's __all__ is sorted (case-insensitively), unique, and names things that exist."""
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=str.casefold), f"{name}.__all__ is not sorted"
    assert len(exported) == len(set(exported))
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_complete(name: str) -> None:
    """Every public class and function a module defines (a package: re-exports) is in __all__."""
    module = importlib.import_module(name)
    is_package = hasattr(module, "__path__")
    public = {n for n, v in vars(module).items()
              if not n.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))
              and (getattr(v, "__module__", "") or "").startswith("mattrace")
              and (is_package or v.__module__ == name)}
    assert public <= set(module.__all__), f"not exported from {name}: {sorted(public - set(module.__all__))}"


def test_importing_mattrace_does_not_import_heavy_optional_dependencies() -> None:
    """`import mattrace` leaves litellm, duckdb and OpenTelemetry unimported, and sets the offline price map."""
    code = ("import sys, os, mattrace; "
            "print(sorted(m for m in ('litellm', 'duckdb', 'opentelemetry') if m in sys.modules)); "
            "print(os.environ.get('LITELLM_LOCAL_MODEL_COST_MAP'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={k: v for k, v in __import__("os").environ.items()
                              if k != "LITELLM_LOCAL_MODEL_COST_MAP"}).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "True"
