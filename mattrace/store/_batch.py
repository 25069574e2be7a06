"""One ingest call: sort the files, ingest the traces in chunks, then store what results files say.

Reading and checking happen outside any transaction because a DuckDB error inside one
aborts it, and the bulk read is *expected* to fail when a file is bad (the batch is then
split to find it). Each chunk of traces is then written in one transaction, and the
results and runs in a last one: an interrupted ingest leaves the store consistent, with
the chunks it finished (their files are recorded, so the next ingest reads only the rest).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mattrace.store._checks import write_checks, write_runs
from mattrace.store._ingest import TraceFile, ingest_traces
from mattrace.store._report import IngestReport
from mattrace.store._scan import FileProblem, Found, Results, classify, expand, parse_results

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

__all__ = ["run_batch"]

_TEMP = ("_raw", "_files", "_checked", "_heads", "_lite", "_bad", "_cand", "_agg", "_taint", "_inferred", "_lines_in",
         "_checked_lines", "_verdicts_in")


def _known(con: DuckDBPyConnection, found: list[Found]) -> dict[str, tuple[str, int, int]]:
    rows = con.execute("SELECT path, kind, size, mtime_ns FROM files WHERE path IN (SELECT unnest(?::VARCHAR[]))",
                       [[str(f.path) for f in found]]).fetchall()
    return {str(r[0]): (str(r[1]), int(r[2]), int(r[3])) for r in rows}


def _sort(con: DuckDBPyConnection, found: list[Found], report: IngestReport,
          traces: list[TraceFile], results: list[tuple[Results, int, int]]) -> list[str]:
    """Put each new or changed file in ``traces`` or ``results``; return the trace files results name."""
    known = _known(con, found)
    named: list[str] = []
    for f in found:
        report.files_seen += 1
        before = known.get(str(f.path))
        if before is not None and before[1:] == (f.size, f.mtime_ns):
            report.traces_unchanged += before[0] == "trace"
            continue
        try:
            kind, header, torn = classify(f.path, f.size)
            if kind == "trace":
                traces.append(TraceFile(f.path, f.size, f.mtime_ns, torn))
                continue
            res = parse_results(f.path, header, torn)
        except FileProblem as problem:
            report.errors.append(str(problem))
            continue
        results.append((res, f.size, f.mtime_ns))
        if res.warning:
            report.warnings.append(res.warning)
        for _, _, file in res.checks.values():
            if file and os.path.isfile(file):
                named.append(file)
    return named


def run_batch(con: DuckDBPyConnection, paths: list[str | os.PathLike[str]], run: dict[str, Any]) -> IngestReport:
    """Ingest ``paths``; traces without a run label go under ``run``."""
    started = time.perf_counter()
    report = IngestReport(run_id=run["run_id"])
    now = datetime.now(UTC).replace(tzinfo=None)
    found, missing = expand(paths)
    report.errors += missing
    traces: list[TraceFile] = []
    results: list[tuple[Results, int, int]] = []
    seen = {str(f.path) for f in found}
    while found:  # results files name their trace files: ingest those too
        named = _sort(con, found, report, traces, results)
        more, _ = expand([p for p in dict.fromkeys(named) if p not in seen])   # results name resolved paths
        found = [f for f in more if str(f.path) not in seen]
        seen.update(str(f.path) for f in found)
    report.trace_files, report.results_files = len(traces), len(results)
    con.execute("SET preserve_insertion_order = false")  # the bulk read runs in parallel; no order is used
    try:
        checked_in = {trace_id: res.run["run_id"] for res, _, _ in results for trace_id in res.checks}
        referenced = ingest_traces(con, traces, report, run["run_id"], checked_in, now) if traces else set()
        con.execute("BEGIN TRANSACTION")
        try:
            stored = write_checks(con, [r for r, _, _ in results], report)
            results = [r for r in results if r[0].path in stored]
            report.results_files = len(results)
            for res, size, mtime in results:
                con.execute("DELETE FROM files WHERE path = ?", [res.path])
                con.execute("INSERT INTO files VALUES (?, 'results', ?, ?, NULL, ?)", [res.path, size, mtime, now])
            headers = [res.run | {"finished": res.finished} for res, _, _ in results]
            if run["run_id"] in referenced:   # a run no trace belongs to is not worth a row
                headers.append(run)
            write_runs(con, headers, sorted(referenced), now)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.execute("SET preserve_insertion_order = true")
        for table in _TEMP:
            con.execute(f"DROP TABLE IF EXISTS {table}")
    report.seconds = time.perf_counter() - started
    return report
