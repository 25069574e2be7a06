"""The :class:`Store`: a DuckDB file that indexes trace and results files for metrics and SQL.

DuckDB lets one process at a time open a database file for writing (and readers not at
the same time as that writer), so the store is opened briefly by whoever ingests — the
pytest controller at the end of a session, or ``mattrace ingest`` — and a second opener
waits for the lock (``timeout``) before giving up with a :class:`StoreError` that says
another process holds it. pytest-xdist workers never open it: they write files.

duckdb is imported when a store is opened, not when this module is imported, so
importing :mod:`mattrace.store` costs nothing to a test suite that does not use it.
"""

from __future__ import annotations

import re
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from mattrace.errors import StoreError
from mattrace.store._faults import ContainmentRow, containment_sql
from mattrace.store._governance import GovernanceRow, governance_sql
from mattrace.store._grouping import BROKEN_EXPR, REPLAY_EXPR
from mattrace.store._metrics import ComplianceRow, MetricsRow, compliance_sql, metrics_sql
from mattrace.store._report import IngestReport
from mattrace.store._runs import RunInfo, runs_sql
from mattrace.store._schema import ensure_schema
from mattrace.store._sql import literal

if TYPE_CHECKING:
    import os

    from duckdb import DuckDBPyConnection

__all__ = ["DEFAULT_STORE", "Store"]

DEFAULT_STORE = ".mattrace/mattrace.duckdb"
MEMORY = ":memory:"
_Row = TypeVar("_Row")


def _pid(message: str) -> str:
    match = re.search(r"\(PID (\d+)\)", message)
    return f" (PID {match.group(1)})" if match else ""


def _group_names(by: Sequence[str] | str) -> tuple[str, ...]:
    """``by`` as distinct group names in order (a lone string is one name, not its letters)."""
    return tuple(dict.fromkeys((by,) if isinstance(by, str) else by))


def new_run_id() -> str:
    """A fresh run id: UTC time plus randomness, so ids sort by time and never collide."""
    return f"ingest-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class Store:
    """An open metrics store. Use :meth:`open`; close it (or use ``with``) to release the file.

    Not thread-safe: one thread uses a Store at a time (DuckDB connections are not shared).
    """

    def __init__(self, con: DuckDBPyConnection, path: str, *, read_only: bool = False) -> None:
        self._con = con
        self.path = path
        self.read_only = read_only

    @classmethod
    def open(cls, path: str | os.PathLike[str] = DEFAULT_STORE, *, read_only: bool = False,
             timeout: float = 10.0) -> Store:
        """Open (creating it unless ``read_only``) the store at ``path``; ``":memory:"`` for a throwaway one.

        Waits up to ``timeout`` seconds while another process holds the file.

        Raises:
            StoreError: the file is still locked after ``timeout``, is not a DuckDB file, has
                another schema version, or (read-only) does not exist.
        """
        import duckdb

        name = str(path)
        if name != MEMORY:
            if read_only and not Path(name).is_file():
                raise StoreError(f"{name}: no store here yet; run `mattrace ingest` to create it")
            if not read_only:
                Path(name).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            try:
                con = duckdb.connect(name, read_only=read_only and name != MEMORY)
                break
            except duckdb.Error as exc:
                message = str(exc).splitlines()[0]
                if "lock" not in message.lower():
                    raise StoreError(f"{name}: cannot open the store: {message}") from None
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"{name}: another process{_pid(message)} holds the store (DuckDB allows one writer, and no "
                        f"readers beside it); waited {timeout:g} s. Let it finish, or use another store file"
                    ) from None
                time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
                delay = min(delay * 2, 0.25)
        try:
            con.execute("SET enable_progress_bar = false")
            ensure_schema(con, name, read_only=read_only and name != MEMORY)
        except BaseException:
            con.close()
            raise
        return cls(con, name, read_only=read_only)

    # -- lifetime -------------------------------------------------------------------------

    @property
    def connection(self) -> DuckDBPyConnection:
        """The DuckDB connection, for queries this class does not wrap."""
        return self._con

    def close(self) -> None:
        """Release the file (and its lock)."""
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- ingest ---------------------------------------------------------------------------

    def ingest(self, paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
               run: dict[str, Any] | None = None) -> IngestReport:
        """Index trace and results files (or the ``*.jsonl`` files under directories).

        Bulk and idempotent: unchanged files (same path, size and mtime) are not read again;
        a file that changed (an unsealed trace that was later sealed) replaces its rows. A
        file that cannot be ingested is skipped and reported in ``errors``; the others go in.

        Args:
            paths: files and directories.
            run: the run that traces without a ``mattrace.run`` label belong to (a results
                header's ``run`` object: ``run_id``, ``started``, ``source``, ``argv``, ``host``,
                ``worker``); without it they go under a new ``ingest-…`` run. The run gets a
                row in ``runs`` only if some trace belongs to it.

        Raises:
            StoreError: the store is read-only, or DuckDB failed unexpectedly.
        """
        import duckdb

        from mattrace.store._batch import run_batch

        if self.read_only:
            raise StoreError(f"{self.path}: the store was opened read-only; it cannot ingest")
        if isinstance(paths, (str, Path)) or hasattr(paths, "__fspath__"):
            paths = [paths]  # type: ignore[list-item]
        if run is None:
            run = {"run_id": new_run_id(), "source": "ingest", "host": socket.gethostname(),
                   "started": datetime.now(UTC).isoformat()}
        elif not isinstance(run.get("run_id"), str) or not run["run_id"]:
            raise StoreError("ingest(run=...) needs a non-empty 'run_id'")
        try:
            return run_batch(self._con, list(paths), run)
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: ingest failed: {str(exc).splitlines()[0]}") from exc

    # -- reading --------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run ``sql``; return the column names and the rows.

        Raises:
            StoreError: DuckDB rejected the query (its message says why).
        """
        import duckdb

        try:
            cur = self._con.execute(sql, list(params) if params is not None else None)
            if cur.description is None:
                return [], []
            columns = [str(d[0]) for d in cur.description]
            return columns, cur.fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {str(exc).strip().splitlines()[0]}") from None

    def _dicts(self, sql: str) -> list[dict[str, Any]]:
        columns, rows = self.query(sql)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def _grouped(self, build: Callable[..., str], row: Callable[[dict[str, Any], dict[str, Any]], _Row],
                 by: Sequence[str], run_id: str | None, **options: Any) -> list[_Row]:
        """Run a grouped query whose group columns are named after the keys of ``by``; one ``row`` per group."""
        names = _group_names(by)
        rows = self._dicts(build(names, run_id=run_id, names=names, **options))
        return [row({n: r[n] for n in names}, r) for r in rows]

    def metrics(self, by: Sequence[str] = ("config",), *, run_id: str | None = None,
                k: int | None = None, replays: bool = False) -> list[MetricsRow]:
        """The metrics per group of traces (docs/store.md defines each one).

        Args:
            by: what to group by: ``test``, ``model``, ``seed``, ``orchestration``, ``run``,
                ``trial``, ``config`` (the whole config but the seed), ``config.<key>``,
                ``label.<key>``; ``()`` for one row over everything.
            run_id: only this run's traces.
            k: the k of pass^k; default: the smallest trial count among a group's tasks.
            replays: count the traces replayed from cassettes too (label ``mattrace.replay_of``):
                they repeat recorded runs, so by default they are left out. A run that broke
                off on a cassette mismatch is never counted.

        Raises:
            StoreError: an unknown ``by`` item (the message lists the valid ones), or ``k < 1``.
        """
        if k is not None and k < 1:
            raise StoreError(f"pass^k needs k >= 1, got {k}")
        return self._grouped(metrics_sql, MetricsRow.from_row, by, run_id, k=k, replays=replays)

    def compliance(self, by: Sequence[str] = (), *, per: str = "contract",
                   run_id: str | None = None, replays: bool = False) -> list[ComplianceRow]:
        """PASS verdicts / verdicts per contract (``per="contract"``) or per trace, within groups of ``by``
        (replayed traces only with ``replays``, as in :meth:`metrics`)."""
        from mattrace.store._metrics import _rate

        names = _group_names(by)
        rows = self.query(compliance_sql(names, per, run_id=run_id, replays=replays))[1]
        out = []
        for row in rows:
            group = dict(zip(names, row[:len(names)], strict=True))
            subject, test, severity, total, passed, failed, rate, low, high = row[len(names):]
            out.append(ComplianceRow(group, str(subject), test, severity, int(passed), int(failed),
                                     _rate(passed, total, rate, low, high)))
        return out

    def containment(self, by: Sequence[str] = ("fault",), *, run_id: str | None = None,
                    replays: bool = False) -> list[ContainmentRow]:
        """Containment of the faulted traces per group: contained (incl. degraded), degraded, escaped, rates.

        A trace counts once in each group it falls in (a run with two fault classes counts
        under each). Its class is the one its results file gives, else the store's own
        judgement (docs/store.md).

        Args:
            by: ``fault`` (the class name, ``Timeout``), ``fault_class`` (``timeout``),
                ``target`` (the fault's pattern, ``tool:*``), ``call_target`` (what it hit,
                ``tool:lookup``), and every key :meth:`metrics` takes; ``()`` for one row.
            run_id: only this run's traces.
            replays: count replayed traces too, as in :meth:`metrics`.

        Raises:
            StoreError: an unknown ``by`` item (the message lists the valid ones).
        """
        return self._grouped(containment_sql, ContainmentRow.from_row, by, run_id, replays=replays)

    def governance(self, by: Sequence[str] = ("rule",), *, run_id: str | None = None,
                   replays: bool = False) -> list[GovernanceRow]:
        """Governance decisions per group: allowed, rewritten, blocked and escalated, each share with its interval.

        Args:
            by: ``agent`` (the acting agent), ``tool`` (the call's target, ``send_email``),
                ``call_kind`` (``tool``, ``retrieval``, ``memory_write``), ``rule`` (the rule id,
                ``capability`` or ``default``), ``decision``, and every key :meth:`metrics`
                takes; ``()`` for one row.
            run_id: only this run's traces.
            replays: count replayed traces too, as in :meth:`metrics`.

        Raises:
            StoreError: an unknown ``by`` item (the message lists the valid ones).
        """
        return self._grouped(governance_sql, GovernanceRow.from_row, by, run_id, replays=replays)

    def replay_counts(self, *, run_id: str | None = None) -> dict[str, int]:
        """How many stored traces the metrics leave out: ``replays`` (answered from a cassette
        alone, which ``replays=True`` counts) and ``broken`` (the run broke off on a cassette
        mismatch, which nothing counts)."""
        where = f"WHERE run_id = {literal(run_id)}" if run_id is not None else ""
        _, rows = self.query(f"SELECT count(*) FILTER (WHERE {REPLAY_EXPR} AND NOT ({BROKEN_EXPR})), "
                             f"count(*) FILTER (WHERE {BROKEN_EXPR}) FROM traces {where}")
        replays, broken = rows[0]
        return {"replays": int(replays), "broken": int(broken)}

    def runs(self, limit: int = 20, *, replays: bool = False) -> list[RunInfo]:
        """The most recent runs first, with their trace counts and success rate. They count what
        the metrics count: replays only with ``replays``, runs that broke off on a cassette
        mismatch never (``RunInfo.left_out`` says how many traces were left out)."""
        return [RunInfo.from_row(r) for r in self._dicts(runs_sql(limit, replays=replays))]

    # -- export ---------------------------------------------------------------------------

    def export_parquet(self, directory: str | os.PathLike[str], run_id: str | None = None) -> dict[str, int]:
        """Write traces, steps, verdicts, violations, faults and decisions as Parquet, one directory per run.

        The store is one file that one machine opens; Hive-style partitions
        (``directory/<table>/run_id=<run>/``) let DuckDB over object storage, Spark or Trino
        read the same rows when that is not enough. Re-exporting a run replaces its
        partitions; other runs' stay. Works on a read-only store.

        Args:
            directory: where the table directories go; created if missing.
            run_id: only this run; default every run.

        Returns:
            The rows written per table.

        Raises:
            StoreError: an unknown ``run_id``, or a directory that cannot be written.
        """
        from mattrace.store._parquet import export_parquet

        return export_parquet(self, directory, run_id=run_id)
