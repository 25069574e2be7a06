"""Where a run can be perturbed: the boundary calls it made, and what their results held.

A search does not guess where to plant text. One unperturbed *canary* run records every
tool, retrieval and memory-read call (the n-th call of each target) and the shape of its
result: a list of n items, a dict with text fields, a text, numbers. The canary also
appends a unique marker to every text it can reach and notes which markers turn up in an
LLM prompt or an action's arguments: those are the *reachable* points. Injection then
aims only at reachable points, which is both cheaper and honest (text no model ever
reads cannot mislead one).
"""

from __future__ import annotations

import glob
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mattrace.faults import Fault, Target
from mattrace.provenance import text_leaves
from mattrace.recording.boundaries import Doc
from mattrace.recording.interceptors import Call, CallOutcome
from mattrace.trace import StepKind, Trace

__all__ = ["CallSite", "Point", "Sites", "canary_faults", "read_canary", "site_kind"]

_FAMILY: dict[StepKind, str] = {StepKind.TOOL: "tool", StepKind.RETRIEVAL: "retrieval",
                                StepKind.MEMORY_READ: "memory", StepKind.MEMORY_WRITE: "memory"}
_STEP_KIND: dict[str, StepKind] = {"tool": StepKind.TOOL, "retrieval": StepKind.RETRIEVAL,
                                   "memory": StepKind.MEMORY_READ}
_MARKER = re.compile(r"\[\[mt(\d{4,})\]\]")

Item = int | str | None
"""Which part of a result: a list index, a dict key, or None for the whole text."""


def site_kind(kind: str) -> StepKind:
    """The step kind a site family reads as (``memory`` sites are memory reads)."""
    return _STEP_KIND[kind]


@dataclass(frozen=True)
class Point:
    """One place text can be planted: an item of the result of the ``call``-th call of a target."""

    kind: str
    target: str
    call: int
    item: Item = None

    def pattern(self) -> str:
        """The fault target that hits exactly this boundary."""
        return f"{self.kind}:{glob.escape(self.target)}"

    def sort_key(self) -> tuple[str, str, int, int, str]:
        item = self.item
        return (self.kind, self.target, self.call, item if isinstance(item, int) else -1,
                item if isinstance(item, str) else "")

    def __str__(self) -> str:
        where = f"{self.kind}:{self.target} call {self.call}"
        if isinstance(self.item, int):
            return f"{where} item {self.item}"
        if isinstance(self.item, str):
            return f"{where} field {self.item!r}"
        return where


@dataclass(frozen=True)
class CallSite:
    """One boundary call of the canary run and the shape of what it returned."""

    kind: str
    target: str
    call: int
    length: int | None = None
    """Items in the result, when it was a list (reorder and drop work on these)."""
    numbers: tuple[tuple[Item, ...], ...] = ()
    """Paths to the numbers in the result (noise works on these)."""
    points: tuple[Point, ...] = ()
    """Where text can be planted in the result."""

    def pattern(self) -> str:
        return f"{self.kind}:{glob.escape(self.target)}"

    def __str__(self) -> str:
        return f"{self.kind}:{self.target} call {self.call}"


@dataclass(frozen=True)
class Sites:
    """What the canary run found: every call site, and the points whose text reached a model."""

    calls: tuple[CallSite, ...] = ()
    reachable: frozenset[Point] = frozenset()

    def matching(self, target: Target) -> tuple[CallSite, ...]:
        return tuple(c for c in self.calls if target.matches(site_kind(c.kind), c.target))

    def points(self, target: Target, reachable_only: bool) -> tuple[Point, ...]:
        found = [p for c in self.matching(target) for p in c.points
                 if not reachable_only or p in self.reachable]
        return tuple(sorted(found, key=Point.sort_key))

    def summary(self) -> str:
        points = sum(len(c.points) for c in self.calls)
        return (f"{len(self.calls)} boundary call(s), {points} point(s) that can carry text, "
                f"{len(self.reachable)} of them reaching an LLM prompt or an action")


# -- the shape of a result -------------------------------------------------------------------------


def _numbers(value: Any, path: tuple[Item, ...] = (), depth: int = 0) -> list[tuple[Item, ...]]:
    if isinstance(value, bool) or depth > 3:
        return []
    if isinstance(value, int | float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() if isinstance(k, str) for p in _numbers(v, (*path, k), depth + 1)]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _numbers(v, (*path, i), depth + 1)]
    return []


def _text_items(value: Any) -> list[Item]:
    if isinstance(value, str):
        return [None]
    if isinstance(value, list):
        return [i for i, v in enumerate(value) if isinstance(v, str | dict | Doc)]
    if isinstance(value, dict):
        return [k for k, v in value.items() if isinstance(k, str) and isinstance(v, str)]
    return []


def add_text(value: Any, item: Item, text: str, *, untrusted: bool) -> Any:
    """``value`` with ``text`` appended to its ``item`` (unchanged if the item is not there)."""
    if item is None:
        return f"{value}\n{text}" if isinstance(value, str) else value
    if isinstance(value, list) and isinstance(item, int) and 0 <= item < len(value):
        items = list(value)
        items[item] = _add_to_item(items[item], text, untrusted)
        return items
    if isinstance(value, dict) and isinstance(item, str) and isinstance(value.get(item), str):
        return {**value, item: f"{value[item]}\n{text}"}
    return value


def _add_to_item(item: Any, text: str, untrusted: bool) -> Any:
    if isinstance(item, Doc):
        update: dict[str, Any] = {"text": f"{item.text}\n{text}"}
        if untrusted:
            update["trusted"] = False
        return item.model_copy(update=update)
    if isinstance(item, str):
        return f"{item}\n{text}"
    if isinstance(item, dict):
        key = next((k for k in ("text", "content", "body", "snippet") if isinstance(item.get(k), str)),
                   next((k for k, v in item.items() if isinstance(v, str)), None))
        if key is None:
            return item
        changed = {**item, key: f"{item[key]}\n{text}"}
        if untrusted and "trusted" in item:
            changed["trusted"] = False
        return changed
    return item


# -- the canary -------------------------------------------------------------------------------------


@dataclass
class _CanaryLog:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    calls: list[CallSite] = field(default_factory=list)
    markers: dict[str, Point] = field(default_factory=dict)


@dataclass(frozen=True)
class _Canary(Fault, register=False):
    """Plants a unique marker in every text of every result, and notes the call's shape."""

    _log: _CanaryLog = field(default_factory=_CanaryLog, compare=False, hash=False, repr=False)
    name: ClassVar[str] = "canary"

    def after(self, call: Call, outcome: CallOutcome, history: list[Any]) -> CallOutcome:
        family = _FAMILY.get(call.kind)
        if family is None:
            return outcome
        with self._log.lock:
            self._log.counts[(family, call.target)] += 1
            n = self._log.counts[(family, call.target)]
            if call.kind is StepKind.MEMORY_WRITE or outcome.error is not None:
                return outcome
            value = outcome.result
            points = tuple(Point(family, call.target, n, item) for item in _text_items(value))
            length = len(value) if isinstance(value, list) else None
            self._log.calls.append(CallSite(family, call.target, n, length, tuple(_numbers(value)), points))
            for point in points:
                marker = f"[[mt{len(self._log.markers):04d}]]"
                self._log.markers[marker] = point
                value = add_text(value, point.item, marker, untrusted=False)
        return CallOutcome(result=value)


def canary_faults() -> tuple[_CanaryLog, list[Fault]]:
    """The faults that make a run a canary run, and the log they fill."""
    log = _CanaryLog()
    # memory writes are counted too, so call numbers agree with a fault on ``memory:key``
    return log, [_Canary(f"{family}:*", _log=log) for family in ("tool", "retrieval", "memory")]


def read_canary(log: _CanaryLog, trace: Trace) -> Sites:
    """Which planted markers reached an LLM prompt or a side effect's arguments."""
    reached: set[Point] = set()
    for step in trace.steps:
        if step.kind is StepKind.LLM or step.side_effect:
            for text in text_leaves(step.args or {}):
                for number in _MARKER.findall(text):
                    point = log.markers.get(f"[[mt{number}]]")
                    if point is not None:
                        reached.add(point)
    return Sites(tuple(log.calls), frozenset(reached))
