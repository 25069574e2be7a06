"""Storing what results files say: runs, checks (with factuality), verdicts and violations.

A results line belongs to a trace by ``trace_id`` only, so verdicts can arrive before or
after their trace file; the views join them when both are there. A trace checked again
(a later line, a later file, a second ``ingest --contracts``) replaces its earlier verdicts.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from mattrace.store._report import IngestReport
from mattrace.store._scan import Results, parse_time
from mattrace.store._sql import load_rows

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

__all__ = ["write_checks", "write_runs"]

_CHECKS: dict[str, Any] = {
    "trace_id": "VARCHAR", "run_id": "VARCHAR", "test": "VARCHAR", "trial": "INTEGER", "seed": "BIGINT",
    "trace_file": "VARCHAR", "claims": "INTEGER", "claims_supported": "INTEGER",
    "claims_propagated": "INTEGER", "results_file": "VARCHAR", "line": "INTEGER"}
_VERDICTS: dict[str, Any] = {
    "trace_id": "VARCHAR", "contract": "VARCHAR", "status": "VARCHAR", "severity": "VARCHAR", "step": "INTEGER"}
_VIOLATIONS: dict[str, Any] = {
    "trace_id": "VARCHAR", "contract": "VARCHAR", "step": "INTEGER", "reason": "VARCHAR",
    "witness": ["INTEGER"], "severity": "VARCHAR"}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def write_checks(con: DuckDBPyConnection, results: list[Results], report: IngestReport) -> None:
    """Replace the checks, verdicts and violations of every trace the results files mention."""
    checks: dict[str, dict[str, Any]] = {}
    verdicts: dict[str, list[dict[str, Any]]] = {}
    violations: dict[str, list[dict[str, Any]]] = {}
    for res in results:
        for trace_id, line in res.checks.items():
            fact = line.get("factuality") or {}
            checks[trace_id] = {
                "trace_id": trace_id, "run_id": res.run["run_id"], "test": line.get("test"),
                "trial": _int(line.get("trial")), "seed": _int(line.get("seed")),
                "trace_file": line.get("trace_file"), "claims": fact.get("claims"),
                "claims_supported": fact.get("supported"), "claims_propagated": _int(fact.get("propagated")),
                "results_file": res.path, "line": line["line"]}
            verdicts[trace_id] = [{"trace_id": trace_id, "contract": v["contract"], "status": v["status"],
                                   "severity": v.get("severity", "safety"), "step": _int(v.get("step"))}
                                  for v in line["verdicts"]]
            violations[trace_id] = [
                {"trace_id": trace_id, "contract": x.get("contract", v["contract"]), "step": _int(x.get("step")),
                 "reason": x.get("reason"), "witness": [w for w in x.get("witness") or [] if _int(w) is not None],
                 "severity": x.get("severity", v.get("severity", "safety"))}
                for v in line["verdicts"] if (x := v.get("violation")) is not None]
    if not checks:
        return
    load_rows(con, "_checks", _CHECKS, list(checks.values()))
    load_rows(con, "_verdicts", _VERDICTS, [v for vs in verdicts.values() for v in vs])
    load_rows(con, "_violations", _VIOLATIONS, [v for vs in violations.values() for v in vs])
    for table in ("checks", "verdicts", "violations"):
        con.execute(f"DELETE FROM {table} WHERE trace_id IN (SELECT trace_id FROM _checks)")
        con.execute(f"INSERT INTO {table} SELECT * FROM _{table}")
    report.verdicts_added += sum(len(vs) for vs in verdicts.values())


def write_runs(con: DuckDBPyConnection, runs: list[dict[str, Any]], referenced: list[str],
               now: datetime) -> None:
    """Merge run headers into ``runs`` (one run may span several worker files) and add bare
    rows for run ids that traces name but no header described."""
    for run in runs:
        workers = [run["worker"]] if isinstance(run.get("worker"), str) else []
        argv = run.get("argv") if isinstance(run.get("argv"), list) else None
        started, finished = _time(run.get("started")), _time(run.get("finished"))
        host = run.get("host") if isinstance(run.get("host"), str) else None
        source = run.get("source") if isinstance(run.get("source"), str) else None
        exists = con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run["run_id"]]).fetchone()
        if exists is None:
            con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?::JSON, ?::VARCHAR[], ?)",
                        [run["run_id"], started, finished, source, host,
                         None if argv is None else _json(argv), workers, now])
        else:
            con.execute("""UPDATE runs SET started = coalesce(least(started, ?), started, ?),
                               finished = coalesce(greatest(finished, ?), finished, ?),
                               source = coalesce(source, ?), host = coalesce(host, ?),
                               argv = coalesce(argv, ?::JSON),
                               workers = list_sort(list_distinct(list_concat(workers, ?::VARCHAR[]))),
                               ingested_at = ?
                           WHERE run_id = ?""",
                        [started, started, finished, finished, source, host,
                         None if argv is None else _json(argv), workers, now, run["run_id"]])
    # runs that only traces name: started at their first step
    con.execute("""INSERT INTO runs (run_id, started, ingested_at)
                   SELECT run_id, epoch_ms(min(t_start) // 1000000), ? FROM traces
                   WHERE run_id IN (SELECT unnest(?::VARCHAR[]))
                     AND run_id NOT IN (SELECT run_id FROM runs)
                   GROUP BY run_id""", [now, referenced])


def _time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else parse_time(value)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
