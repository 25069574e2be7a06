"""The trace file's records as the store reads and keeps them, derived from the trace model.

Trace files are written from :class:`~mattrace.trace.Step`, :class:`~mattrace.trace.Trace`
and :class:`~mattrace.trace.Outcome`, so the shapes ingest reads them with (``json_transform``
structures) and the ``steps`` table's columns are derived from those models here rather
than restated: a field added to ``Step`` is read and stored without anyone remembering to
list it, where a restated list would drop it silently (``json_transform`` ignores the keys
its structure does not name).

The derivation has two rules and one table. :data:`_TYPES` maps the model's Python types to
DuckDB types, and a field of any other type (a dict, a list of models, ``Any``) is kept as
JSON; a nested model (``Step.error``) is read as a struct and stored as one column per
field (``error_type``, ``error_message``). A typed column fills in its field's default,
since a file leaves defaults out (an ``agent`` absent from the file is ``main``); a JSON
column keeps NULL for "not recorded". :data:`_STORED` lists every place where the ``steps``
table differs from the model on purpose: a renamed column, a narrower type, and the
columns derived for queries (``untrusted``, and ``model``, ``tokens``, ``cost_usd`` from
``attrs``).

Inserts into ``steps`` are positional and a migration adds a column at the end of its
table, so a new ``Step`` field belongs at the end of the model (with a migration adding its
column); one placed earlier would shift the columns of a new store against a migrated one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from mattrace.store._sql import Structure, literal
from mattrace.trace import Outcome, Step, Trace

__all__ = ["ATTRS", "HEADER_RECORD", "SEAL_RECORD", "STEP_COLUMNS", "STEP_RECORD", "Column", "structure"]

# The model's Python types as DuckDB types: the one place they are mapped.
_TYPES: dict[Any, str] = {str: "VARCHAR", int: "BIGINT", bool: "BOOLEAN", float: "DOUBLE"}
_JSON = "JSON"


@dataclass(frozen=True)
class Column:
    """A column of ``steps``: its name, DuckDB type, and the SQL that fills it at ingest.

    ``value`` is an expression over ``trace_id``, ``s`` (the step as :data:`STEP_RECORD`
    reads it) and ``a`` (the :data:`ATTRS` list).
    """

    name: str
    type: str
    value: str


def _bare(annotation: Any) -> Any:
    """``annotation`` without ``| None`` (a field that may be absent is read the same way)."""
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not NoneType]
        if len(args) == 1:
            return args[0]
    return annotation


def structure(annotation: Any) -> Structure:
    """How ``json_transform`` reads a value of ``annotation``: a DuckDB type, or a struct for a model.

    A string enum or a ``Literal`` of strings is text; a type :data:`_TYPES` does not map is
    read as JSON.
    """
    bare = _bare(annotation)
    if isinstance(bare, type) and issubclass(bare, BaseModel):
        return {name: structure(f.annotation) for name, f in bare.model_fields.items()}
    if isinstance(bare, type) and issubclass(bare, StrEnum):
        return _TYPES[str]
    if get_origin(bare) is Literal and all(isinstance(a, str) for a in get_args(bare)):
        return _TYPES[str]
    return _TYPES.get(bare, _JSON)


def _default_sql(value: Any) -> str:
    """A field's default as a SQL literal (the defaults of typed columns: text and flags so far)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return literal(value)
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"no SQL literal for the default {value!r}; say how to store the field in _STORED")


def _own(field: str) -> tuple[Column, ...]:
    """The column(s) a ``Step`` field is stored in by the rules alone: its name, its type, its default."""
    info = Step.model_fields[field]
    read = structure(info.annotation)
    if isinstance(read, dict):   # a nested model: one column per field, as error_type, error_message
        return tuple(Column(f"{field}_{sub}", str(kind), f"s.{field}.{sub}") for sub, kind in read.items())
    value = f"s.{field}"
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    if default is not None and read != _JSON:
        value = f"coalesce({value}, {_default_sql(default)})"
    return (Column(field, str(read), value),)


# attrs values that have columns of their own, extracted once per step into the list `a`
_ATTR_PATHS = ("$.model", "$.tokens.total", "$.tokens.prompt", "$.tokens.completion", "$.cost_usd")
ATTRS = (f"CASE WHEN s.attrs IS NOT NULL THEN json_extract_string(s.attrs, "
         f"[{', '.join(literal(p) for p in _ATTR_PATHS)}]) END")
"""The SQL of the list ``a``: the attrs values that :data:`STEP_COLUMNS` type (NULL without attrs)."""


def _attr(path: str) -> str:
    return f"a[{_ATTR_PATHS.index(path) + 1}]"


_OWN = None   # in _STORED: the field's own column(s), by the rules


@dataclass(frozen=True)
class _Stored:
    """How ``steps`` keeps a field otherwise than by the rules: its columns (``_OWN`` among them), its read type."""

    columns: tuple[Column | None, ...]
    read: Structure | None = None


# Where the steps table differs from Step, field by field; every other field is stored by the rules.
_STORED: dict[str, _Stored] = {
    # `index` is a SQL keyword; a step number is an INTEGER in every table that names a step
    "index": _Stored((Column("idx", "INTEGER", "s.index"),)),
    # step numbers too, in a typed list that the taint query unnests (JSON by the rules)
    "reads": _Stored((Column("reads", "INTEGER[]", "coalesce(s.reads, [])"),), read=["INTEGER"]),
    # Step.untrusted, so that queries need not parse the sources
    "side_effect": _Stored((_OWN, Column("untrusted", "BOOLEAN",
                                         "coalesce(contains(s.sources::VARCHAR, '\"trusted\":false'), false)"))),
    # the attrs the metrics add up, typed once at ingest (tokens: the total, else prompt + completion)
    "attrs": _Stored((
        Column("model", "VARCHAR", _attr("$.model")),
        Column("tokens", "BIGINT", f"coalesce(TRY_CAST({_attr('$.tokens.total')} AS BIGINT), "
                                   f"TRY_CAST({_attr('$.tokens.prompt')} AS BIGINT) + "
                                   f"TRY_CAST({_attr('$.tokens.completion')} AS BIGINT))"),
        Column("cost_usd", "DOUBLE", f"TRY_CAST({_attr('$.cost_usd')} AS DOUBLE)"),
        _OWN)),
}
# which trace a step belongs to: the first column, though no Step field (the file's header says it)
_TRACE_ID = Column("trace_id", "VARCHAR", "trace_id")


def _step_columns() -> tuple[Column, ...]:
    """Every column of ``steps`` in order: the trace id, then each field's column(s) in the model's order."""
    columns = [_TRACE_ID]
    for field in Step.model_fields:
        for column in _STORED.get(field, _Stored((_OWN,))).columns:
            columns.extend(_own(field) if column is _OWN else (column,))
    return tuple(columns)


def _step_record() -> Structure:
    """How ingest reads a step line (``{"step": {...}}``): each field as its type maps, or as :data:`_STORED` says."""
    fields: dict[str, Structure] = {}
    for field, info in Step.model_fields.items():
        read = _STORED[field].read if field in _STORED else None
        fields[field] = structure(info.annotation) if read is None else read
    return {"step": fields}


STEP_COLUMNS = _step_columns()
"""The columns of ``steps``, in order."""
STEP_RECORD = _step_record()
"""How ingest reads a step line."""

# the header carries the trace's metadata; its steps and outcome follow as step lines and the seal
_NOT_IN_HEADER = ("steps", "outcome")
HEADER_RECORD: Structure = {"version": _TYPES[int], "trace": {
    field: structure(info.annotation) for field, info in Trace.model_fields.items() if field not in _NOT_IN_HEADER}}
"""How ingest reads a header line (the format version and :meth:`~mattrace.trace.Trace.header_dict`)."""

SEAL_RECORD: Structure = {"steps": _TYPES[int], "outcome": structure(Outcome)}
"""How ingest reads a seal line (the step count and the :class:`~mattrace.trace.Outcome`)."""
