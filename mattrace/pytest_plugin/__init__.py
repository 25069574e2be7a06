"""mattrace's pytest plugin proper, loaded by the entry module ``_mattrace_pytest`` when a
test first uses the ``mattrace`` marker or the ``mat`` fixture.

``@pytest.mark.mattrace(contracts=..., trials=k, config=..., oracle=...)`` and the ``mat``
fixture record runs of the code under test, check contracts on each (safety violations
fail the test, quality ones are reported), repeat the test body over seeds, and at the end
of the session ingest every trace into the DuckDB store and print the metrics. See
``docs/pytest.md``.

The entry module owns the hooks and calls the functions here; sessions that never use
mattrace never import it. Importing this module costs nothing beyond ``mattrace`` itself:
the store (DuckDB) and the renderers are imported only by sessions that recorded something.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import pytest

from mattrace.pytest_plugin import _marker
from mattrace.pytest_plugin import _session as _sessions
from mattrace.pytest_plugin._cassettes import CassetteMismatch
from mattrace.pytest_plugin._mat import ContractFailure, Mat, MatRun
from mattrace.pytest_plugin._options import Settings

__all__ = [
    "CassetteMismatch",
    "ContractFailure",
    "finish",
    "generate_tests",
    "Mat",
    "mat_fixture",
    "MatRun",
    "note_quality",
    "pyfunc_call",
    "Settings",
    "start",
    "terminal_summary",
]

_FAULT_CASE = "mattrace_fault_case"
pytest_plugins = ["_mattrace_pytest"]
"""``-p mattrace.pytest_plugin`` (with plugin autoloading off) loads the entry module, which
owns the hooks: naming this module the old way must not load a plugin that does nothing."""


def start(config: pytest.Config) -> _sessions.MatSession:
    """Set up this session's mattrace state (the first time a test uses mattrace)."""
    # litellm's logging threads build pydantic types that use typing.ReadOnly after a test
    # has ended, outside pytest's per-test warning capture; without this every session
    # that recorded an LLM call ends with two screens of pydantic warnings.
    warnings.filterwarnings("ignore", message=r"Items? .* using the `ReadOnly` qualifier",
                            category=UserWarning)
    session = _sessions.MatSession(config)
    config.stash[_sessions.SESSION_KEY] = session
    return session


def _session(config: pytest.Config) -> _sessions.MatSession:
    return config.stash[_sessions.SESSION_KEY]


def generate_tests(metafunc: pytest.Metafunc) -> None:
    """Check the marker while collecting, so a bad one fails collection of its module."""
    try:
        spec = _marker.marker_spec(metafunc.definition, metafunc.definition.path)
    except _marker.MarkerError as exc:
        raise pytest.Collector.CollectError(str(exc)) from None
    if spec.matrix is not None:   # a fault campaign: one test item per case, named after its faults
        metafunc.fixturenames.append(_FAULT_CASE)
        metafunc.parametrize(_FAULT_CASE, list(spec.matrix.cases), ids=[c.id for c in spec.matrix.cases])


def mat_fixture(request: pytest.FixtureRequest) -> Mat:
    """The ``mat`` fixture's value: contracts, trials, config and oracle from the marker."""
    session = _session(request.config)
    try:
        spec = _marker.marker_spec(request.node, request.node.path)
    except _marker.MarkerError as exc:
        raise pytest.UsageError(str(exc)) from None
    callspec = getattr(request.node, "callspec", None)
    case = callspec.params.get(_FAULT_CASE) if callspec is not None else None
    faults = (*session.suite_faults, *spec.faults, *(case.faults if case is not None else ()))
    return Mat(session, replace(spec, faults=faults), request.node.nodeid, 0, session.settings.seed)


def pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run the trials (or the search) of a test that uses ``mat`` and fail it on its contracts."""
    first = pyfuncitem.funcargs.get("mat")
    if not isinstance(first, Mat):
        return None
    if first.spec.search is not None:
        from mattrace.pytest_plugin._search import run_search_test

        run_search_test(pyfuncitem, _session(pyfuncitem.config), first.spec, first)
        return True
    from mattrace.pytest_plugin._trials import run_trials

    run_trials(pyfuncitem, _session(pyfuncitem.config), first.spec, first)
    return True


def note_quality(config: pytest.Config, notes: list[dict[str, Any]]) -> None:
    """Keep a test's quality notes (from its report, in any process) for the summary."""
    for data in notes:
        _session(config).note_quality(_sessions.QualityNote(**data))


def finish(config: pytest.Config) -> None:
    """Close this process's results; the controller ingests the run."""
    _session(config).finish()


def terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The metric table and the quality notes at the end of the session."""
    from mattrace.pytest_plugin._summary import write_summary

    write_summary(terminalreporter, _session(config))
