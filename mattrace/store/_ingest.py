"""Bulk ingest of trace files: one DuckDB read over every new file, then INSERT … SELECT.

Speed decides the shape. DuckDB's JSON reader pays per file and per (small) chunk, and
a trace file is small, so the files are read *raw* (``read_ndjson_objects``, no typing)
into a temp table in one call; typing then runs over full vectors in the one statement
that inserts the steps, and per-trace figures are aggregated from the typed ``steps``
rows. Canonical JSON sorts keys, so a record's type shows in its first bytes
(``{"step":``, ``{"alg":``, ``{"final":``) and is known without parsing. Python touches a
file only to read its first line and last byte.

Robustness decides the rest. A file that does not read must not cost the others: when
the bulk read fails, the batch is split in halves until the bad files are isolated, and
each is reported as ``path:line: reason`` (worded by
:func:`mattrace.tracefile.read_trace_file`, as ``mattrace verify`` words it). A torn tail
is a crash, not corruption: the complete lines are ingested and the trace is marked
unsealed. Without an HMAC key the hash chain is *not* verified here (that is ``mattrace
verify``'s job, at Python speed); the structure is: one header, steps numbered 0..N-1, at
most one seal counting them. With ``MATTRACE_HMAC_KEY`` set, integrity comes before speed:
every new file goes through :func:`mattrace.tracefile.read_trace_file`, which refuses one
not signed with the key (as every reader does), and DuckDB reads the very bytes that were
verified (a copy), so the file cannot be swapped in between.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from mattrace.errors import TornTailWarning, TraceFormatError
from mattrace.store._faults import INFERRED, fault_rows_sql, inferred_rows, taint_sql
from mattrace.store._governance import decision_rows_sql
from mattrace.store._records import ATTRS, HEADER_RECORD, SEAL_RECORD, STEP_COLUMNS, STEP_RECORD
from mattrace.store._report import IngestReport
from mattrace.store._sql import literal, load_rows
from mattrace.trace import OutcomeStatus, StepKind
from mattrace.tracefile import VERSION, hmac_key_from_env, read_trace_file

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

__all__ = ["CHUNK_BYTES", "TraceFile", "ingest_traces"]

CHUNK_BYTES = 256 << 20   # files are staged and committed in chunks of about this many bytes

_STEP = json.dumps(STEP_RECORD)
_HEADER = json.dumps(HEADER_RECORD)
_SEAL = json.dumps(SEAL_RECORD)
_TYPE = """CASE WHEN starts_with(json, '{"step":') THEN 'step' WHEN starts_with(json, '{"alg":') THEN 'header'
                WHEN starts_with(json, '{"final":') THEN 'seal' ELSE json_extract_string(json, '$.type') END"""
_KINDS = ", ".join(literal(k.value) for k in StepKind)
_OUTCOMES = ", ".join(literal(status) for status in get_args(OutcomeStatus))
_FILES: dict[str, Any] = {"filename": "VARCHAR", "file": "VARCHAR", "size": "BIGINT", "mtime_ns": "BIGINT",
                          "torn": "BOOLEAN"}
_NEW = "(SELECT trace_id FROM _cand WHERE action IN ('add', 'replace'))"
_FAULTED = "(SELECT trace_id FROM _agg WHERE faults > 0)"   # the new traces with injected faults
_GOVERNED = "(SELECT trace_id FROM _agg WHERE decisions > 0)"   # the new traces with governance decisions


@dataclass
class TraceFile:
    """A trace file to read: where, its size and mtime, whether its tail is torn."""

    path: Path
    size: int
    mtime_ns: int
    torn: bool


def _read(con: DuckDBPyConnection, names: list[str], bad: dict[str, str], big: bool = False) -> None:
    """Append the lines of ``names`` to ``_raw``; on failure split the batch to find the bad files."""
    import duckdb

    option = f", maximum_object_size={2**31 - 1}" if big else ""
    try:
        con.execute(f"INSERT INTO _raw SELECT filename, {_TYPE}, json "
                    f"FROM read_ndjson_objects(?, filename=true{option})", [names])
    except duckdb.Error as exc:
        if len(names) > 1:
            mid = len(names) // 2
            _read(con, names[:mid], bad)
            _read(con, names[mid:], bad)
        elif not big and "maximum_object_size" in str(exc):
            _read(con, names, bad, big=True)   # one line longer than 16 MB: read it alone
        elif "surrogate" in str(exc):
            _read_as_text(con, names[0], bad, option)
        else:
            bad[names[0]] = str(exc).splitlines()[0]


# a surrogate pair (kept: it is one character) or a lone surrogate (replaced), as JSON escapes
_SURROGATE = re.compile(rb"(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})"
                        rb"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _read_as_text(con: DuckDBPyConnection, name: str, bad: dict[str, str], option: str) -> None:
    """Read a file holding lone UTF-16 surrogates (recorded exactly, e.g. an undecodable file name), which
    DuckDB's JSON reader refuses: the store gets a copy with each one as U+FFFD (its rows are for queries
    and metrics; the trace file keeps the exact text), under the file's own name."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="mattrace-text-") as tmp:
        copy = Path(tmp) / "text.jsonl"
        copy.write_bytes(_SURROGATE.sub(lambda m: m.group(1) or rb"\ufffd", Path(name).read_bytes()))
        try:
            con.execute(f"INSERT INTO _raw SELECT ?, {_TYPE}, json FROM read_ndjson_objects(?{option})",
                        [name, str(copy)])
        except duckdb.Error as exc:
            bad[name] = str(exc).splitlines()[0]


def _verified_copy(tf: TraceFile, copy: Path, key: bytes | None, report: IngestReport) -> bool:
    """Copy ``tf`` to ``copy`` and verify the copy with the trace reader; False if it does not read.

    The copy keeps only the complete lines (a torn tail is cut), and is what DuckDB then
    reads, so what is stored is exactly what was verified. Errors and warnings name ``tf``.
    """
    try:
        copy.write_bytes(tf.path.read_bytes())
        result = read_trace_file(copy, key=key)
    except OSError as exc:
        report.errors.append(f"{tf.path}: cannot read file: {exc.strerror or exc}")
        return False
    except TraceFormatError as exc:
        report.errors.append(str(TraceFormatError(tf.path, exc.line, exc.reason)))
        return False
    os.truncate(copy, result.valid_bytes)
    report.warnings.extend(str(TornTailWarning(tf.path, w.line, w.steps, w.torn)) for w in result.warnings
                           if tf.torn)
    return True


def _stage(con: DuckDBPyConnection, files: list[TraceFile], report: IngestReport, tmp: Path,
           checked_in: dict[str, str], key: bytes | None) -> dict[str, str]:
    """Read ``files`` into ``_raw`` and describe them in ``_files``, ``_heads``, ``_lite``.

    A torn file (a crash) and, with an HMAC ``key``, every file is verified by the trace
    reader first (see :func:`_verified_copy`). Returns the files that cannot be ingested
    (filename -> reason).
    """
    con.execute("CREATE OR REPLACE TEMP TABLE _raw (filename VARCHAR, type VARCHAR, json VARCHAR)")
    rows: list[dict[str, Any]] = []
    for i, tf in enumerate(files):
        filename = str(tf.path)
        if tf.torn or key is not None:
            copy = tmp / f"{i}.jsonl"
            if not _verified_copy(tf, copy, key, report):
                continue
            filename = str(copy)
        rows.append({"filename": filename, "file": str(tf.path), "size": tf.size, "mtime_ns": tf.mtime_ns,
                     "torn": tf.torn})
    load_rows(con, "_files", _FILES, rows)
    load_rows(con, "_checked", {"trace_id": "VARCHAR", "run_id": "VARCHAR"},
              [{"trace_id": k, "run_id": v} for k, v in checked_in.items()])
    bad: dict[str, str] = {}
    if rows:
        _read(con, [r["filename"] for r in rows], bad)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _heads AS
        WITH h AS (SELECT filename, json_transform(json, {literal(_HEADER)}) AS r FROM _raw WHERE type = 'header'),
        t AS (SELECT filename, r.version AS version, r.trace.trace_id AS trace_id, r.trace.name AS name,
                     coalesce(r.trace.config, '{{}}') AS config, coalesce(r.trace.labels, '{{}}') AS labels,
                     r.trace.entrypoint AS entrypoint FROM h)
        SELECT t.*, coalesce(json_extract_string(labels, '$."mattrace.run"'), c.run_id) AS run_id,
               coalesce(json_extract_string(labels, '$."mattrace.test"'), name) AS test,
               TRY_CAST(json_extract_string(labels, '$."mattrace.trial"') AS INTEGER) AS trial,
               CASE WHEN json_type(config, '$.seed') IN ('BIGINT', 'UBIGINT')
                    THEN TRY_CAST(json_extract_string(config, '$.seed') AS BIGINT) END AS seed,
               json_extract_string(config, '$.model') AS model,
               json_extract_string(config, '$.orchestration') AS orchestration,
               json_merge_patch(config, '{{"seed":null}}')::VARCHAR AS config_key
        FROM t LEFT JOIN _checked c USING (trace_id)""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _lite AS
        WITH l AS (SELECT filename, type, CASE WHEN type = 'seal' THEN json_transform(json, {literal(_SEAL)}) END AS s
                   FROM _raw)
        SELECT filename, count(*) FILTER (WHERE type = 'step') AS n,
               count(*) FILTER (WHERE type = 'header') AS headers,
               count(*) FILTER (WHERE type IS NULL OR type NOT IN ('header', 'step', 'seal')) AS unknown,
               count(*) FILTER (WHERE type = 'seal') AS seals,
               any_value(s.steps) FILTER (WHERE type = 'seal') AS seal_steps,
               any_value(s.outcome) FILTER (WHERE type = 'seal') AS outcome
        FROM l GROUP BY filename""")
    for filename, reason in con.execute(f"""
            SELECT filename, CASE
                WHEN l.headers <> 1 THEN 'expected exactly one header line, found ' || l.headers
                WHEN h.version IS DISTINCT FROM {VERSION}
                    THEN 'unsupported trace format version ' || coalesce(h.version, 0)
                WHEN h.trace_id IS NULL OR h.trace_id = '' OR h.name IS NULL THEN 'the header has no trace_id or name'
                WHEN json_type(h.config) <> 'OBJECT' OR json_type(h.labels) <> 'OBJECT'
                    THEN 'the header''s config and labels must be objects'
                WHEN l.unknown > 0 THEN 'a line has an unknown record type'
                WHEN l.seals > 1 THEN 'more than one seal line'
                WHEN l.seals = 1 AND l.seal_steps IS DISTINCT FROM l.n
                    THEN 'the seal counts ' || coalesce(l.seal_steps::VARCHAR, 'no')
                         || ' steps but the file holds ' || l.n
                WHEN l.outcome.status IS NOT NULL AND l.outcome.status NOT IN ({_OUTCOMES})
                    THEN 'the seal has an unknown outcome status ' || l.outcome.status
                END AS problem
            FROM _lite l LEFT JOIN _heads h USING (filename) WHERE problem IS NOT NULL""").fetchall():
        bad.setdefault(str(filename), str(reason))
    return bad


def _decide(con: DuckDBPyConnection, bad: dict[str, str]) -> None:
    """Build ``_cand``: each readable file with an action: add, replace or duplicate.

    Within the batch the most complete copy of a trace wins (sealed, then most steps);
    against the store, a file seen before at the same path replaces its rows (it grew),
    and a copy elsewhere replaces them only when it is more complete.
    """
    load_rows(con, "_bad", {"filename": "VARCHAR"}, [{"filename": f} for f in bad])
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _cand AS
        WITH c AS (
            SELECT f.*, h.* EXCLUDE (filename), l.n, l.seals = 1 AS sealed, l.outcome,
                   row_number() OVER (PARTITION BY h.trace_id ORDER BY l.seals = 1 DESC, l.n DESC, f.file) AS copy
            FROM _files f JOIN _heads h USING (filename) JOIN _lite l USING (filename)
            WHERE filename NOT IN (SELECT filename FROM _bad))
        SELECT c.*, old.run_id AS old_run, CASE
                WHEN c.copy > 1 THEN 'duplicate'
                WHEN old.trace_id IS NULL THEN 'add'
                WHEN old.file = c.file THEN 'replace'
                WHEN (c.sealed AND NOT old.sealed) OR (c.sealed = old.sealed AND c.n > old.n_steps) THEN 'replace'
                ELSE 'duplicate' END AS action
        FROM c LEFT JOIN traces old USING (trace_id)""")


_INSERT_STEPS = f"""
    INSERT INTO steps
    WITH l AS (
        SELECT c.trace_id, json_transform(r.json, {literal(_STEP)}).step AS s
        FROM _raw r JOIN _cand c USING (filename)
        WHERE r.type = 'step' AND c.action IN ('add', 'replace')),
    a AS (SELECT *, {ATTRS} AS a FROM l)
    SELECT {", ".join(column.value for column in STEP_COLUMNS)}
    FROM a"""

_AGGREGATE = f"""
    CREATE OR REPLACE TEMP TABLE _agg AS
    SELECT trace_id, count(*) AS n, min(idx) AS lo, max(idx) AS hi, sum(idx) AS total,
           count(*) FILTER (WHERE idx IS NULL OR kind IS NULL OR kind NOT IN ({_KINDS})) AS bad_steps,
           arg_max(kind, idx) AS last_kind, count(*) FILTER (WHERE kind = 'llm') AS llm_calls,
           count(*) FILTER (WHERE kind = 'tool') AS tool_calls,
           count(*) FILTER (WHERE error_type IS NOT NULL) AS errors,
           count(*) FILTER (WHERE side_effect) AS side_effects, count(*) FILTER (WHERE kind = 'fault') AS faults,
           count(*) FILTER (WHERE kind = 'governance') AS decisions,
           sum(tokens) AS tokens, sum(cost_usd) AS cost_usd,
           arg_min(model, idx) FILTER (WHERE kind = 'llm' AND model IS NOT NULL) AS step_model,
           min(t_start) AS t_start, max(t_end) AS t_end
    FROM steps WHERE trace_id IN {_NEW} GROUP BY trace_id"""

_INSERT_TRACES = """
    INSERT INTO traces SELECT
        c.trace_id, coalesce(c.run_id, c.old_run, ?), c.name, c.test, c.trial, c.seed, coalesce(c.model, a.step_model),
        c.orchestration, c.config, c.config_key, c.labels, c.entrypoint, c.outcome.status, c.outcome.output,
        c.outcome.reason, c.n, c.sealed,
        c.sealed AND a.last_kind = 'end' AND coalesce(c.outcome.status NOT IN ('timeout', 'max_steps'), false),
        coalesce(a.llm_calls, 0), coalesce(a.tool_calls, 0), coalesce(a.errors, 0), coalesce(a.side_effects, 0),
        a.tokens, a.cost_usd, a.t_start, a.t_end, c.file, ?, coalesce(a.faults, 0), x.step
    FROM _cand c LEFT JOIN _agg a USING (trace_id) LEFT JOIN _taint x USING (trace_id)
    WHERE c.action IN ('add', 'replace')"""


def _write(con: DuckDBPyConnection, report: IngestReport, batch_run: str, now: datetime) -> list[tuple[str, str]]:
    """Insert the decided traces and steps in one transaction; roll back and return the files
    whose steps turned out malformed (they are caught only once typed), if any."""
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("steps", "traces", "faults", "decisions"):
            con.execute(f"DELETE FROM {table} WHERE trace_id IN (SELECT trace_id FROM _cand WHERE action = 'replace')")
        con.execute(_INSERT_STEPS)
        con.execute(_AGGREGATE)
        broken = con.execute("""
            SELECT c.filename, CASE WHEN a.bad_steps > 0 THEN 'a step has no valid index or kind'
                                    ELSE 'steps are not numbered 0..' || (a.n - 1) || ' in order' END
            FROM _agg a JOIN _cand c USING (trace_id)
            WHERE c.action IN ('add', 'replace')
              AND (a.bad_steps > 0 OR a.lo <> 0 OR a.hi <> a.n - 1 OR a.total <> a.n * (a.n - 1) // 2)""").fetchall()
        if broken:
            con.execute("ROLLBACK")
            return [(str(f), str(r)) for f, r in broken]
        row = con.execute("SELECT count(*) FILTER (WHERE faults > 0), count(*) FILTER (WHERE decisions > 0) "
                          "FROM _agg").fetchone()
        faulted, governed = (int(row[0]), int(row[1])) if row else (0, 0)
        if faulted:   # most batches have no injected faults (or decisions): then their queries do not run
            lines = con.execute(f"""
                SELECT c.trace_id, r.json FROM _raw r JOIN _cand c USING (filename)
                WHERE r.type = 'step' AND c.action IN ('add', 'replace') AND c.trace_id IN {_FAULTED}""").fetchall()
            load_rows(con, "_inferred", INFERRED, inferred_rows((str(t), str(j)) for t, j in lines))
            con.execute(f"CREATE OR REPLACE TEMP TABLE _taint AS {taint_sql(_FAULTED, '_inferred')}")
        else:
            con.execute("CREATE OR REPLACE TEMP TABLE _taint (trace_id VARCHAR, step INTEGER)")
        con.execute(_INSERT_TRACES, [batch_run, now])
        if faulted:
            con.execute(fault_rows_sql(_FAULTED))
        if governed:
            con.execute(decision_rows_sql(_GOVERNED))
        con.execute("DELETE FROM files WHERE path IN (SELECT file FROM _cand)")
        con.execute("INSERT INTO files SELECT file, 'trace', size, mtime_ns, trace_id, ? FROM _cand", [now])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    counts = con.execute("""
        SELECT count(*) FILTER (WHERE action = 'add'), count(*) FILTER (WHERE action = 'replace'),
               count(*) FILTER (WHERE action = 'duplicate'), coalesce(sum(n) FILTER (WHERE action <> 'duplicate'), 0)
        FROM _cand""").fetchone()
    assert counts is not None
    report.traces_added += int(counts[0])
    report.traces_replaced += int(counts[1])
    report.traces_unchanged += int(counts[2])
    report.steps_added += int(counts[3])
    report.added_files += [str(r[0]) for r in con.execute(
        "SELECT file FROM _cand WHERE action IN ('add', 'replace') ORDER BY file").fetchall()]
    return []


def _reason(path: str, fallback: str) -> str:
    """``path:line: reason`` for a file the bulk read rejected, as the trace reader words it."""
    try:
        read_trace_file(path)
    except TraceFormatError as exc:
        return str(exc)
    return f"{path}: {fallback}"


def _chunks(files: list[TraceFile]) -> list[list[TraceFile]]:
    chunks: list[list[TraceFile]] = [[]]
    size = 0
    for tf in files:
        if chunks[-1] and size + tf.size > CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(tf)
        size += tf.size
    return chunks


def ingest_traces(con: DuckDBPyConnection, files: list[TraceFile], report: IngestReport, batch_run: str,
                  checked_in: dict[str, str], now: datetime) -> set[str]:
    """Ingest ``files`` chunk by chunk, each chunk in its own transaction; return the run ids used.

    A trace's run is its ``mattrace.run`` label, else the run of a results file that
    checked it (``checked_in``: trace id -> run id), else the run it had, else ``batch_run``.

    Raises:
        MatTraceError: ``MATTRACE_HMAC_KEY`` is set but empty (before anything is read).
    """
    key = hmac_key_from_env()
    runs: set[str] = set()
    for chunk in _chunks(files):
        with tempfile.TemporaryDirectory(prefix="mattrace-ingest-") as tmp:
            bad = _stage(con, chunk, report, Path(tmp), checked_in, key)
            original = dict(con.execute("SELECT filename, file FROM _files").fetchall())
            while True:
                _decide(con, bad)
                broken = _write(con, report, batch_run, now)
                if not broken:
                    break
                bad.update(broken)
        for filename, reason in sorted(bad.items()):
            report.errors.append(_reason(original.get(filename, filename), reason))
        for file, n in con.execute("SELECT file, n FROM _cand WHERE NOT sealed AND NOT torn").fetchall():
            report.warnings.append(f"{file}:{n + 2}: trace file is not sealed (the recording stopped, or is still "
                                   f"running); stored {n} complete step(s) as an unfinished run")
        runs.update(str(r[0]) for r in con.execute(
            "SELECT DISTINCT coalesce(run_id, old_run, ?) FROM _cand WHERE action IN ('add', 'replace')",
            [batch_run]).fetchall())
    return runs
