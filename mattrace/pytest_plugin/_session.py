"""One pytest session's mattrace state: its run id, where files go, and the ingest at the end.

The division of labour follows from DuckDB allowing one writer per file: every process
(the controller and each xdist worker) writes trace files and its own results file, and
never opens the database; the controller alone ingests the whole run once, at the end,
holding the database only for that. With ``--mattrace-no-store`` the same ingest runs into
an in-memory database, so the summary means the same thing either way.
"""

from __future__ import annotations

import hashlib
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mattrace.errors import MatTraceError
from mattrace.pytest_plugin._options import Settings, parse_budget

if TYPE_CHECKING:
    from mattrace.contracts import Report
    from mattrace.pytest_plugin._marker import MarkerSpec
    from mattrace.replay import Matcher
    from mattrace.store.results import ResultsWriter

from _mattrace_pytest import QUALITY_KEY, run_place

__all__ = ["MatSession", "QUALITY_KEY", "QualityNote", "SESSION_KEY", "SessionEnd"]

SESSION_KEY = pytest.StashKey["MatSession"]()


@dataclass(frozen=True)
class QualityNote:
    """A quality violation (or, ``kind="vacuous"``, a vacuous pass) that did not fail its test, for the summary."""

    test: str
    trial: int
    contract: str
    step: int | None
    reason: str
    command: str | None
    kind: str = "quality"


@dataclass
class SessionEnd:
    """What the controller learned at the end: ingest figures, metrics, problems."""

    database: str | None = None
    ingest: Any = None
    metrics: list[Any] = field(default_factory=list)
    containment: list[Any] = field(default_factory=list)
    governance: list[Any] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)
    """The run's traces the metrics did not count: ``replays`` and ``broken`` (cassette mismatches)."""
    report: Path | None = None
    problems: list[str] = field(default_factory=list)


def _suite_faults(path: str | None) -> tuple[Any, ...]:
    """The faults of ``--mattrace-faults FILE``; a mistake in the file is a usage error naming its line."""
    if not path:
        return ()
    from mattrace.errors import FaultSpecError
    from mattrace.faults import load_faults

    try:
        return load_faults(path).faults
    except FaultSpecError as exc:
        raise pytest.UsageError(f"mattrace: --mattrace-faults: {exc}") from None


class MatSession:
    """Paths, run id and the results writer of this process; the ingest if it is the controller.

    Thread-safe: trials of one test may record and check in parallel threads.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.settings = Settings.from_config(config)
        self.budget: Any = parse_budget(self.settings)
        """The ``--mattrace-budget`` cap on every search (a :class:`mattrace.search.Budget`), or None."""
        place = run_place(config)   # decided by the entry module, shared with xdist workers
        self.run_id: str = place.run_id
        self.base = place.base
        self.worker: str = place.worker or "main"
        self.is_controller = not hasattr(config, "workerinput")
        self.traces_dir = self.base / "traces" / self.run_id
        self.results_dir = self.base / "results" / self.run_id
        self.cassettes_dir = self.base / "cassettes"
        self.suite_faults: tuple[Any, ...] = _suite_faults(self.settings.faults_file)
        self._check_ignore()
        self.quality: list[QualityNote] = []
        self.outcome = SessionEnd()
        self._lock = threading.Lock()
        self._writer: ResultsWriter | None = None

    def cassette(self, test: str, trial: int, run: int) -> Path:
        """Where a run's cassette lives: by test node id, trial and run, the same in every session.

        The directory is named after the id with its secrets redacted (a parametrised test's
        id may hold one), and told apart by a digest of the whole id.
        """
        from mattrace.recording.redact import Redactor

        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Redactor.default().text(test)).strip("-.")[:150] or "test"
        digest = hashlib.sha256(test.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        return self.cassettes_dir / f"{slug}-{digest}" / f"trial{trial}-run{run}.cassette"

    def _check_ignore(self) -> None:
        """Read the ini's matching keys now (a bad path is a usage error at once, not at the first test)."""
        from mattrace.pytest_plugin._marker import MarkerSpec

        self.matcher(MarkerSpec())

    def matcher(self, spec: MarkerSpec) -> Matcher | None:
        """How replay matches this test's calls: the marker's ``match_on`` over the ini's, both
        ``ignore`` lists; None when that is the default (compare everything)."""
        from mattrace.errors import RecordingError
        from mattrace.replay import Matcher

        try:
            matcher = Matcher.of(spec.match_on or self.settings.match_on, (*self.settings.ignore, *spec.ignore))
        except RecordingError as exc:   # the ini's paths are checked here, when mattrace is loaded
            raise pytest.UsageError(f"mattrace: ini mattrace_ignore: {exc}") from None
        return None if matcher.exact else matcher

    def labels(self, test: str, trial: int) -> dict[str, str]:
        return {"mattrace.run": self.run_id, "mattrace.test": test, "mattrace.trial": str(trial)}

    def record_check(self, *, trace_id: str, trace_file: Path | None, report: Report, test: str,
                     trial: int, seed: int, factuality: dict[str, int] | None,
                     containment: dict[str, Any] | None = None) -> None:
        """Append one trace's verdicts to this process's results file (created on first use)."""
        from mattrace.store.results import ResultsWriter, new_run

        with self._lock:
            if self._writer is None:
                run = new_run(self.run_id, argv=list(sys.argv), worker=self.worker)
                self._writer = ResultsWriter(self.results_dir / f"{self.worker}.jsonl", run)
            writer = self._writer
        writer.write_check(trace_id=trace_id, trace_file=trace_file, report=report, test=test,
                           trial=trial, seed=seed, factuality=factuality, containment=containment)

    def note_quality(self, note: QualityNote) -> None:
        with self._lock:
            self.quality.append(note)

    def finish(self) -> None:
        """Close this process's results file; the controller then ingests the run."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
        if not self.is_controller or not (self.results_dir.exists() or self.traces_dir.exists()):
            return
        database = ":memory:" if self.settings.no_store else str(self.settings.database)
        self.outcome.database = database
        try:
            self._ingest(database)
        except MatTraceError as exc:
            self.outcome.problems.append(str(exc))
        except Exception as exc:  # the run's tests are done; a store bug must not hide their results
            self.outcome.problems.append(f"ingest into {database} failed: {type(exc).__name__}: {exc}")

    def _ingest(self, database: str) -> None:
        from mattrace.store import Store

        paths = [p for p in (self.traces_dir, self.results_dir) if p.exists()]
        with Store.open(database) as store:
            self.outcome.ingest = store.ingest(paths)
            self.outcome.metrics = store.metrics(by=("config",), run_id=self.run_id)
            self.outcome.containment = store.containment(by=("fault",), run_id=self.run_id)
            self.outcome.governance = store.governance(by=("rule",), run_id=self.run_id)
            self.outcome.left_out = store.replay_counts(run_id=self.run_id)
            if self.settings.report is not None:
                from mattrace.report.html import write_report

                try:
                    self.outcome.report = write_report(store, self.settings.report, run_id=self.run_id,
                                                       title=f"mattrace report: pytest run {self.run_id}")
                except OSError as exc:
                    self.outcome.problems.append(f"cannot write the report {self.settings.report}: "
                                                 f"{exc.strerror or exc}")
