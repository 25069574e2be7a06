"""Fault targets: ``kind:name`` patterns over boundary calls (``tool:search``, ``memory:user_*``).

The kind is one of ``tool``, ``retrieval``, ``memory``, ``llm`` or ``*``; the name is a
glob over the tool, index, memory key or model. A pattern is checked when the fault is
made, so a typo fails where the plan is written, not silently never fires.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from mattrace.errors import FaultSpecError
from mattrace.trace import StepKind

__all__ = ["Target", "parse_target"]

_KINDS: dict[str, frozenset[StepKind]] = {
    "tool": frozenset({StepKind.TOOL}),
    "retrieval": frozenset({StepKind.RETRIEVAL}),
    "memory": frozenset({StepKind.MEMORY_READ, StepKind.MEMORY_WRITE}),
    "llm": frozenset({StepKind.LLM}),
    "*": frozenset({StepKind.TOOL, StepKind.RETRIEVAL, StepKind.MEMORY_READ, StepKind.MEMORY_WRITE,
                    StepKind.LLM}),
}


@dataclass(frozen=True)
class Target:
    """A parsed ``kind:name`` pattern."""

    kind: str
    name: str
    _regex: re.Pattern[str]

    def matches(self, kind: StepKind, name: str) -> bool:
        return kind in _KINDS[self.kind] and self._regex.fullmatch(name) is not None

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def parse_target(pattern: str) -> Target:
    """Parse ``kind:glob``; a bare ``*`` means every boundary.

    Raises:
        FaultSpecError: not ``kind:name``, or an unknown kind.
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise FaultSpecError(f"fault target {pattern!r}: expected kind:name, e.g. tool:search or retrieval:*")
    if pattern.strip() == "*":
        pattern = "*:*"
    kind, colon, name = pattern.strip().partition(":")
    if not colon or not name:
        raise FaultSpecError(f"fault target {pattern!r}: expected kind:name, e.g. tool:search or retrieval:*")
    if kind not in _KINDS:
        raise FaultSpecError(f"fault target {pattern!r}: unknown kind {kind!r}; "
                             f"expected one of {', '.join(sorted(_KINDS))}")
    return Target(kind, name, re.compile(fnmatch.translate(name)))
