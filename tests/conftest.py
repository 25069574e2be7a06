"""Shared fixtures: every test runs in its own directory, with no HMAC key inherited."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Imported once, before any pytester run: pytester removes the modules an in-process run
# imported when it ends, and importing duckdb's native extension a second time aborts
# the interpreter (the plugin's end-of-session ingest imports it inside those runs).
import duckdb  # noqa: F401
import pytest
from hypothesis import HealthCheck, settings

from mattrace.tracefile import HMAC_ENV

# Tests run in parallel on shared two-core machines: a generated example that is slow to
# build under load says nothing about the code, so hypothesis' timing checks stay off.
settings.register_profile("mattrace", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mattrace")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the default `.mattrace/traces` land in tmp_path and drop any HMAC key from the env."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(HMAC_ENV, raising=False)


@pytest.fixture
def trace_dir(tmp_path: Path) -> Path:
    """A fresh directory for trace files."""
    path = tmp_path / "traces"
    path.mkdir()
    return path


def _preimport_hypothesis_patcher() -> None:
    """Import hypothesis' patch writer now, with its import-time DeprecationWarning silenced.

    Hypothesis imports it (and libcst, which warns at import) while it reports a failing
    example; under ``filterwarnings = error`` that turned every hypothesis failure into an
    INTERNALERROR that hid the falsifying example.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            importlib.import_module("hypothesis.extra._patching")
        except ImportError:
            pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Before a failure is reported (in the worker that ran it), make the patch writer importable."""
    if call.excinfo is not None:
        _preimport_hypothesis_patcher()
    yield


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Same for the summary, which under xdist runs in the controller process."""
    if terminalreporter.stats.get("failed"):
        _preimport_hypothesis_patcher()
