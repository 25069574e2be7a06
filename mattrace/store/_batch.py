"""One ingest call: sort the files, stage the traces, then write everything in one transaction.

Staging (reading, checking, deciding) happens outside the transaction because a DuckDB
error inside one aborts it, and the bulk read is *expected* to fail when a file is bad
(the batch is then split to find it). The writes that follow are all-or-nothing: an
interrupted ingest leaves the store as it was.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mattrace.store._checks import write_checks, write_runs
from mattrace.store._ingest import TraceFile, load_traces, write_traces
from mattrace.store._report import IngestReport
from mattrace.store._scan import FileProblem, Header, Results, classify, expand, parse_results

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

__all__ = ["run_batch"]


def _known(con: DuckDBPyConnection, paths: list[Path]) -> dict[str, tuple[str, int, int]]:
    rows = con.execute("SELECT path, kind, size, mtime_ns FROM files WHERE path IN (SELECT unnest(?::VARCHAR[]))",
                       [[str(p) for p in paths]]).fetchall()
    return {str(r[0]): (str(r[1]), int(r[2]), int(r[3])) for r in rows}


def _sort(con: DuckDBPyConnection, paths: list[Path], report: IngestReport,
          traces: list[TraceFile], results: list[tuple[Results, int, int]]) -> list[Path]:
    """Put each changed file in ``traces`` or ``results``; return trace files results name that were not given."""
    known = _known(con, paths)
    named: list[Path] = []
    for path in paths:
        report.files_seen += 1
        try:
            st = path.stat()
        except OSError as exc:
            report.errors.append(f"{path}: cannot read file: {exc.strerror or exc}")
            continue
        before = known.get(str(path))
        if before is not None and before[1:] == (st.st_size, st.st_mtime_ns):
            report.traces_unchanged += before[0] == "trace"
            continue
        try:
            kind, info, torn = classify(path)
            if kind == "trace":
                assert isinstance(info, Header)
                traces.append(TraceFile(path, st.st_size, st.st_mtime_ns, info, torn))
                continue
            assert isinstance(info, dict)
            res = parse_results(path, info, torn)
        except FileProblem as problem:
            report.errors.append(str(problem))
            continue
        results.append((res, st.st_size, st.st_mtime_ns))
        if res.warning:
            report.warnings.append(res.warning)
        for check in res.checks.values():
            file = check.get("trace_file")
            if isinstance(file, str) and file and os.path.isfile(file):
                named.append(Path(file).resolve())
    return named


def run_batch(con: DuckDBPyConnection, paths: list[str | os.PathLike[str]], run: dict[str, Any]) -> IngestReport:
    """Ingest ``paths``; traces without a run label go under ``run``."""
    started = time.perf_counter()
    report = IngestReport(run_id=run["run_id"])
    now = datetime.now(UTC).replace(tzinfo=None)
    files, missing = expand(paths)
    report.errors += missing
    traces: list[TraceFile] = []
    results: list[tuple[Results, int, int]] = []
    seen = set(files)
    todo = files
    while todo:  # results files name their trace files: ingest those too
        named = _sort(con, todo, report, traces, results)
        todo = [p for p in dict.fromkeys(named) if p not in seen]
        seen.update(todo)
    report.trace_files, report.results_files = len(traces), len(results)
    con.execute("SET preserve_insertion_order = false")  # the bulk read runs in parallel; no order is used
    try:
        checked_in = {trace_id: res.run["run_id"] for res, _, _ in results for trace_id in res.checks}
        referenced = load_traces(con, traces, report, run["run_id"], checked_in) if traces else []
        con.execute("BEGIN TRANSACTION")
        try:
            if traces:
                write_traces(con, report, run["run_id"], now)
            write_checks(con, [r for r, _, _ in results], report)
            for res, size, mtime in results:
                con.execute("INSERT OR REPLACE INTO files VALUES (?, 'results', ?, ?, NULL, ?)",
                            [res.path, size, mtime, now])
            headers = [res.run | {"finished": res.finished} for res, _, _ in results]
            if run["run_id"] in referenced:   # a run no trace belongs to is not worth a row
                headers.append(run)
            write_runs(con, headers, referenced, now)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.execute("SET preserve_insertion_order = true")
        for table in ("_lines", "_agg", "_heads", "_cand", "_checks", "_verdicts", "_violations"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    report.seconds = time.perf_counter() - started
    return report
