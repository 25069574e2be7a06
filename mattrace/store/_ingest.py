"""Bulk ingest of trace files: one DuckDB read over every new file, then INSERT … SELECT.

Speed decides the shape. DuckDB's JSON reader loads millions of rows a second, but it
pays per file and per small chunk, so every new file goes into *one*
``read_ndjson_objects`` call into a temp table, and the typed transform and the inserts
then run over full vectors. Python touches each file only to read its first line and
last byte (is it a trace, a results file or junk; is its tail torn?).

Robustness decides the rest. A file that does not read must not cost the others: when
the bulk read fails, the batch is split in halves until the bad files are isolated, and
each is reported as ``path:line: reason`` (the reason comes from
:func:`mattrace.tracefile.read_trace_file`, the same one ``mattrace verify`` gives). A
torn tail is a crash, not corruption: the complete lines are ingested and the trace is
marked unsealed. The hash chain is *not* verified here (that is ``mattrace verify``'s job,
at Python speed); the structure is: one header, steps numbered 0..N-1, at most one seal
counting them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mattrace.errors import TraceFormatError
from mattrace.store._report import IngestReport
from mattrace.store._sql import literal, load_rows, sql_type
from mattrace.trace import StepKind
from mattrace.tracefile import read_trace_file

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

    from mattrace.store._scan import Header

__all__ = ["TraceFile", "load_traces"]

_STEP: dict[str, Any] = {
    "index": "BIGINT", "kind": "VARCHAR", "agent": "VARCHAR", "target": "VARCHAR", "content": "VARCHAR",
    "args": "JSON", "result": "JSON", "error": {"type": "VARCHAR", "message": "VARCHAR"}, "sources": "JSON",
    "reads": ["INTEGER"], "side_effect": "BOOLEAN", "attrs": "JSON", "t_start": "BIGINT", "t_end": "BIGINT"}
_RECORD: dict[str, Any] = {"type": "VARCHAR", "step": _STEP, "steps": "BIGINT",
                           "outcome": {"status": "VARCHAR", "output": "JSON", "reason": "VARCHAR"}}
_KINDS = ", ".join(literal(k.value) for k in StepKind)
_OUTCOMES = "'success', 'failure', 'error', 'timeout', 'max_steps'"
_HEADS: dict[str, Any] = {
    "filename": "VARCHAR", "file": "VARCHAR", "size": "BIGINT", "mtime_ns": "BIGINT", "torn": "BOOLEAN",
    "trace_id": "VARCHAR", "name": "VARCHAR", "run_id": "VARCHAR", "test": "VARCHAR", "trial": "INTEGER",
    "seed": "BIGINT", "model": "VARCHAR", "orchestration": "VARCHAR", "config": "VARCHAR",
    "config_key": "VARCHAR", "labels": "VARCHAR", "entrypoint": "VARCHAR"}


@dataclass
class TraceFile:
    """A trace file to read: where, its stat, what its header says, whether its tail is torn."""

    path: Path
    size: int
    mtime_ns: int
    header: Header
    torn: bool


def _read(con: DuckDBPyConnection, names: list[str], bad: dict[str, str], big: bool = False) -> None:
    """Append the records of ``names`` to ``_lines``; on failure split the batch to find the bad files."""
    import duckdb

    option = f", maximum_object_size={2**31 - 1}" if big else ""
    try:
        con.execute(f"INSERT INTO _lines SELECT filename, json_transform(json, {literal(_json(_RECORD))}) "
                    f"FROM read_ndjson_objects(?, filename=true{option})", [names])
    except duckdb.Error as exc:
        if len(names) > 1:
            mid = len(names) // 2
            _read(con, names[:mid], bad)
            _read(con, names[mid:], bad)
        elif not big and "maximum_object_size" in str(exc):
            _read(con, names, bad, big=True)   # one line longer than 16 MB: read it alone
        else:
            bad[names[0]] = str(exc).splitlines()[0]


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def _problems(con: DuckDBPyConnection) -> list[tuple[str, str]]:
    """Files whose records do not form a trace: (filename, reason)."""
    rows = con.execute(f"""
        SELECT filename, CASE
            WHEN headers <> 1 THEN 'expected exactly one header line, found ' || headers
            WHEN unknown > 0 THEN 'a line has an unknown record type'
            WHEN bad_steps > 0 THEN 'a step has no valid index or kind'
            WHEN n > 0 AND (lo <> 0 OR hi <> n - 1 OR total <> n * (n - 1) // 2)
                THEN 'steps are not numbered 0..' || (n - 1) || ' in order'
            WHEN seals > 1 THEN 'more than one seal line'
            WHEN seals = 1 AND seal_steps IS DISTINCT FROM n
                THEN 'the seal counts ' || coalesce(seal_steps::VARCHAR, 'no') || ' steps but the file holds ' || n
            WHEN seals = 1 AND outcome.status IS NOT NULL AND outcome.status NOT IN ({_OUTCOMES})
                THEN 'the seal has an unknown outcome status ' || outcome.status
            END AS problem
        FROM _agg WHERE problem IS NOT NULL""").fetchall()
    return [(str(name), str(problem)) for name, problem in rows]


def _aggregate(con: DuckDBPyConnection) -> None:
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _agg AS
        WITH l AS (
            SELECT filename, r.type AS type, r.step AS s, r.steps AS seal_steps, r.outcome AS outcome,
                   CASE WHEN r.step.attrs IS NOT NULL THEN json_extract_string(r.step.attrs,
                        ['$.model', '$.tokens.total', '$.tokens.prompt', '$.tokens.completion', '$.cost_usd'])
                   END AS a
            FROM _lines)
        SELECT filename,
            count(*) FILTER (WHERE type = 'header') AS headers,
            count(*) FILTER (WHERE type IS NULL OR type NOT IN ('header', 'step', 'seal')) AS unknown,
            count(*) FILTER (WHERE type = 'step') AS n,
            count(*) FILTER (WHERE type = 'step' AND (s.index IS NULL OR s.kind IS NULL
                                                     OR s.kind NOT IN ({_KINDS}))) AS bad_steps,
            min(s.index) FILTER (WHERE type = 'step') AS lo,
            max(s.index) FILTER (WHERE type = 'step') AS hi,
            sum(s.index) FILTER (WHERE type = 'step') AS total,
            count(*) FILTER (WHERE type = 'seal') AS seals,
            any_value(seal_steps) FILTER (WHERE type = 'seal') AS seal_steps,
            any_value(outcome) FILTER (WHERE type = 'seal') AS outcome,
            arg_max(s.kind, s.index) FILTER (WHERE type = 'step') AS last_kind,
            count(*) FILTER (WHERE s.kind = 'llm') AS llm_calls,
            count(*) FILTER (WHERE s.kind = 'tool') AS tool_calls,
            count(*) FILTER (WHERE s.error.type IS NOT NULL) AS errors,
            count(*) FILTER (WHERE s.side_effect) AS side_effects,
            sum(coalesce(TRY_CAST(a[2] AS BIGINT), TRY_CAST(a[3] AS BIGINT) + TRY_CAST(a[4] AS BIGINT))) AS tokens,
            sum(TRY_CAST(a[5] AS DOUBLE)) AS cost_usd,
            arg_min(a[1], s.index) FILTER (WHERE s.kind = 'llm' AND a[1] IS NOT NULL) AS step_model,
            min(s.t_start) AS t_start, max(s.t_end) AS t_end
        FROM l GROUP BY filename""")


def _decide(con: DuckDBPyConnection) -> None:
    """Join headers and aggregates into ``_cand`` with an action: add, replace or duplicate.

    Within the batch the most complete copy of a trace wins (sealed, then most steps);
    against the store, a file seen before at the same path replaces its rows (it grew),
    and a copy elsewhere replaces them only when it is more complete.
    """
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _cand AS
        WITH c AS (
            SELECT h.*, a.*  EXCLUDE (filename), a.seals = 1 AS sealed,
                   row_number() OVER (PARTITION BY h.trace_id
                                      ORDER BY a.seals = 1 DESC, a.n DESC, h.file) AS copy
            FROM _heads h JOIN _agg a USING (filename))
        SELECT c.*, old.run_id AS old_run, CASE
                WHEN c.copy > 1 THEN 'duplicate'
                WHEN old.trace_id IS NULL THEN 'add'
                WHEN old.file = c.file THEN 'replace'
                WHEN (c.sealed AND NOT old.sealed) OR (c.sealed = old.sealed AND c.n > old.n_steps) THEN 'replace'
                ELSE 'duplicate' END AS action
        FROM c LEFT JOIN traces old USING (trace_id)""")


_INSERT_TRACES = """
    INSERT INTO traces SELECT
        trace_id, coalesce(run_id, old_run, ?), name, test, trial, seed, coalesce(model, step_model),
        orchestration, config::JSON, config_key, labels::JSON, entrypoint::JSON, outcome.status,
        outcome.output, outcome.reason, n, sealed,
        sealed AND last_kind = 'end' AND coalesce(outcome.status NOT IN ('timeout', 'max_steps'), false),
        llm_calls, tool_calls, errors, side_effects, tokens, cost_usd, t_start, t_end, file, ?
    FROM _cand WHERE action IN ('add', 'replace')"""

_INSERT_STEPS = """
    INSERT INTO steps
    WITH l AS (
        SELECT c.trace_id, l.r.step AS s,
               CASE WHEN l.r.step.attrs IS NOT NULL THEN json_extract_string(l.r.step.attrs,
                    ['$.model', '$.tokens.total', '$.tokens.prompt', '$.tokens.completion', '$.cost_usd']) END AS a
        FROM _lines l JOIN _cand c USING (filename)
        WHERE c.action IN ('add', 'replace') AND l.r.type = 'step')
    SELECT trace_id, s.index, s.kind, coalesce(s.agent, 'main'), s.target, s.content, s.args, s.result,
           s.error.type, s.error.message, s.sources, coalesce(s.reads, []), coalesce(s.side_effect, false),
           coalesce(contains(s.sources::VARCHAR, '"trusted":false'), false), a[1],
           coalesce(TRY_CAST(a[2] AS BIGINT), TRY_CAST(a[3] AS BIGINT) + TRY_CAST(a[4] AS BIGINT)),
           TRY_CAST(a[5] AS DOUBLE), s.attrs, s.t_start, s.t_end
    FROM l"""


def _stage(con: DuckDBPyConnection, files: list[TraceFile], report: IngestReport, tmp: Path,
           checked_in: dict[str, str]) -> None:
    """Read every file into ``_lines`` and describe it in ``_heads``; bad files go to ``report.errors``."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _lines (filename VARCHAR, r {sql_type(_RECORD)})")
    heads: list[dict[str, Any]] = []
    for i, tf in enumerate(files):
        filename = str(tf.path)
        if tf.torn:   # a crash: keep the complete lines, which read_trace_file verifies
            try:
                result = read_trace_file(tf.path)
            except TraceFormatError as exc:
                report.errors.append(str(exc))
                continue
            filename = str(tmp / f"{i}.jsonl")
            Path(filename).write_bytes(tf.path.read_bytes()[:result.valid_bytes])
            report.warnings.extend(str(w) for w in result.warnings)
        h = tf.header
        heads.append({"filename": filename, "file": str(tf.path), "size": tf.size, "mtime_ns": tf.mtime_ns,
                      "torn": tf.torn, "trace_id": h.trace_id, "name": h.name,
                      "run_id": h.run_label or checked_in.get(h.trace_id),
                      "test": h.test, "trial": h.trial, "seed": h.seed, "model": h.model,
                      "orchestration": h.orchestration, "config": h.config, "config_key": h.config_key,
                      "labels": h.labels, "entrypoint": h.entrypoint})
    bad: dict[str, str] = {}
    if heads:
        _read(con, [h["filename"] for h in heads], bad)
    _aggregate(con)
    for filename, reason in _problems(con):
        bad[filename] = reason
    by_name = {h["filename"]: h for h in heads}
    for filename, reason in bad.items():
        report.errors.append(_reason(Path(by_name[filename]["file"]), reason))
    load_rows(con, "_heads", _HEADS, [h for h in heads if h["filename"] not in bad])


def _reason(path: Path, fallback: str) -> str:
    """``path:line: reason`` for a file the bulk read rejected, as the trace reader words it."""
    try:
        read_trace_file(path)
    except TraceFormatError as exc:
        return str(exc)
    except Exception:  # pragma: no cover - the reader is the explanation, not a requirement
        pass
    return f"{path}: {fallback}"


def load_traces(con: DuckDBPyConnection, files: list[TraceFile], report: IngestReport,
                batch_run: str, checked_in: dict[str, str]) -> list[str]:
    """Stage ``files`` and decide what each adds; return the run ids the new traces use.

    A trace's run is its ``mattrace.run`` label, else the run of a results file that
    checked it (``checked_in``: trace id -> run id), else the run it had, else ``batch_run``.
    Leaves the writes to :func:`write_traces` so that they share the caller's transaction.
    """
    with tempfile.TemporaryDirectory(prefix="mattrace-ingest-") as tmp:
        _stage(con, files, report, Path(tmp), checked_in)
    _decide(con)
    for file, n in con.execute("SELECT file, n FROM _cand WHERE NOT sealed AND NOT torn").fetchall():
        report.warnings.append(f"{file}:{n + 2}: trace file is not sealed (the recording stopped, or is still "
                               f"running); stored {n} complete step(s) as an unfinished run")
    return [str(r[0]) for r in con.execute(
        "SELECT DISTINCT coalesce(run_id, old_run, ?) FROM _cand WHERE action IN ('add', 'replace')",
        [batch_run]).fetchall()]


def write_traces(con: DuckDBPyConnection, report: IngestReport, batch_run: str, now: Any) -> None:
    """Replace and insert the decided traces and their steps; record every read file in ``files``."""
    con.execute("DELETE FROM steps WHERE trace_id IN (SELECT trace_id FROM _cand WHERE action = 'replace')")
    con.execute("DELETE FROM traces WHERE trace_id IN (SELECT trace_id FROM _cand WHERE action = 'replace')")
    con.execute(_INSERT_TRACES, [batch_run, now])
    con.execute(_INSERT_STEPS)
    con.execute("""INSERT OR REPLACE INTO files
                   SELECT file, 'trace', size, mtime_ns, trace_id, ? FROM _cand""", [now])
    counts = con.execute("""SELECT count(*) FILTER (WHERE action = 'add'), count(*) FILTER (WHERE action = 'replace'),
                                   count(*) FILTER (WHERE action = 'duplicate'),
                                   coalesce(sum(n) FILTER (WHERE action IN ('add', 'replace')), 0)
                            FROM _cand""").fetchone()
    assert counts is not None
    report.traces_added += int(counts[0])
    report.traces_replaced += int(counts[1])
    report.traces_unchanged += int(counts[2])
    report.steps_added += int(counts[3])
    report.added_files += [str(r[0]) for r in con.execute(
        "SELECT file FROM _cand WHERE action IN ('add', 'replace') ORDER BY file").fetchall()]
