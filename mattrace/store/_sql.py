"""SQL building blocks shared by ingest and metrics: literals, JSON structures, bulk rows.

Rows that come from Python (headers, verdicts, runs) enter DuckDB as *one* JSON
parameter unpacked by ``from_json``: ``executemany`` loads about 3k rows/s, a JSON
parameter hundreds of thousands, and pyarrow/pandas are not dependencies.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

__all__ = ["identifier", "json_path", "literal", "load_rows", "sql_type"]

Structure = str | list[Any] | dict[str, Any]


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier (a column named after what a person typed, quotes and all)."""
    return '"' + name.replace('"', '""') + '"'


def sql_type(structure: Structure) -> str:
    """The DuckDB type of a ``json_transform`` structure (``{"a": "BIGINT"}`` → ``STRUCT("a" BIGINT)``)."""
    if isinstance(structure, dict):
        fields = ", ".join(f'"{name}" {sql_type(sub)}' for name, sub in structure.items())
        return f"STRUCT({fields})"
    if isinstance(structure, list):
        return f"{sql_type(structure[0])}[]"
    return structure


def json_path(keys: list[str]) -> str:
    """A JSON path reaching ``keys`` in turn, each quoted (keys may hold dots or spaces)."""
    return "$" + "".join("." + json.dumps(key) for key in keys)


def load_rows(con: DuckDBPyConnection, table: str, columns: dict[str, Structure],
              rows: list[dict[str, Any]]) -> None:
    """Create temp table ``table`` holding ``rows`` (dicts keyed by ``columns``' names)."""
    structure = literal(json.dumps([columns]))
    names = ", ".join(f'r."{name}" AS "{name}"' for name in columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {names} "
                f"FROM (SELECT unnest(from_json(?, {structure})) AS r)", [json.dumps(rows, default=str)])
