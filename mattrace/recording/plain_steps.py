"""The steps a recorder keeps in memory for what it has just written, built cheaply, and
the ones it reads back from its file once they have left memory.

A step of plain values is written as encoded; the :class:`~mattrace.trace.Step` kept for it
must be what the file says (not the caller's objects, which it may still change) without
paying for a parse and a validation per step. These helpers make that step. A recorder
that keeps its trace in memory only writes to a :class:`MemoryOnlyWriter`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from mattrace.errors import RecordingError
from mattrace.trace import FLOAT_FREE_TYPES, Outcome, Source, Step, StepKind

__all__ = ["KIND_VALUE", "MemoryOnlyWriter", "flat_copies", "read_back", "recorded_step", "step_json"]

KIND_VALUE = {kind: kind.value for kind in StepKind}
"""Each kind's JSON value (``StepKind.value`` goes through the enum machinery each time)."""


def recorded_step(index: int, kind: StepKind, agent: str, target: str | None, content: str | None,
                   values: tuple[Any, Any, dict[str, Any]], sources: tuple[Source, ...], reads: tuple[int, ...],
                   side_effect: bool, t_start: int, t_end: int) -> Step:
    """A :class:`Step` of what the recorder just wrote, without validating again what it checked.

    ``values`` (args, result, attrs) are copies equal to the parse of the line written, never
    the caller's objects, which it may still change: the step in memory is what the file says.
    """
    step = _new_step(Step)
    args, result, attrs = values
    _set(step, "__dict__", {"index": index, "kind": kind, "agent": agent, "target": target, "content": content,
                            "args": args, "result": result, "error": None, "sources": sources, "reads": reads,
                            "side_effect": side_effect, "attrs": attrs, "t_start": t_start, "t_end": t_end})
    _set(step, "__pydantic_fields_set__", set(_FIELDS))
    _set(step, "__pydantic_extra__", None)
    _set(step, "__pydantic_private__", None)
    return step


_new_step = Step.__new__
_set = object.__setattr__
_FIELDS = frozenset(Step.model_fields)


_SCALARS = FLOAT_FREE_TYPES | {float}


def _flat(value: Any) -> tuple[Any, bool]:
    """A copy of ``value`` equal to the parse of its JSON, when that is cheap to be sure of (a
    scalar, or a dict or list of scalars of exactly those types), else ``_NOT_FLAT``; and
    whether it holds no float."""
    kind = type(value)
    if kind in FLOAT_FREE_TYPES:
        return value, True
    if kind is float:
        return value, False
    if kind is dict:
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        return _NOT_FLAT, False
    # map(type, ...) in C: a third of a generator's cost; a second pass only where a value is no plain scalar
    if FLOAT_FREE_TYPES.issuperset(map(type, items)):
        return (dict(value) if kind is dict else list(value)), True
    if _SCALARS.issuperset(map(type, items)):
        return (dict(value) if kind is dict else list(value)), False
    return _NOT_FLAT, False


_NOT_FLAT = object()


def flat_copies(args: dict[str, Any] | None, result: Any,
                 attrs: dict[str, Any] | None) -> tuple[tuple[Any, Any, dict[str, Any]], bool] | None:
    """Copies of a step's args, result and attrs equal to the parse of the line they are
    encoded into, so that nothing the caller holds is shared, and whether they hold no float
    (their line then needs no check of float notation); or None when only parsing the line
    back gives such copies (nested containers). The common flat step skips the parse."""
    args_copy, args_exact = _flat(args)
    result_copy, result_exact = _flat(result)
    attrs_copy, attrs_exact = _flat(attrs) if attrs else ({}, True)
    if args_copy is _NOT_FLAT or result_copy is _NOT_FLAT or attrs_copy is _NOT_FLAT:
        return None
    return (args_copy, result_copy, attrs_copy), args_exact and result_exact and attrs_exact


def step_json(index: int, kind: StepKind, agent: str, target: str | None, content: str | None,
              args: dict[str, Any] | None, result: Any, sources: list[dict[str, Any]], reads: tuple[int, ...],
              side_effect: bool, attrs: dict[str, Any] | None, t_start: int, t_end: int) -> dict[str, Any]:
    """The step's JSON as :meth:`Step.to_json_dict` gives it (fields at their defaults left out),
    built from the recorder's checked values without making the :class:`Step` first."""
    data: dict[str, Any] = {"index": index, "kind": KIND_VALUE[kind]}
    if agent != "main":
        data["agent"] = agent
    if target is not None:
        data["target"] = target
    if content is not None:
        data["content"] = content
    if args is not None:
        data["args"] = args
    if result is not None:
        data["result"] = result
    if sources:
        data["sources"] = sources
    if reads:
        data["reads"] = list(reads)
    if side_effect:
        data["side_effect"] = True
    if attrs:
        data["attrs"] = attrs
    data["t_start"], data["t_end"] = t_start, t_end
    return data


def read_back(path: Path, start: int, begin: int, end: int) -> list[Step]:
    """The steps from ``start`` whose lines fill bytes ``begin:end`` of a running recorder's file
    (they left its memory; the file holds them). Reads only those lines, so a consumer a little
    behind (a governor between actions) pays for what it missed, not for the whole run.

    Raises:
        RecordingError: a line does not parse back as the step it was written as.
    """
    with open(path, "rb") as file:
        file.seek(begin)
        data = file.read(end - begin)
    steps = []
    for index, line in enumerate(data.split(b"\n")[:-1], start):
        try:
            step: Step | None = Step.model_validate(orjson.loads(line)["step"])
        except (ValueError, KeyError, TypeError, ValidationError):
            step = None
        if step is None or step.index != index:
            raise RecordingError(f"{path}: step {index} does not read back as it was written: "
                                 "the file was changed while the run was recording it")
        steps.append(step)
    return steps


class MemoryOnlyWriter:
    """Stands in for the trace file when a recorder keeps its trace in memory only."""

    def write_step(self, step: Step) -> None:
        pass

    def write_step_record(self, index: int, body: bytes) -> None:
        pass

    size = 0

    def seal(self, outcome: Outcome | None) -> None:
        pass

    def close(self) -> None:
        pass
