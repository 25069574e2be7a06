"""Results files: the verdicts a test run reached, written next to its trace files.

Trace files say what happened; a results file says what the checks concluded about them
(each contract's verdict, the first violation, factuality counts) and which run, test
and trial each trace belongs to. The pytest plugin writes one per process (so xdist
workers never share a file or touch the database); the process that ingests reads them
all once at the end.

Format: plain JSONL, one ``header`` line (``format``/``version``/``run``), one ``check``
line per checked trace, and an ``end`` line when the writer closed cleanly. A later
``check`` line for the same trace id replaces an earlier one. Lines are written whole
with one ``write`` and flushed, so a killed process leaves every finished check readable.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mattrace.contracts import Report
    from mattrace.recording.redact import Redactor

__all__ = ["check_ingested", "FORMAT", "new_run", "ResultsWriter", "VERSION"]

FORMAT = "mattrace-results"
VERSION = 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_run(run_id: str, *, source: str = "pytest", argv: list[str] | None = None,
            worker: str = "main") -> dict[str, Any]:
    """The ``run`` record of a results header: who ran what, where and when (secrets on the
    command line redacted, as in a trace)."""
    redact = _redactor()
    return {"run_id": run_id, "started": _now(), "source": source,
            "argv": [redact.text(a) for a in argv or []], "host": socket.gethostname(), "worker": worker}


def _redactor() -> Redactor:
    # imported when a results file is written, not when the pytest plugin starts
    from mattrace.recording.redact import Redactor

    return Redactor.default()


class ResultsWriter:
    """Appends ``check`` records to one results file. Thread-safe (trials may run in threads).

    Args:
        path: the file to create (its directory is made if missing).
        run: the run record (see :func:`new_run`) written into the header.
    """

    def __init__(self, path: str | Path, run: dict[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")  # closed by close()
        self._write({"type": "header", "format": FORMAT, "version": VERSION, "run": run})

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            if self._file.closed:
                raise ValueError(f"{self.path}: results file already closed")
            self._file.write(line)
            self._file.flush()

    def write_check(self, *, trace_id: str, trace_file: str | Path | None, report: Report,
                    test: str | None = None, trial: int | None = None, seed: int | None = None,
                    factuality: dict[str, int] | None = None,
                    containment: dict[str, Any] | None = None) -> None:
        """Record the verdicts ``report`` reached on one trace.

        ``test`` is stored with its secrets redacted, like the run name (a parametrised test's
        id holds its arguments).

        ``containment`` (faulted runs only): ``{"class": "contained"|"degraded"|"escaped",
        "reason": str, "step": int|None, "faults": [names]}``.
        """
        record = {"type": "check", "trace_id": trace_id,
                  "trace_file": os.fspath(Path(trace_file).resolve()) if trace_file else None,
                  "test": _redactor().text(test) if test else test, "trial": trial, "seed": seed,
                  "verdicts": [v.to_json_dict() for v in report.verdicts],
                  "factuality": factuality}
        if containment is not None:
            record["containment"] = containment
        self._write(record)

    def close(self) -> None:
        """Write the ``end`` line and close the file. Idempotent."""
        with self._lock:
            if self._file.closed:
                return
        self._write({"type": "end", "finished": _now()})
        with self._lock:
            self._file.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_ingested(store: Any, report: Any, contracts: list[Any], run: dict[str, Any]) -> None:
    """Check each trace ``report`` says was newly ingested; the verdicts go to a results file
    beside the store, which is then ingested too (``report`` gains its counts and errors).

    Writing the file first keeps the files the source of truth: a store rebuilt from them
    has these verdicts too.
    """
    from mattrace.contracts import check, factuality_of
    from mattrace.errors import TraceFormatError
    from mattrace.tracefile import read_trace_file

    base = Path(store.path).parent if store.path != ":memory:" else Path(".mattrace")
    results = base / "results" / run["run_id"] / "cli.jsonl"
    with ResultsWriter(results, run) as writer:
        for file in report.added_files:
            try:
                trace = read_trace_file(file).trace
            except TraceFormatError as exc:   # ingested, but its hash chain does not verify
                report.errors.append(f"{exc} (stored, but not checked)")
                continue
            trial = trace.labels.get("mattrace.trial")
            seed = trace.config.get("seed")
            writer.write_check(trace_id=trace.trace_id, trace_file=file, report=check(trace, contracts),
                               test=trace.labels.get("mattrace.test") or trace.name,
                               trial=int(trial) if trial is not None and trial.isdigit() else None,
                               seed=seed if isinstance(seed, int) else None,
                               factuality=factuality_of(trace.steps, contracts))
    checked = store.ingest([results], run=run)
    report.results_files += checked.results_files
    report.verdicts_added += checked.verdicts_added
    report.errors += checked.errors
