"""Boundary perturbations, applied through the fault injector.

A perturbation of a boundary result (text planted in a document, results reordered or
dropped, a number nudged) is a fault in all but intent, so it rides the same machinery:
it hits the n-th call of one target, it is recorded as a ``fault`` step that the affected
step reads, planted instructions are marked untrusted, and unperturbed calls still replay
from the cassette. These classes are not registered with fault plan files: a search makes
them, people do not write them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mattrace.faults import Fault
from mattrace.recording.interceptors import Call, CallOutcome
from mattrace.search._sites import Item, add_text
from mattrace.trace import StepKind

__all__ = ["DroppedItems", "NudgedNumber", "PlantedDistractor", "PlantedInstruction", "ReorderedItems"]


class _ResultEffect(Fault, register=False):
    """Base: changes a successful read result, leaves errors and memory writes alone."""

    def after(self, call: Call, outcome: CallOutcome, history: list[Any]) -> CallOutcome:
        if outcome.error is not None or call.kind is StepKind.MEMORY_WRITE:
            return outcome
        return CallOutcome(result=self.change(outcome.result))

    def change(self, value: Any) -> Any:
        return value


@dataclass(frozen=True)
class PlantedInstruction(_ResultEffect, register=False):
    """An instruction appended to one item of the result; the item and the step turn untrusted."""

    item: Item = None
    text: str = ""
    name: ClassVar[str] = "injected_instruction"
    untrusted: ClassVar[bool] = True

    def change(self, value: Any) -> Any:
        return add_text(value, self.item, self.text, untrusted=True)


@dataclass(frozen=True)
class PlantedDistractor(_ResultEffect, register=False):
    """Irrelevant text appended to one item of the result (trust unchanged: it asks for nothing)."""

    item: Item = None
    text: str = ""
    name: ClassVar[str] = "distractor"

    def change(self, value: Any) -> Any:
        return add_text(value, self.item, self.text, untrusted=False)


@dataclass(frozen=True)
class ReorderedItems(_ResultEffect, register=False):
    """The result list in another order (``order[i]`` is the old index of the new i-th item)."""

    order: tuple[int, ...] = ()
    name: ClassVar[str] = "reordered"

    def change(self, value: Any) -> Any:
        if not isinstance(value, list) or sorted(self.order) != list(range(len(value))):
            return value   # another length than the canary saw: leave it
        return [value[i] for i in self.order]


@dataclass(frozen=True)
class DroppedItems(_ResultEffect, register=False):
    """The result list without the items at ``indices``."""

    indices: tuple[int, ...] = ()
    name: ClassVar[str] = "dropped"

    def change(self, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        gone = set(self.indices)
        return [v for i, v in enumerate(value) if i not in gone]


def _nudge(value: Any, path: tuple[Item, ...], factor: float) -> Any:
    if not path:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        moved = value * (1 + factor)
        return round(moved) if isinstance(value, int) else round(moved, 6)
    head, rest = path[0], path[1:]
    if isinstance(value, dict) and isinstance(head, str) and head in value:
        return {**value, head: _nudge(value[head], rest, factor)}
    if isinstance(value, list) and isinstance(head, int) and 0 <= head < len(value):
        items = list(value)
        items[head] = _nudge(items[head], rest, factor)
        return items
    return value


@dataclass(frozen=True)
class NudgedNumber(_ResultEffect, register=False):
    """One number in the result scaled by ``1 + factor`` (integers stay integers)."""

    path: tuple[Item, ...] = ()
    factor: float = 0.0
    name: ClassVar[str] = "noise"

    def change(self, value: Any) -> Any:
        return _nudge(value, self.path, self.factor)
