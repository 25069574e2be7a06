"""Storing what results files say: runs, checks (with factuality and containment), verdicts and violations.

A results line belongs to a trace by ``trace_id`` only, so verdicts can arrive before or
after their trace file; the views join them when both are there. A trace checked again
(a later line, a later file, a second ``ingest --contracts``) replaces its earlier verdicts.
The check lines are typed by DuckDB (``json_transform``), not in Python: a CI run with
thousands of traces has tens of thousands of verdicts.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mattrace.store._report import IngestReport
from mattrace.store._scan import Results, parse_time
from mattrace.store._sql import literal, load_rows

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

__all__ = ["write_checks", "write_runs"]

_LINES: dict[str, Any] = {"file": "VARCHAR", "line": "INTEGER", "trace_id": "VARCHAR", "run_id": "VARCHAR",
                          "raw": "VARCHAR"}
_CHECK = json.dumps({
    "test": "VARCHAR", "trial": "BIGINT", "seed": "BIGINT", "trace_file": "VARCHAR",
    "factuality": {"claims": "BIGINT", "supported": "BIGINT", "propagated": "BIGINT"},
    "containment": {"class": "VARCHAR", "reason": "VARCHAR", "step": "BIGINT", "faults": ["VARCHAR"]},
    "verdicts": [{"contract": "VARCHAR", "status": "VARCHAR", "severity": "VARCHAR", "step": "BIGINT",
                  "vacuous": "VARCHAR", "reason": "VARCHAR",
                  "violation": {"contract": "VARCHAR", "step": "BIGINT", "reason": "VARCHAR", "witness": ["BIGINT"],
                                "severity": "VARCHAR"}}]})


def write_checks(con: DuckDBPyConnection, results: list[Results], report: IngestReport) -> set[str]:
    """Replace the checks, verdicts and violations of every trace the results files mention.

    A file with a malformed verdict is rejected whole (``path:line: reason`` in
    ``report.errors``). Returns the results files that were stored.
    """
    rows: dict[str, dict[str, Any]] = {}
    for res in results:
        for trace_id, (line, raw, _) in res.checks.items():
            rows[trace_id] = {"file": res.path, "line": line, "trace_id": trace_id, "run_id": res.run["run_id"],
                              "raw": raw}
    load_rows(con, "_lines_in", _LINES, list(rows.values()))
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _checked_lines AS
                    SELECT file, line, trace_id, run_id, json_transform(raw, {literal(_CHECK)}) AS r FROM _lines_in""")
    bad = con.execute("""
        SELECT file, min(line) FROM (SELECT file, line, unnest(r.verdicts) AS v FROM _checked_lines)
        WHERE v.contract IS NULL OR v.status IS NULL OR v.status NOT IN ('pass', 'fail', 'pending', 'incomplete')
           OR coalesce(v.severity, 'safety') NOT IN ('safety', 'quality')
        GROUP BY file ORDER BY file""").fetchall()
    for file, line in bad:
        report.errors.append(f"{file}:{line}: a verdict needs a contract name, a status "
                             "(pass/fail/pending/incomplete) and a severity (safety/quality)")
    bad_class = con.execute("""
        SELECT file, min(line) FROM _checked_lines
        WHERE r.containment IS NOT NULL AND coalesce(r.containment."class" NOT IN ('contained', 'degraded', 'escaped'),
                                                     true)
          AND file NOT IN (SELECT unnest(?::VARCHAR[]))
        GROUP BY file ORDER BY file""", [[f for f, _ in bad]]).fetchall()
    for file, line in bad_class:
        report.errors.append(f"{file}:{line}: a containment needs a class: contained, degraded or escaped")
    bad += bad_class
    if bad:
        con.execute("DELETE FROM _checked_lines WHERE file IN (SELECT unnest(?::VARCHAR[]))", [[f for f, _ in bad]])
    con.execute("CREATE OR REPLACE TEMP TABLE _verdicts_in AS SELECT trace_id, unnest(r.verdicts) AS v "
                "FROM _checked_lines")
    for table in ("checks", "verdicts", "violations"):
        con.execute(f"DELETE FROM {table} WHERE trace_id IN (SELECT trace_id FROM _checked_lines)")
    con.execute("""INSERT INTO checks SELECT trace_id, run_id, r.test, r.trial, r.seed, r.trace_file,
                          r.factuality.claims, r.factuality.supported, r.factuality.propagated, file, line,
                          r.containment."class", r.containment.reason, r.containment.step, r.containment.faults
                   FROM _checked_lines""")
    con.execute("""INSERT INTO verdicts
                   SELECT trace_id, v.contract, v.status, coalesce(v.severity, 'safety'), v.step,
                          CASE WHEN v.status = 'pass' THEN v.vacuous END,
                          CASE WHEN v.status = 'incomplete' THEN v.reason END FROM _verdicts_in""")
    con.execute("""INSERT INTO violations
                   SELECT trace_id, coalesce(v.violation.contract, v.contract), v.violation.step, v.violation.reason,
                          coalesce(v.violation.witness, []), coalesce(v.violation.severity, v.severity, 'safety')
                   FROM _verdicts_in WHERE v.violation IS NOT NULL""")
    count = con.execute("SELECT count(*) FROM _verdicts_in").fetchone()
    report.verdicts_added += int(count[0]) if count else 0
    rejected = {str(f) for f, _ in bad}
    return {res.path for res in results if res.path not in rejected}


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
