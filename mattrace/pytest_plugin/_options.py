"""Command-line options and ini keys of the plugin, resolved once into :class:`Settings`.

Every option has an ini key of the same meaning (``--mattrace-seed`` ↔ ``mattrace_seed``)
so a project sets its defaults in ``pyproject.toml`` and CI overrides them per job; the
command line wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["add_options", "Settings"]

DEFAULT_STORE = ".mattrace"
RECORD_MODES = ("none", "once", "new", "all")


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("mattrace", "mattrace: contracts, trials and metrics of recorded runs")
    group.addoption("--mattrace-store", metavar="DIR", default=None,
                    help="directory for trace files, results and the DuckDB store "
                         f"(default {DEFAULT_STORE}/ under the rootdir; ini: mattrace_store)")
    group.addoption("--mattrace-seed", metavar="N", default=None,
                    help="seed of trial 0; trial i uses N+i (default 0; ini: mattrace_seed)")
    group.addoption("--mattrace-strict", action="store_true", default=None,
                    help="quality contract violations fail tests too (ini: mattrace_strict)")
    group.addoption("--mattrace-no-store", action="store_true", default=None,
                    help="write nothing under the store: traces go to a temporary directory and "
                         "metrics are computed in memory (ini: mattrace_no_store)")
    group.addoption("--mattrace-record", default=None, choices=RECORD_MODES,
                    help="cassettes of each test's runs: once (default: record if missing, else replay), "
                         "none (replay only), new (record what is missing), all (record afresh); "
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
    parser.addini("mattrace_strict", "quality contract violations fail tests too", type="bool", default=False)
    parser.addini("mattrace_no_store", "write nothing under the store directory", type="bool", default=False)
    parser.addini("mattrace_concurrency", "threads for the trials of one test", default="1")
    parser.addini("mattrace_record", "cassette mode: once, none, new or all", default="once")
    parser.addini("mattrace_faults", "a TOML fault plan injected into every mat.run()", default="")
    parser.addini("mattrace_budget", "a cap on every search, e.g. runs=50,usd=1", default="")
    parser.addini("mattrace_report", "write the session's HTML report to this file", default="")


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


def _budget(config: pytest.Config) -> Any:
    raw = config.getoption("mattrace_budget") or str(config.getini("mattrace_budget")).strip()
    if not raw:
        return None
    from mattrace.errors import SearchError
    from mattrace.search import Budget

    try:
        return Budget.parse(raw)
    except SearchError as exc:
        raise pytest.UsageError(f"mattrace: --mattrace-budget: {exc}") from None


def _report(config: pytest.Config) -> Path | None:
    raw = config.getoption("mattrace_report") or str(config.getini("mattrace_report")).strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    return path if path.is_absolute() else config.invocation_params.dir / path


def _flag(config: pytest.Config, option: str, ini: str) -> bool:
    raw = config.getoption(option)
    return bool(raw) if raw is not None else bool(config.getini(ini))


@dataclass(frozen=True)
class Settings:
    """The plugin's options for this session, command line over ini over defaults."""

    store: Path
    seed: int
    strict: bool
    no_store: bool
    concurrency: int
    record_mode: str = "once"
    faults_file: str | None = None
    budget: Any = None
    """The ``--mattrace-budget`` cap (a :class:`mattrace.search.Budget`), or None."""
    report: Path | None = None
    """Where ``--mattrace-report`` writes the session's HTML report, or None."""

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """Read and validate the options; a bad value is a usage error naming the option."""
        raw_store = config.getoption("mattrace_store") or config.getini("mattrace_store") or DEFAULT_STORE
        store = Path(str(raw_store)).expanduser()
        if not store.is_absolute():
            store = config.rootpath / store
        return cls(store=store, seed=_whole(config, "mattrace_seed", "mattrace_seed", 0),
                   strict=_flag(config, "mattrace_strict", "mattrace_strict"),
                   no_store=_flag(config, "mattrace_no_store", "mattrace_no_store"),
                   concurrency=_whole(config, "mattrace_concurrency", "mattrace_concurrency", 1),
                   record_mode=_mode(config),
                   faults_file=config.getoption("mattrace_faults") or str(config.getini("mattrace_faults")) or None,
                   budget=_budget(config), report=_report(config))

    @property
    def database(self) -> Path:
        return self.store / "mattrace.duckdb"
