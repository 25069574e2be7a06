"""Saving and restoring a bound evaluator's state: how a guard judges a step without committing it.

A guard judges an action on the run so far before the action runs; the action may be
blocked, so the monitors must not keep it. Copying every monitor for every action costs a
copy of the run; instead the stateful evaluators (``once``, ``since``, ``flows``, the
connectives over them) save their few fields with ``snapshot()`` and put them back with
``restore(state)``, and the analyses they hold undo what one step added.
"""

from __future__ import annotations

from collections.abc import Callable
from types import BuiltinFunctionType, FunctionType
from typing import Any

from mattrace.trace import Step

__all__ = ["NO_SNAPSHOT", "restore", "restore_all", "snapshot", "snapshot_all"]

Evaluator = Callable[[Step], bool]


NO_SNAPSHOT: Any = None
"""What :func:`snapshot` returns for an evaluator that cannot be put back cheaply."""


def snapshot(evaluator: Evaluator) -> Any:
    """The state a bound evaluator needs to be put back as it is now, for :func:`restore`.

    A guard judges an action on the run so far without committing it: it snapshots the
    monitors, feeds them the action, and restores them. That must cost a few attribute
    reads, not a copy of the run, so the stateful evaluators (``once``, ``since``,
    ``flows``, the combinators over them) define ``snapshot()`` and ``restore(state)``
    over their small state, and the analyses they hold undo what one step added.

    A plain function is stateless here (``()``), as ``copy.deepcopy`` also takes it to be.
    Any other callable without ``snapshot`` gives :data:`NO_SNAPSHOT` (None): the caller
    then judges a deep copy instead, as before.
    """
    if type(evaluator) is FunctionType:   # the common case, a leaf or a connective of leaves
        return ()
    save = getattr(evaluator, "snapshot", None)
    if save is not None:
        return save()
    if isinstance(evaluator, FunctionType | BuiltinFunctionType):
        return ()
    return NO_SNAPSHOT


def restore(evaluator: Evaluator, state: Any) -> None:
    """Put a bound evaluator back to what :func:`snapshot` returned (a function: nothing to do)."""
    if state != ():
        evaluator.restore(state)  # type: ignore[attr-defined]


def snapshot_all(*evaluators: Evaluator) -> tuple[Any, ...] | None:
    """The snapshots of several evaluators, or None when one of them cannot be snapshot.

    A snapshot may open an undo journal; when a later operand fails, the ones already
    taken are restored, so a failed attempt leaves every evaluator as it was.
    """
    states: list[Any] = []
    for ev in evaluators:
        state = snapshot(ev)
        if state is None:
            for done, taken in zip(reversed(evaluators[:len(states)]), reversed(states), strict=True):
                restore(done, taken)
            return None
        states.append(state)
    return tuple(states)


def restore_all(evaluators: tuple[Evaluator, ...], states: tuple[Any, ...]) -> None:
    """Put several evaluators back from :func:`snapshot_all` (in reverse: undo is last-in first-out)."""
    for ev, state in zip(reversed(evaluators), reversed(states), strict=True):
        restore(ev, state)
