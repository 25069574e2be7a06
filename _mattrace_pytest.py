"""mattrace's pytest entry point (``pytest11``): options, ini keys and the marker, nothing more.

Every pytest session of a project that has mattrace installed loads this module, most of
them never using mattrace. So it imports only pytest and the standard library; the plugin
proper (:mod:`mattrace.pytest_plugin`, which imports mattrace) is loaded the first time a
test carries the ``mattrace`` marker or asks for the ``mat`` fixture, as hypothesis's
``_hypothesis_pytestplugin`` does. Under pytest-xdist the controller collects nothing, so
it loads the plugin at the end only if a worker recorded something for this run (or a
report carries mattrace's notes).
"""

from __future__ import annotations

import importlib
import os
import re
import secrets
import tempfile
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# litellm fetches its model price map over the network when it is imported (a failed fetch
# logs warnings and retries for seconds in a background thread) unless told not to, and a
# test module often imports litellm before anything imports mattrace, whose own import says
# so too late. pytest loads this module before any conftest or test module: say it here, so
# no test run reaches the network for it whatever the import order. An explicit setting wins.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__all__ = [
    "DEFAULT_STORE",
    "INTERACTIVE",
    "MARKER",
    "note_terminal",
    "QUALITY_ATTR",
    "QUALITY_KEY",
    "RECORD_MODES",
    "RunPlace",
    "run_place",
    "Settings",
    "store_option",
]

MARKER = "mattrace"
DEFAULT_STORE = ".mattrace"
RECORD_MODES = ("none", "once", "new", "all")
QUALITY_ATTR = "mattrace_quality"
"""The test-report attribute that carries a test's quality notes (xdist ships it to the controller)."""
QUALITY_KEY = pytest.StashKey[list[dict[str, Any]]]()
"""A test's quality violations that did not fail it, passed on its report to the summary."""
INTERACTIVE = pytest.StashKey[bool]()
"""Whether pytest writes to an interactive terminal (asked at session start)."""
_PLUGIN = pytest.StashKey[ModuleType]()
_PLACE = pytest.StashKey["RunPlace"]()
_SETTINGS = pytest.StashKey["Settings"]()
_RUN_ID, _BASE = "mattrace_run_id", "mattrace_base"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mattrace", "mattrace: contracts, trials and metrics of recorded runs")
    group.addoption("--mattrace-store", metavar="DIR", default=None,
                    help="directory for trace files, results and the DuckDB store "
                         f"(default {DEFAULT_STORE}/ under the rootdir; ini: mattrace_store)")
    group.addoption("--mattrace-seed", metavar="N", default=None,
                    help="seed of trial 0; trial i uses N+i (default 0; ini: mattrace_seed)")
    group.addoption("--mattrace-strict", action="store_true", default=None,
                    help="quality contract violations and vacuous passes (a contract that never applied) "
                         "fail tests too (ini: mattrace_strict)")
    group.addoption("--mattrace-no-store", action="store_true", default=None,
                    help="write nothing under the store: traces go to a temporary directory and "
                         "metrics are computed in memory (ini: mattrace_no_store)")
    group.addoption("--mattrace-record", default=None, choices=RECORD_MODES,
                    help="cassettes of each test's runs: once (default: record if missing, else replay), "
                         "none (replay only), new (record what is missing or changed), all (record afresh); "
                         "ini: mattrace_record")
    group.addoption("--mattrace-faults", metavar="FILE", default=None,
                    help="inject the faults of this TOML fault plan into every mat.run() of the suite "
                         "(ini: mattrace_faults)")
    group.addoption("--mattrace-concurrency", metavar="N", default=None,
                    help="trials of one test run in up to N threads (default 1; the marker's "
                         "concurrency= wins; ini: mattrace_concurrency)")
    group.addoption("--mattrace-budget", metavar="LIMITS", default=None,
                    help="cap every search of the session, e.g. runs=50,tokens=2e5,usd=1 (limits: runs, "
                         "llm_calls, tokens, usd, seconds; the tighter of this and the marker's budget= wins; "
                         "ini: mattrace_budget)")
    group.addoption("--mattrace-report", metavar="FILE", default=None,
                    help="write the session's HTML report to FILE at the end (ini: mattrace_report)")
    parser.addini("mattrace_store", "directory for trace files, results and the DuckDB store",
                  default=DEFAULT_STORE)
    parser.addini("mattrace_seed", "seed of trial 0", default="0")
    parser.addini("mattrace_strict", "quality contract violations and vacuous passes fail tests too",
                  type="bool", default=False)
    parser.addini("mattrace_no_store", "write nothing under the store directory", type="bool", default=False)
    parser.addini("mattrace_concurrency", "threads for the trials of one test", default="1")
    parser.addini("mattrace_record", "cassette mode: once, none, new or all", default="once")
    parser.addini("mattrace_faults", "a TOML fault plan injected into every mat.run()", default="")
    parser.addini("mattrace_budget", "a cap on every search, e.g. runs=50,usd=1", default="")
    parser.addini("mattrace_report", "write the session's HTML report to this file", default="")
    parser.addini("mattrace_match_on", "what replay compares to find a call's recorded answer: kind target agent "
                  "args (the default: all of them)", default="")
    parser.addini("mattrace_ignore", "left out when replay compares calls: argument paths (metadata.request_id, "
                  "messages[*].name) and re:<regex> patterns masked in every argument string", type="linelist",
                  default=[])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(contracts=..., trials=k, config=..., oracle=..., concurrency=n, faults=..., "
        "governor=..., search=space, budget=..., ignore=[...], match_on=[...]): record this test's runs with the "
        "mat fixture, check "
        "contracts on each, repeat it over k seeds, or search perturbations for a counterexample")
    settings = Settings.from_config(config)
    if settings.faults_file or settings.budget:
        # a suite-wide fault plan or budget is mattrace at work: read it (and report a
        # mistake in it) now, not when the first marked test runs
        _plugin(config, load=True)
    config.pluginmanager.register(_QualityCollector(config), f"mattrace-quality-{id(config)}")


# -- options, checked at start-up ---------------------------------------------------------


def _whole(config: pytest.Config, option: str, ini: str, low: int) -> int:
    raw = config.getoption(option)
    source = f"--{option.replace('_', '-')}"
    if raw is None:
        raw, source = config.getini(ini), f"ini {ini}"
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise pytest.UsageError(f"mattrace: {source} expects a whole number, got {raw!r}") from None
    if value < low:
        raise pytest.UsageError(f"mattrace: {source} must be >= {low}, got {value}")
    return value


def _mode(config: pytest.Config) -> str:
    mode = config.getoption("mattrace_record") or str(config.getini("mattrace_record")).strip()
    if mode not in RECORD_MODES:
        raise pytest.UsageError(f"mattrace: ini mattrace_record must be one of {', '.join(RECORD_MODES)}, "
                                f"got {mode!r}")
    return str(mode)


def _report(config: pytest.Config) -> Path | None:
    raw = config.getoption("mattrace_report") or str(config.getini("mattrace_report")).strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    return path if path.is_absolute() else config.invocation_params.dir / path


def _match_on(config: pytest.Config) -> tuple[str, ...] | None:
    raw = str(config.getini("mattrace_match_on")).replace(",", " ").split()
    fields = ("kind", "target", "agent", "args")
    unknown = [f for f in raw if f not in fields]
    if unknown:
        raise pytest.UsageError(f"mattrace: ini mattrace_match_on: unknown field {unknown[0]!r}; a call matches "
                                f"on {', '.join(fields)}")
    if raw and "kind" not in raw:
        raise pytest.UsageError("mattrace: ini mattrace_match_on must include 'kind': replay never answers one "
                                "kind of call with another's recorded result")
    return tuple(raw) or None


def _ignore(config: pytest.Config) -> tuple[str, ...]:
    items = tuple(str(i).strip() for i in config.getini("mattrace_ignore") if str(i).strip())
    for item in items:
        if item.startswith("re:"):
            try:
                re.compile(item[3:])
            except re.error as exc:
                raise pytest.UsageError(f"mattrace: ini mattrace_ignore: {item!r} is not a regex: {exc}") from None
    return items


def _flag(config: pytest.Config, option: str, ini: str) -> bool:
    raw = config.getoption(option)
    return bool(raw) if raw is not None else bool(config.getini(ini))


@dataclass(frozen=True)
class Settings:
    """The plugin's options for this session, command line over ini over defaults.

    Every option has an ini key of the same meaning (``--mattrace-seed`` ↔ ``mattrace_seed``)
    so a project sets its defaults in ``pyproject.toml`` and CI overrides them per job. They
    are checked when pytest starts, whether or not a test uses mattrace: a mistyped option
    is a usage error at once, not a surprise the day a test first records. (The budget's
    limits and the fault plan's contents need mattrace to read; they are checked when the
    plugin loads.)
    """

    store: Path
    seed: int
    strict: bool
    no_store: bool
    concurrency: int
    record_mode: str = "once"
    faults_file: str | None = None
    budget: str | None = None
    """The ``--mattrace-budget`` text (e.g. ``runs=50,usd=1``), or None."""
    report: Path | None = None
    """Where ``--mattrace-report`` writes the session's HTML report, or None."""
    match_on: tuple[str, ...] | None = None
    """ini ``mattrace_match_on``: what replay compares (None: everything)."""
    ignore: tuple[str, ...] = ()
    """ini ``mattrace_ignore``: argument paths and ``re:`` patterns replay leaves out of its comparison."""

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """Read and validate the options; a bad value is a usage error naming the option."""
        if _SETTINGS not in config.stash:
            store, no_store = store_option(config)
            budget = config.getoption("mattrace_budget") or str(config.getini("mattrace_budget")).strip()
            config.stash[_SETTINGS] = cls(
                store=store, seed=_whole(config, "mattrace_seed", "mattrace_seed", 0),
                strict=_flag(config, "mattrace_strict", "mattrace_strict"), no_store=no_store,
                concurrency=_whole(config, "mattrace_concurrency", "mattrace_concurrency", 1),
                record_mode=_mode(config),
                faults_file=config.getoption("mattrace_faults") or str(config.getini("mattrace_faults")) or None,
                budget=budget or None, report=_report(config), match_on=_match_on(config), ignore=_ignore(config))
        return config.stash[_SETTINGS]

    @property
    def database(self) -> Path:
        return self.store / "mattrace.duckdb"


# -- where this session's files go (known without importing mattrace) ------------------------


@dataclass(frozen=True)
class RunPlace:
    """The run id of this pytest session and the directory its traces and results go under.

    Decided once per session, by the controller, and handed to every xdist worker, so all of
    them write into one run whether or not the controller ever loads the plugin.
    """

    run_id: str
    base: Path
    worker: str | None = None
    """The xdist worker id, or None in the controller (or a session without xdist)."""


def store_option(config: pytest.Config) -> tuple[Path, bool]:
    """The store directory (absolute) and whether ``--mattrace-no-store`` is in effect."""
    raw = config.getoption("mattrace_store") or config.getini("mattrace_store") or DEFAULT_STORE
    store = Path(str(raw)).expanduser()
    if not store.is_absolute():
        store = config.rootpath / store
    flag = config.getoption("mattrace_no_store")
    return store, bool(flag) if flag is not None else bool(config.getini("mattrace_no_store"))


def run_place(config: pytest.Config) -> RunPlace:
    """This session's :class:`RunPlace`: the controller's own, or the one a worker was given."""
    if _PLACE not in config.stash:
        workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        if workerinput is not None and _RUN_ID in workerinput:
            place = RunPlace(workerinput[_RUN_ID], Path(workerinput[_BASE]),
                             str(workerinput.get("workerid", "worker")))
        else:
            store, no_store = store_option(config)
            run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
            place = RunPlace(run_id, Path(tempfile.mkdtemp(prefix="mattrace-")) if no_store else store)
        config.stash[_PLACE] = place
    return config.stash[_PLACE]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each xdist worker the run it writes into."""
    place = run_place(node.config)
    node.workerinput.update({_RUN_ID: place.run_id, _BASE: str(place.base)})


# -- loading the plugin proper when a test uses it ------------------------------------------


def _plugin(config: pytest.Config, *, load: bool = False) -> ModuleType | None:
    """The plugin proper for this session: loaded (and its session set up) on first use."""
    plugin = config.stash.get(_PLUGIN, None)
    if plugin is None and load:
        plugin = importlib.import_module("mattrace.pytest_plugin")
        plugin.start(config)
        config.stash[_PLUGIN] = plugin
    return plugin


def _recorded(config: pytest.Config) -> bool:
    """Whether anything was written into this session's run (by this process or a worker)."""
    place = run_place(config)
    return any((place.base / part / place.run_id).exists() for part in ("traces", "results"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker(MARKER) is not None:
        plugin = _plugin(metafunc.config, load=True)
        assert plugin is not None
        plugin.generate_tests(metafunc)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A marked test gets the ``mat`` fixture even when it does not ask for it (trials still run)."""
    for item in items:
        if isinstance(item, pytest.Function) and item.get_closest_marker(MARKER) is not None \
                and "mat" not in item.fixturenames:
            item.fixturenames.append("mat")


@pytest.fixture
def mat(request: pytest.FixtureRequest) -> Any:
    """Record runs of the code under test: ``with mat.run(config=...) as run: ...``.

    Contracts, trials, config and oracle come from ``@pytest.mark.mattrace(...)``; see
    ``mattrace.pytest_plugin.Mat``.
    """
    plugin = _plugin(request.config, load=True)
    assert plugin is not None
    return plugin.mat_fixture(request)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run the trials of a test that uses ``mat`` and fail it on its contracts."""
    plugin = _plugin(pyfuncitem.config)
    if plugin is None or "mat" not in pyfuncitem.funcargs:
        return None
    result: bool | None = plugin.pyfunc_call(pyfuncitem)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Carry a test's quality violations on its report (xdist sends report attributes to the controller)."""
    report = yield
    if call.when == "call":
        notes = item.stash.get(QUALITY_KEY, None)
        if notes:
            setattr(report, QUALITY_ATTR, notes)
    return report


class _QualityCollector:
    """Reads the quality notes of every test report (xdist workers' too) for the summary.

    Registered per session because ``pytest_runtest_logreport`` is not given the config.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        notes = getattr(report, QUALITY_ATTR, None)
        if notes:
            plugin = _plugin(self.config, load=True)
            assert plugin is not None
            plugin.note_quality(self.config, notes)


def note_terminal(config: pytest.Config) -> None:
    """Remember whether pytest writes to an interactive terminal (the trial progress bar is
    drawn only there). Asked at session start: during a test, output capture makes stdout
    look like a file."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    writer = getattr(reporter, "_tw", None)
    file = getattr(writer, "_file", None)
    config.stash[INTERACTIVE] = bool(writer is not None and writer.hasmarkup and file is not None
                                     and getattr(file, "isatty", lambda: False)())


def pytest_sessionstart(session: pytest.Session) -> None:
    note_terminal(session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    plugin = _plugin(config, load=not hasattr(config, "workerinput") and _recorded(config))
    if plugin is not None:
        plugin.finish(config)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    plugin = _plugin(config)
    if plugin is not None:
        plugin.terminal_summary(terminalreporter, config)
