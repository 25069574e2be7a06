"""Old import paths that still work: a module that moved leaves a small alias behind.

Users wrote ``from mattrace.recording.otel import MatSpanProcessor`` before the adapters
moved to ``mattrace.integrations``. An alias module calls :func:`alias` at import: it warns
once with a :class:`DeprecationWarning` naming the new path, and puts the new module in
its place in ``sys.modules``, so the old name *is* the new module (monkeypatching either
name patches both). The new module is named by a string, so an alias never adds an import
edge between layers.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["alias", "moved_names"]


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside the import machinery (importlib and any
    loader's ``exec_module``, pytest's included) and the alias itself, so the warning points
    at the user's ``import`` line."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and _importing(frame):
        frame = frame.f_back  # type: ignore[assignment]
        # warnings.warn skips importlib's bootstrap frames when it counts, so they don't count
        if frame is not None and not frame.f_code.co_filename.startswith("<frozen importlib"):
            level += 1
    return level


def _importing(frame: FrameType) -> bool:
    code = frame.f_code
    return (code.co_filename.startswith("<frozen importlib") or code.co_name == "exec_module"
            or frame.f_globals.get("__name__") in (__name__, "importlib")
            or bool(frame.f_globals.get("__alias__")))


def alias(old: str, new: str) -> None:
    """Make the module ``old`` (being imported) an alias of ``new``, with a deprecation warning."""
    warnings.warn(f"{old} moved to {new}; import it from there (the old path will be removed)",
                  DeprecationWarning, stacklevel=_caller_level())
    sys.modules[old] = importlib.import_module(new)


def moved_names(module: str, moved: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names that left ``module``: each named in ``moved`` (name ->
    its new module) still resolves, with a DeprecationWarning naming the new home."""

    def __getattr__(name: str) -> Any:
        if name in moved:
            warnings.warn(f"{module}.{name} moved to {moved[name]}.{name}", DeprecationWarning, stacklevel=2)
            return getattr(importlib.import_module(moved[name]), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
