"""mattrace's pytest plugin (loaded through the ``pytest11`` entry point).

``@pytest.mark.mattrace(contracts=..., trials=k, config=..., oracle=...)`` and the ``mat``
fixture record runs of the code under test, check contracts on each (safety violations
fail the test, quality ones are reported), repeat the test body over seeds, and at the end
of the session ingest every trace into the DuckDB store and print the metrics. See
``docs/pytest.md``.

Importing this module costs nothing beyond ``mattrace`` itself: the store (DuckDB) and
the renderers are imported only by sessions that recorded something.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import pytest

from mattrace.pytest_plugin._marker import MARKER, MarkerError, marker_spec
from mattrace.pytest_plugin._mat import ContractFailure, Mat, MatRun
from mattrace.pytest_plugin._options import Settings, add_options
from mattrace.pytest_plugin._progress import note_terminal
from mattrace.pytest_plugin._session import QUALITY_KEY, SESSION_KEY, MatSession, QualityNote

__all__ = ["ContractFailure", "Mat", "MatRun", "Settings"]

QUALITY_ATTR = "mattrace_quality"
FAULT_CASE = "mattrace_fault_case"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(contracts=..., trials=k, config=..., oracle=..., concurrency=n, faults=..., "
        "governor=..., search=space, budget=...): record this test's runs with the mat fixture, check "
        "contracts on each, repeat it over k seeds, or search perturbations for a counterexample")
    # litellm's logging threads build pydantic types that use typing.ReadOnly after a test
    # has ended, outside pytest's per-test warning capture; without this every session
    # that recorded an LLM call ends with two screens of pydantic warnings.
    warnings.filterwarnings("ignore", message=r"Items? .* using the `ReadOnly` qualifier",
                            category=UserWarning)
    session = MatSession(config)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(_QualityCollector(session), f"mattrace-quality-{id(session)}")


def _session(config: pytest.Config) -> MatSession:
    return config.stash[SESSION_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Check the marker while collecting, so a bad one fails collection of its module."""
    if metafunc.definition.get_closest_marker(MARKER) is None:
        return
    try:
        spec = marker_spec(metafunc.definition, metafunc.definition.path)
    except MarkerError as exc:
        raise pytest.Collector.CollectError(str(exc)) from None
    if spec.matrix is not None:   # a fault campaign: one test item per case, named after its faults
        metafunc.fixturenames.append(FAULT_CASE)
        metafunc.parametrize(FAULT_CASE, list(spec.matrix.cases), ids=[c.id for c in spec.matrix.cases])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A marked test gets the ``mat`` fixture even when it does not ask for it (trials still run)."""
    for item in items:
        if isinstance(item, pytest.Function) and item.get_closest_marker(MARKER) is not None \
                and "mat" not in item.fixturenames:
            item.fixturenames.append("mat")


@pytest.fixture
def mat(request: pytest.FixtureRequest) -> Mat:
    """Record runs of the code under test: ``with mat.run(config=...) as run: ...``.

    Contracts, trials, config and oracle come from ``@pytest.mark.mattrace(...)``.
    """
    session = _session(request.config)
    try:
        spec = marker_spec(request.node, request.node.path)
    except MarkerError as exc:
        raise pytest.UsageError(str(exc)) from None
    callspec = getattr(request.node, "callspec", None)
    case = callspec.params.get(FAULT_CASE) if callspec is not None else None
    faults = (*session.suite_faults, *spec.faults, *(case.faults if case is not None else ()))
    return Mat(session, replace(spec, faults=faults), request.node.nodeid, 0, session.settings.seed)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run the trials of a test that uses ``mat`` and fail it on its contracts."""
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


class _QualityCollector:
    """Reads the quality violations of every test report (xdist workers' too) for the summary."""

    def __init__(self, session: MatSession) -> None:
        self.session = session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for data in getattr(report, QUALITY_ATTR, None) or ():
            self.session.note_quality(QualityNote(**data))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Carry a test's quality violations on its report (xdist sends report attributes to the controller)."""
    report = yield
    if call.when == "call":
        notes = item.stash.get(QUALITY_KEY, None)
        if notes:
            setattr(report, QUALITY_ATTR, notes)
    return report


def pytest_sessionstart(session: pytest.Session) -> None:
    note_terminal(session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _session(session.config).finish()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each xdist worker the run it writes into."""
    node.workerinput.update(_session(node.config).worker_input())


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    from mattrace.pytest_plugin._summary import write_summary

    write_summary(terminalreporter, _session(config))
