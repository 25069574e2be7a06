"""The store's rows as Parquet files partitioned by run, for engines that read object storage.

One store is one DuckDB file that one machine opens. Exported as Hive-style partitions
(``<dir>/<table>/run_id=<run>/data_0.parquet``), the same rows can be read by DuckDB over
S3 or GCS, by Spark or by Trino, without mattrace. DuckDB writes the files itself
(``COPY … TO … (FORMAT parquet, PARTITION_BY (run_id))``), so no row passes through Python.

The run id lives in the directory names, not in the files (Spark refuses a column that
is in both); readers get it back with ``hive_partitioning``. Tables without a ``run_id``
column (``steps``, ``verdicts``, ``violations``) take their trace's, so their rows whose
trace is not in the store (verdicts ingested before their trace) are not exported.

An export replaces the partitions of the runs it exports (the ``run_id=…`` directories of
every run in the store, or of the one run asked for) and leaves any other run's alone: a
second export never duplicates rows, and several stores (one per CI machine, say) can
export into one directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from mattrace.errors import StoreError

if TYPE_CHECKING:
    from mattrace.store._store import Store

__all__ = ["export_parquet", "PARQUET_TABLES"]

# table -> the SELECT whose rows are exported; ``r`` is the relation that has the run_id
PARQUET_TABLES: dict[str, str] = {
    "traces": "SELECT r.* FROM traces r",
    "steps": "SELECT x.*, r.run_id FROM steps x JOIN traces r USING (trace_id)",
    "verdicts": "SELECT x.*, r.run_id FROM verdicts x JOIN traces r USING (trace_id)",
    "violations": "SELECT x.*, r.run_id FROM violations x JOIN traces r USING (trace_id)",
    "faults": "SELECT r.* FROM faults r",
    "decisions": "SELECT r.* FROM decisions r",
}
_PARTITION, _NULL_PARTITION = "run_id=", "__HIVE_DEFAULT_PARTITION__"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _remove_partitions(table_dir: Path, runs: set[str | None]) -> None:
    """Remove the partitions of ``runs`` under ``table_dir`` (None: the partition of NULL run ids).

    DuckDB percent-encodes partition values in directory names (``a/b`` is ``a%2Fb``), so
    a directory is matched by its decoded value.
    """
    if not table_dir.is_dir():
        return
    for entry in table_dir.iterdir():
        if not (entry.name.startswith(_PARTITION) and entry.is_dir()):
            continue
        value = unquote(entry.name[len(_PARTITION):])
        if (None if value == _NULL_PARTITION else value) in runs:
            shutil.rmtree(entry)


def export_parquet(store: Store, directory: str | os.PathLike[str], *, run_id: str | None = None) -> dict[str, int]:
    """Write ``traces``, ``steps``, ``verdicts``, ``violations``, ``faults`` and ``decisions`` as Parquet.

    Each table goes to ``directory/<table>/run_id=<run>/``; the partitions of the exported
    runs are replaced, other runs' are kept.

    Args:
        store: an open store (read-only is enough).
        directory: where the table directories go; created if missing.
        run_id: only this run; default every run.

    Returns:
        The rows written per table, in the order above.

    Raises:
        StoreError: ``run_id`` is not a run of the store, or ``directory`` cannot be written.
    """
    import duckdb

    name = str(directory)
    runs: set[str | None] = {r[0] for r in store.query(
        "SELECT run_id FROM runs UNION SELECT run_id FROM traces")[1]}
    if run_id is not None:
        if run_id not in runs:
            raise StoreError(f"{store.path}: no run {run_id!r} in the store (`mattrace runs` lists them)")
        runs = {run_id}
    con = store.connection
    written: dict[str, int] = {}
    try:
        Path(name).mkdir(parents=True, exist_ok=True)
        for table, select in PARQUET_TABLES.items():
            target = Path(name) / table
            _remove_partitions(target, runs)
            sql = select if run_id is None else f"{select} WHERE r.run_id = ?"
            row = con.execute(f"COPY ({sql}) TO {_literal(str(target))} "
                              "(FORMAT parquet, PARTITION_BY (run_id), OVERWRITE_OR_IGNORE)",
                              None if run_id is None else [run_id]).fetchone()
            written[table] = int(row[0]) if row else 0
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != name else ""
        raise StoreError(f"{name}: cannot write the Parquet export: {exc.strerror or exc}{where}") from None
    except duckdb.Error as exc:
        raise StoreError(f"{name}: cannot write the Parquet export: {str(exc).strip().splitlines()[0]}") from None
    return written
