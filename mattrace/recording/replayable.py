"""What the program itself says replay may run or rebuild: entry points and value classes.

A trace names its entry point and a cassette names the classes of its values as
``module:qualname`` strings. Those strings are data, possibly from someone else's branch,
so replay never resolves them on its own (importing a module runs its code; calling a
named callable runs anything). Instead the program registers what may be replayed, with
an explicit call when its own code is imported: ``@mattrace.replayable`` on a function or
a class, and ``@mattrace.record`` on a function (a recorded function is an entry point by
construction). Replay then looks names up in this registry and nowhere else, unless the
user allows more (``--entrypoint``, ``--allow-module``; see :mod:`mattrace.replay`).

The registry is per process and grows only; registering is thread-safe (a dict store).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from mattrace.errors import RecordingError

__all__ = ["qualified_name", "register_recorded", "registered_entrypoint", "registered_type", "replayable"]

_T = TypeVar("_T")

_ENTRYPOINTS: dict[str, Callable[..., Any]] = {}
_TYPES: dict[str, type] = {}


def qualified_name(obj: Any) -> str:
    """``module:qualname``: how traces and cassettes name a function or a class."""
    return f"{obj.__module__}:{obj.__qualname__}"


def _nameable(obj: Any) -> bool:
    qualname = getattr(obj, "__qualname__", "")
    return bool(getattr(obj, "__module__", None)) and "<" not in qualname and obj.__module__ != "__main__"


def replayable(obj: _T) -> _T:
    """Let replay use ``obj``: a function as an entry point, a class for recorded values.

    A function decorated with it may be re-run by ``mattrace replay`` from a trace that
    names it; a dataclass or pydantic model may be rebuilt from a cassette value that names
    it; an exception class is rebuilt as itself (without its ``__init__``). Returns ``obj``
    unchanged, so it stacks with other decorators (put it outermost over ``@dataclass``).

    Raises:
        RecordingError: ``obj`` cannot be named from a file (a local function, ``__main__``),
            or is neither a function nor a dataclass, pydantic model or exception class.
    """
    if isinstance(obj, type):
        if not (dataclasses.is_dataclass(obj) or issubclass(obj, BaseModel | BaseException)):
            raise RecordingError(f"replayable({obj.__qualname__}): replay rebuilds only a dataclass, a pydantic "
                                 "model or an exception class")
        if not _nameable(obj):
            raise RecordingError(f"replayable({obj.__qualname__}): define the class at module level in an "
                                 "importable module, so a cassette can name it")
        _TYPES[qualified_name(obj)] = obj
        return obj
    if not callable(obj) or not hasattr(obj, "__qualname__"):
        raise RecordingError(f"replayable() takes a function or a class, got {obj!r}")
    if not _nameable(obj):
        raise RecordingError(f"replayable({obj.__qualname__}): define the function at module level in an "
                             "importable module, so a trace can name it as its entry point")
    _ENTRYPOINTS[qualified_name(obj)] = obj
    return obj


def register_recorded(fn: Callable[..., Any]) -> None:
    """Register a ``@record`` function as an entry point (a nested one cannot be named: skipped)."""
    if _nameable(fn):
        _ENTRYPOINTS[qualified_name(fn)] = fn


def registered_entrypoint(target: str) -> Callable[..., Any] | None:
    """The function registered under ``module:qualname``, if the program registered one."""
    return _ENTRYPOINTS.get(target)


def registered_type(target: str) -> type | None:
    """The class registered under ``module:qualname``, if the program registered one."""
    return _TYPES.get(target)
