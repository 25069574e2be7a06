"""What an importer could not map exactly, said in one line with positions.

A log rarely says everything a trace holds: a tool result may name neither its call nor
its tool, a span may be of no kind the converter knows. The importers never drop such a
part; they map it as well as the log allows and mark the step (``attrs``). This module
turns those marks into :class:`ImportGap` records and one sentence, so the library warns
(:class:`~mattrace.errors.ImportGapWarning`) and ``mattrace import`` prints the same
summary and exits 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from mattrace.errors import ImportGapWarning

__all__ = ["collect", "describe_gaps", "GAP_KINDS", "ImportGap", "warn_gaps"]

GAP_KINDS: dict[str, tuple[str, str, str]] = {
    # kind: (the thing, what happened to it, where its positions point)
    "by_position": ("tool result", "matched by position", "message"),
    "no_call": ("tool result", "answering no call imported as its own step", "message"),
    "no_tool_name": ("tool result", "imported as untrusted with no tool name", "message"),
    "unknown_span": ("span", "of no known kind imported as a message step", "step"),
    "span_warning": ("span", "read with a guess, said in the step's mattrace_warning", "step"),
}
"""Every kind of gap, in the order a summary lists them."""


@dataclass(frozen=True)
class ImportGap:
    """One kind of gap in one imported run, and where it is.

    Attributes:
        kind: a key of :data:`GAP_KINDS` (``by_position``, ``no_call``, ``no_tool_name``,
            ``unknown_span``, ``span_warning``).
        positions: message positions in the log (chat logs) or step indices (spans), ascending.
    """

    kind: str
    positions: tuple[int, ...]

    def __str__(self) -> str:
        thing, what, unit = GAP_KINDS[self.kind]
        n = len(self.positions)
        plural = "" if n == 1 else "s"
        where = ", ".join(str(p) for p in self.positions)
        return f"{n} {thing}{plural} {what} ({unit}{plural} {where})"


def collect(found: dict[str, list[int]]) -> tuple[ImportGap, ...]:
    """Gaps from ``kind -> positions``, in :data:`GAP_KINDS` order, empty kinds left out."""
    return tuple(ImportGap(kind, tuple(sorted(found[kind]))) for kind in GAP_KINDS if found.get(kind))


def describe_gaps(gaps: Iterable[ImportGap]) -> str:
    """One line: ``2 tool results matched by position (messages 3, 5); 1 tool result ...``."""
    return "; ".join(str(g) for g in gaps)


def warn_gaps(origin: str, gaps: tuple[ImportGap, ...], *, stacklevel: int = 3) -> None:
    """Warn (:class:`~mattrace.errors.ImportGapWarning`) when ``gaps`` is not empty."""
    if gaps:
        warnings.warn(ImportGapWarning(origin, describe_gaps(gaps), gaps), stacklevel=stacklevel)
