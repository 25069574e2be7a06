"""The store's tables, views and macros, and the schema version that guards them.

The store is derived data: trace and results files are the source of truth, so a store
can always be rebuilt by ingesting them again. That is why an unknown *older* schema is
answered with "delete the file and ingest again" rather than a risky in-place rewrite,
and why views and macros are simply re-created whenever the store is opened for writing.

Inserts are positional, so a column a migration adds goes at the end of its table, where a
new store has it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mattrace.errors import StoreError
from mattrace.store._faults import TRACE_CONTAINMENT, containment_sql, fault_rows_sql, taint_sql
from mattrace.store._governance import decision_rows_sql, governance_sql
from mattrace.store._grouping import REPLAY_EXPR
from mattrace.store._metrics import metrics_sql
from mattrace.store._records import STEP_COLUMNS

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

__all__ = ["SCHEMA_VERSION", "TABLES", "ensure_schema"]

SCHEMA_VERSION = 4

# Column lists double as documentation (docs/store.md mirrors them). No PRIMARY KEYs: the
# ingest keeps keys unique itself, inserts stay index-free, and DuckDB 1.x cannot update a
# row of an indexed table twice in one transaction ("duplicate key" on a list column).
TABLES: dict[str, str] = {
    "meta": "key VARCHAR, value VARCHAR",
    "runs": """run_id VARCHAR, started TIMESTAMP, finished TIMESTAMP, source VARCHAR,
        host VARCHAR, argv JSON, workers VARCHAR[], ingested_at TIMESTAMP""",
    "traces": """trace_id VARCHAR, run_id VARCHAR, name VARCHAR, test VARCHAR, trial INTEGER,
        seed BIGINT, model VARCHAR, orchestration VARCHAR, config JSON, config_key VARCHAR,
        labels JSON, entrypoint JSON, outcome_status VARCHAR, outcome_output JSON,
        outcome_reason VARCHAR, n_steps INTEGER, sealed BOOLEAN, terminated BOOLEAN,
        llm_calls INTEGER, tool_calls INTEGER, errors INTEGER, side_effects INTEGER,
        tokens BIGINT, cost_usd DOUBLE, t_start BIGINT, t_end BIGINT, file VARCHAR,
        ingested_at TIMESTAMP, fault_steps INTEGER, tainted_side_effect INTEGER""",
    # derived from mattrace.trace.Step (the model's fields, and where the table differs: _records.py)
    "steps": ", ".join(f"{column.name} {column.type}" for column in STEP_COLUMNS),
    "checks": """trace_id VARCHAR, run_id VARCHAR, test VARCHAR, trial INTEGER, seed BIGINT,
        trace_file VARCHAR, claims INTEGER, claims_supported INTEGER, claims_propagated INTEGER,
        results_file VARCHAR, line INTEGER, containment VARCHAR, containment_reason VARCHAR,
        containment_step INTEGER, containment_faults VARCHAR[]""",
    "verdicts": """trace_id VARCHAR, contract VARCHAR, status VARCHAR, severity VARCHAR,
        step INTEGER, vacuous VARCHAR, reason VARCHAR""",
    "violations": """trace_id VARCHAR, contract VARCHAR, step INTEGER, reason VARCHAR,
        witness INTEGER[], severity VARCHAR""",
    "faults": """trace_id VARCHAR, run_id VARCHAR, step INTEGER, agent VARCHAR, fault VARCHAR,
        fault_class VARCHAR, target VARCHAR, call_target VARCHAR, schedule JSON, params JSON, call INTEGER,
        description VARCHAR""",
    "decisions": """trace_id VARCHAR, run_id VARCHAR, step INTEGER, agent VARCHAR, call_kind VARCHAR, tool VARCHAR,
        decision VARCHAR, rule VARCHAR, reason VARCHAR, escalated BOOLEAN, original JSON, rewritten JSON""",
    "files": """path VARCHAR, kind VARCHAR, size BIGINT, mtime_ns BIGINT,
        trace_id VARCHAR, ingested_at TIMESTAMP""",
}

# z = 1.96 (95 %): z² = 3.8416, z²/2 = 1.9208, z²/4 = 0.9604. NULL when n = 0.
_MACROS = [
    """CREATE OR REPLACE MACRO wilson_low(k, n) AS CASE WHEN n > 0 AND k <= 0 THEN 0.0 WHEN n > 0 THEN greatest(0.0,
        ((k::DOUBLE / n + 1.9208 / n)
         - 1.96 * sqrt((k::DOUBLE / n) * (1 - k::DOUBLE / n) / n + 0.9604 / (n::DOUBLE * n)))
        / (1 + 3.8416 / n)) END""",
    """CREATE OR REPLACE MACRO wilson_high(k, n) AS CASE WHEN n > 0 AND k >= n THEN 1.0 WHEN n > 0 THEN least(1.0,
        ((k::DOUBLE / n + 1.9208 / n)
         + 1.96 * sqrt((k::DOUBLE / n) * (1 - k::DOUBLE / n) / n + 0.9604 / (n::DOUBLE * n)))
        / (1 + 3.8416 / n)) END""",
    # C(c, k) / C(n, k): the chance that k trials drawn without replacement from n, of
    # which c succeeded, all succeed. lgamma keeps it exact enough (1e-12) for any n.
    """CREATE OR REPLACE MACRO pass_hat_k(c, n, k) AS CASE
        WHEN n < k OR k < 0 THEN NULL WHEN k = 0 OR c = n THEN 1.0 WHEN c < k THEN 0.0
        ELSE exp(lgamma(c + 1) - lgamma(c - k + 1) - lgamma(n + 1) + lgamma(n - k + 1)) END""",
]

_VIEWS = {
    "trace_metrics": f"""
        SELECT t.trace_id, t.run_id, t.name, t.test, t.trial, t.seed, t.model, t.orchestration,
               t.config, t.config_key, t.labels, t.outcome_status,
               coalesce(t.outcome_status = 'success', false) AS success,
               t.terminated, t.sealed, t.n_steps, t.tokens, t.cost_usd,
               coalesce(v.verdicts, 0) AS verdicts, coalesce(v.passed, 0) AS passed,
               coalesce(v.failed, 0) AS failed, coalesce(v.safety_failed, 0) AS safety_failed,
               CASE WHEN v.verdicts > 0 THEN v.passed = v.verdicts END AS compliant,
               c.claims, c.claims_supported, c.claims_propagated,
               coalesce(v.vacuous, 0) AS vacuous, coalesce(v.incomplete, 0) AS incomplete, {REPLAY_EXPR} AS replay
        FROM traces t
        LEFT JOIN (SELECT trace_id, count(*) AS verdicts,
                          count(*) FILTER (WHERE status = 'pass') AS passed,
                          count(*) FILTER (WHERE status = 'fail') AS failed,
                          count(*) FILTER (WHERE status = 'fail' AND severity = 'safety') AS safety_failed,
                          count(*) FILTER (WHERE status = 'pass' AND vacuous IS NOT NULL) AS vacuous,
                          count(*) FILTER (WHERE status = 'incomplete') AS incomplete
                   FROM verdicts GROUP BY trace_id) v USING (trace_id)
        LEFT JOIN checks c USING (trace_id)""",
    "task_metrics": """
        SELECT run_id, test, config_key, any_value(model) AS model,
               any_value(orchestration) AS orchestration, count(*) AS trials,
               count(*) FILTER (WHERE success) AS successes,
               count(*) >= 2 AND count(DISTINCT success) > 1 AS flipped,
               pass_hat_k(count(*) FILTER (WHERE success), count(*), count(*)) AS pass_all
        FROM trace_metrics GROUP BY run_id, test, config_key""",
    "compliance_by_contract": """
        SELECT contract, any_value(severity) AS severity, count(*) AS traces,
               count(*) FILTER (WHERE status = 'pass') AS passed,
               count(*) FILTER (WHERE status = 'fail') AS failed,
               count(*) FILTER (WHERE status = 'pass') / count(*) AS compliance,
               wilson_low(count(*) FILTER (WHERE status = 'pass'), count(*)) AS compliance_low,
               wilson_high(count(*) FILTER (WHERE status = 'pass'), count(*)) AS compliance_high
        FROM verdicts WHERE trace_id IN (SELECT trace_id FROM traces) GROUP BY contract""",
    # one row per run and config (all but the seed): what a CI run's summary shows
    "metrics": metrics_sql(("run", "config"), names=("run_id", "config_key")),
    "trace_containment": TRACE_CONTAINMENT,
    "containment": containment_sql(("run", "fault", "target", "config"),
                                   names=("run_id", "fault", "target", "config_key")),
    "governance": governance_sql(("run", "agent", "tool", "rule", "config"),
                                 names=("run_id", "agent", "tool", "rule", "config_key")),
}


def _v1_faults(con: DuckDBPyConnection) -> None:
    """Version 2: the ``faults`` table, fault counts and side-effect taint per trace, containment per check.

    The rows come from the stored steps. Results files are forgotten (not their rows), so the
    next ingest of them reads them again and brings the containment classes their checks carry.
    """
    con.execute(f"CREATE TABLE faults ({TABLES['faults']})")
    con.execute("ALTER TABLE traces ADD COLUMN fault_steps INTEGER")
    con.execute("ALTER TABLE traces ADD COLUMN tainted_side_effect INTEGER")
    for column in ("containment VARCHAR", "containment_reason VARCHAR", "containment_step INTEGER",
                   "containment_faults VARCHAR[]"):
        con.execute(f"ALTER TABLE checks ADD COLUMN {column}")
    con.execute(fault_rows_sql("(SELECT trace_id FROM traces)"))
    con.execute("""UPDATE traces SET fault_steps = coalesce(f.n, 0)
                   FROM (SELECT t.trace_id, count(f.trace_id) AS n FROM traces t LEFT JOIN faults f USING (trace_id)
                         GROUP BY t.trace_id) f WHERE traces.trace_id = f.trace_id""")
    taint = taint_sql("(SELECT DISTINCT trace_id FROM faults)")
    con.execute(f"UPDATE traces SET tainted_side_effect = x.step FROM ({taint}) x WHERE traces.trace_id = x.trace_id")
    con.execute("DELETE FROM files WHERE kind = 'results'")


def _v2_decisions(con: DuckDBPyConnection) -> None:
    """Version 3: the ``decisions`` table, filled from the stored governance steps.

    Derived data, so a table left over (a store taken back by hand) is rebuilt rather than trusted.
    """
    con.execute("DROP TABLE IF EXISTS decisions")
    con.execute(f"CREATE TABLE decisions ({TABLES['decisions']})")
    con.execute(decision_rows_sql("(SELECT trace_id FROM traces)"))


def _v3_vacuity(con: DuckDBPyConnection) -> None:
    """Version 4: a verdict says why it passed vacuously (``vacuous``) or why it is ``incomplete`` (``reason``).

    Verdicts stored before are left without either (NULL): they were reached before mattrace
    told vacuous passes apart. Ingesting their results files again does not bring it back;
    checking the traces again (``mattrace ingest --contracts``) does.
    """
    con.execute("ALTER TABLE verdicts ADD COLUMN vacuous VARCHAR")
    con.execute("ALTER TABLE verdicts ADD COLUMN reason VARCHAR")


# from-version -> function bringing the store to from-version + 1
MIGRATIONS: dict[int, Callable[[DuckDBPyConnection], None]] = {1: _v1_faults, 2: _v2_decisions, 3: _v3_vacuity}


def _stored_version(con: DuckDBPyConnection) -> int | None:
    """The schema version recorded in the file; None for an empty database, 0 for one without meta."""
    tables = {row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    if "meta" not in tables:
        return 0 if tables else None
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0]) if row else 0
    except (TypeError, ValueError):
        return 0


def create_views(con: DuckDBPyConnection) -> None:
    """(Re)create the macros and metric views; they hold no data, so this is always safe."""
    for sql in _MACROS:
        con.execute(sql)
    for name, sql in _VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")


def ensure_schema(con: DuckDBPyConnection, path: str, *, read_only: bool) -> None:
    """Create the schema in an empty store, or check (and migrate) an existing one.

    Raises:
        StoreError: the store was written by a newer mattrace, by one too old to migrate,
            or is empty and opened read-only.
    """
    version = _stored_version(con)
    if version is None:
        if read_only:
            raise StoreError(f"{path}: the store is empty; run `mattrace ingest` to fill it")
        _create(con)
        return
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: the store has schema version {version}, written by a newer "
                         f"mattrace (this one reads version {SCHEMA_VERSION}); upgrade mattrace, "
                         "or use another store file")
    if version < SCHEMA_VERSION:
        if read_only or any(v not in MIGRATIONS for v in range(version, SCHEMA_VERSION)):
            how = ("open it once for writing (`mattrace ingest`) to migrate it"
                   if not any(v not in MIGRATIONS for v in range(version, SCHEMA_VERSION))
                   else "delete the file and run `mattrace ingest` on your trace and results "
                   "files again (they are the source of truth)")
            raise StoreError(f"{path}: the store has schema version {version}, older than this "
                             f"mattrace's version {SCHEMA_VERSION}; {how}")
        for v in range(version, SCHEMA_VERSION):
            con.execute("BEGIN TRANSACTION")
            MIGRATIONS[v](con)
            con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(v + 1)])
            con.execute("COMMIT")
    if not read_only:
        create_views(con)


def _create(con: DuckDBPyConnection) -> None:
    con.execute("BEGIN TRANSACTION")
    for name, columns in TABLES.items():
        con.execute(f"CREATE TABLE {name} ({columns})")
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
    create_views(con)
    con.execute("COMMIT")
