"""GROUP BY for the metric queries: which keys a person may group by, and the SQL they become.

Every grouped query (metrics, compliance, containment, governance) takes ``by`` from a
person (``mattrace metrics --by config.retriever.k``), so the keys are validated and turned
into SQL in this one place: a fixed key is a known column, ``config.<key>`` and
``label.<key>`` become a JSON extraction whose path is quoted and passed as a string
literal, and a group's output name is a quoted identifier. Nothing a person typed reaches
the SQL any other way.

A query gets a :class:`Grouping` from its :class:`GroupKeys` and splices its fragments:
the groups are computed once as ``g0``, ``g1``, … in an inner ``SELECT`` (so a JSON
extraction runs once per row, not once per clause) and carried through by those aliases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mattrace.errors import ReplayMismatch, ReplayRefused, StoreError, UnrecordedCall
from mattrace.store._sql import identifier, json_path, literal
from mattrace.trace import REPLAY_LABEL

__all__ = ["BROKEN_EXPR", "GROUP_KEYS", "METRIC_KEYS", "GroupKeys", "Grouping", "REPLAY_EXPR", "run_filter"]

# key -> column of trace_metrics (and of traces, which has the same names)
_FIXED = {"config": "config_key", "model": "model", "orchestration": "orchestration", "run": "run_id",
          "seed": "seed", "test": "test", "trial": "trial"}
_CONFIG = "config."
_LABEL = "label."
GROUP_KEYS: tuple[str, ...] = (*sorted(_FIXED), "config.<key>", "label.<key>")
"""What every grouped query can group by: the trace's run, test, config and labels."""


def _trace_expr(item: str) -> str | None:
    """The SQL grouping a trace by ``item`` (one of :data:`GROUP_KEYS`), or None for another key.

    A ``config.`` key is a path into the (nested) config, so its dots separate keys; a
    ``label.`` key is one label name, dots and all (labels are flat: ``mattrace.test``).
    """
    if item in _FIXED:
        return _FIXED[item]
    if item.startswith(_CONFIG) and len(item) > len(_CONFIG):
        return f"json_extract_string(config, {literal(json_path(item[len(_CONFIG):].split('.')))})"
    if item.startswith(_LABEL) and len(item) > len(_LABEL):
        return f"json_extract_string(labels, {literal(json_path([item[len(_LABEL):]]))})"
    return None


@dataclass(frozen=True)
class Grouping:
    """The groups of one query: ``(alias, expression)`` pairs and the names they are output under.

    Each property is a SQL fragment to splice into the query; the list fragments end in
    ``", "`` so that they go before the query's own columns, and every fragment is empty
    when there are no groups (one row over everything).
    """

    groups: tuple[tuple[str, str], ...]
    labels: tuple[str, ...]

    @property
    def select(self) -> str:
        """``expr AS g0, …, ``: the inner SELECT's group columns."""
        return "".join(f"{expr} AS {g}, " for g, expr in self.groups)

    @property
    def columns(self) -> str:
        """``g0, g1, …, ``: the groups again, in later SELECT, GROUP BY and ORDER BY lists."""
        return "".join(f"{g}, " for g, _ in self.groups)

    def _clause(self, keyword: str, suffix: str = "") -> str:
        return f"{keyword} {', '.join(g + suffix for g, _ in self.groups)}" if self.groups else ""

    @property
    def group_by(self) -> str:
        """``GROUP BY g0, …``."""
        return self._clause("GROUP BY")

    @property
    def partition_by(self) -> str:
        """``PARTITION BY g0, …``, for a window over each group."""
        return self._clause("PARTITION BY")

    @property
    def order_by(self) -> str:
        """``ORDER BY g0 NULLS LAST, …``: a group without the key (a config lacking it) comes last."""
        return self._clause("ORDER BY", " NULLS LAST")

    @property
    def labelled(self) -> str:
        """``g0 AS "<label>", …, ``: the outer SELECT's group columns under their output names."""
        return "".join(f"{g} AS {identifier(label)}, " for (g, _), label in zip(self.groups, self.labels, strict=True))


@dataclass(frozen=True)
class GroupKeys:
    """What one kind of grouped query can group by: its own keys, then every key of :data:`GROUP_KEYS`.

    Own keys are columns of the query's own rows (a fault's class, a decision's rule); the
    query selects them under ``alias + key`` (:meth:`own_columns`) so that they cannot clash
    with the trace's columns of the same name (``agent``, ``target``, ``run_id``).

    Args:
        what: what the query computes, for errors (``cannot group containment by …``).
        own: the query's own keys, each also the name of its source column.
        alias: the prefix of the own keys' aliases (``f_`` makes ``fault`` ``f_fault``).
    """

    what: str
    own: tuple[str, ...] = ()
    alias: str = ""

    @property
    def valid(self) -> tuple[str, ...]:
        """Every key ``by`` may hold, own keys first (in the order error messages list them)."""
        return (*sorted(self.own), *GROUP_KEYS)

    def expr(self, item: str) -> str:
        """The SQL expression that groups by ``item``.

        Raises:
            StoreError: ``item`` is not one of :attr:`valid` (the message lists them).
        """
        if item in self.own:
            return self.alias + item
        expr = _trace_expr(item)
        if expr is None:
            raise StoreError(f"cannot group {self.what} by {item!r}; valid: {', '.join(self.valid)}")
        return expr

    def own_columns(self, table: str = "") -> str:
        """``<table>.fault AS f_fault, …``: the own keys under their aliases, for the query's inner SELECT."""
        prefix = f"{table}." if table else ""
        return ", ".join(f"{prefix}{key} AS {self.alias}{key}" for key in sorted(self.own))

    def grouping(self, by: Sequence[str], names: Sequence[str] | None = None) -> Grouping:
        """The groups of ``by`` (a key given twice is one group), aliased ``g0``, ``g1``, ….

        ``names`` are the output names of the groups (:attr:`Grouping.labelled`); default
        their aliases.

        Raises:
            StoreError: an item of ``by`` is not one of :attr:`valid`.
        """
        exprs = list(dict.fromkeys(self.expr(item) for item in by))
        groups = tuple((f"g{i}", expr) for i, expr in enumerate(exprs))
        return Grouping(groups, tuple(names) if names else tuple(g for g, _ in groups))


METRIC_KEYS = GroupKeys("metrics")
"""The keys of the metrics and compliance queries: :data:`GROUP_KEYS` alone."""


# the errors a replay breaks off with: a run that met one has no task outcome to count
_REPLAY_ERRORS = ", ".join(literal(cls.__name__) for cls in (ReplayMismatch, ReplayRefused, UnrecordedCall))
REPLAY_EXPR = f"json_extract_string(labels, {literal(json_path([REPLAY_LABEL]))}) IS NOT NULL"
"""SQL over a row with ``labels``: the trace is a replay (answered from a cassette alone)."""
BROKEN_EXPR = f"trace_id IN (SELECT trace_id FROM steps WHERE error_type IN ({_REPLAY_ERRORS}))"
"""SQL over a row with ``trace_id``: the run broke off on a cassette mismatch or a refused value."""


def run_filter(run_id: str | None, *, replays: bool = False) -> str:
    """The ``WHERE`` clause of the traces a metric counts (over rows with ``run_id``, ``labels``, ``trace_id``).

    Replays (:data:`~mattrace.trace.REPLAY_LABEL`) repeat a recorded run: counting them again
    would inflate n and narrow every interval, so they are left out unless ``replays``. A run
    that broke off on a cassette mismatch is never counted: it did not do or fail the task.
    """
    conditions = [f"NOT ({BROKEN_EXPR})"]
    if not replays:
        conditions.append(f"NOT ({REPLAY_EXPR})")
    if run_id is not None:
        conditions.append(f"run_id = {literal(run_id)}")
    return "WHERE " + " AND ".join(conditions)
