"""Boundary calls no run can claim while a governed run is open: refused, or given to the only one.

The run a call belongs to is found through a ContextVar (:mod:`~mattrace.recording.context`).
A ``threading.Thread`` or a ``ThreadPoolExecutor`` worker started without copying the
context does not inherit it, so a boundary call made there finds no recorder. Outside any
governed run that is as it always was: the call runs, unrecorded. But while a run with a
governor is open, running it would let any code bypass every rule of that governor by
moving the call into a thread. So, fail-closed:

* a side-effecting call (a ``side_effect=True`` tool, a memory write) that no run can claim
  is refused with :class:`~mattrace.errors.UnattributedAction`, whose message says how to
  carry the context into the thread, and the refusal is recorded in every governed run open
  (the governor records it as a ``governance`` step with rule ``unattributed``, and in its
  audit log);
* a call without side effects runs unrecorded, as before;
* a governor built with ``unattributed="attribute"`` instead takes every such call into its
  run, as if the context had been propagated, when its run is the only governed run open;
  with two or more open nobody can tell which run the thread works for, and the side effect
  is refused.

A recorder registers here when it is created with a governor and leaves when it closes.
The check costs a dictionary lookup on calls made outside any run, and nothing inside one.
Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mattrace.errors import RecordingError, UnattributedAction
from mattrace.recording.context import _recorder
from mattrace.recording.interceptors import Call
from mattrace.trace import StepKind

if TYPE_CHECKING:
    from mattrace.recording.recorder import Recorder

__all__ = ["attributed_to", "claim", "close_governed", "governed_runs_open", "open_governed", "POLICIES"]

POLICIES = ("refuse", "attribute")
"""What a governor does with calls no run can claim: refuse side effects, or attribute to its run."""

_lock = threading.Lock()
_open: dict[int, tuple[Recorder, Any]] = {}   # id(recorder) -> (recorder, its governor), oldest first


def open_governed(rec: Recorder, governor: Any) -> None:
    """Count ``rec`` as an open governed run until :func:`close_governed`."""
    with _lock:
        _open[id(rec)] = (rec, governor)


def close_governed(rec: Recorder) -> None:
    """``rec`` ended: it governs calls no more. Idempotent."""
    with _lock:
        _open.pop(id(rec), None)


def governed_runs_open() -> bool:
    """Whether any governed run is open in this process (the cheap test before :func:`claim`)."""
    return bool(_open)


def _policy(governor: Any) -> str:
    policy = getattr(governor, "unattributed", "refuse")
    return policy if policy in POLICIES else "refuse"


def claim(call: Call) -> Recorder | None:
    """The run a call made outside any ``record()`` block joins, or None to run it unrecorded.

    Raises:
        UnattributedAction: ``call`` is a side effect and no single run may take it; the
            refusal has been recorded in every governed run open.
    """
    with _lock:
        runs = list(_open.values())
    if not runs:
        return None
    call.unattributed = True
    if len(runs) == 1 and _policy(runs[0][1]) == "attribute":
        call.attrs["unattributed"] = True
        return runs[0][0]
    if not (call.side_effect or call.kind is StepKind.MEMORY_WRITE):
        return None
    reason = _reason(call, [rec for rec, _ in runs])
    for rec, governor in runs:
        _record_refusal(rec, governor, call, reason)
    raise UnattributedAction(reason)


@contextmanager
def attributed_to(rec: Recorder) -> Iterator[Recorder]:
    """Make ``rec`` the active run for the duration of a claimed call (its governor looks it up)."""
    token = _recorder.set(rec)
    try:
        yield rec
    finally:
        _recorder.reset(token)


def _reason(call: Call, runs: list[Recorder]) -> str:
    names = ", ".join(repr(rec.name) for rec in runs)
    which = f"the governed run {names} is" if len(runs) == 1 else f"{len(runs)} governed runs ({names}) are"
    attribute = ("" if len(runs) == 1 else
                 " (attributing it is impossible: it could belong to any of them)")
    return (f"{call.kind.value} {call.target!r} was called outside any mattrace.record() block, in thread "
            f"{threading.current_thread().name!r}, while {which} open: no governor can judge it, so it is "
            f"refused (fail-closed){attribute}. Run the code in the run's context: "
            "contextvars.copy_context().run(fn, ...) in a thread you start, asyncio.to_thread(fn, ...) from async "
            "code, pool.submit(contextvars.copy_context().run, fn, ...) for an executor; or build the governor "
            "with unattributed=\"attribute\" to let such calls join the only governed run. See docs/governance.md")


def _record_refusal(rec: Recorder, governor: Any, call: Call, reason: str) -> None:
    """Record the refusal in ``rec``: through its governor when it knows how (and keeps an audit
    log), else as a plain ``governance`` step."""
    refuse = getattr(governor, "refuse_unattributed", None)
    try:
        if callable(refuse):
            refuse(rec, call, reason)
        else:
            rec.append(StepKind.GOVERNANCE, agent="mattrace", target=f"{call.kind.value}:{call.target}",
                       content=reason, args={"decision": "block", "rule": "unattributed", "reason": reason,
                                             "agent": call.agent, "original": dict(call.args),
                                             "unattributed": True},
                       attrs={"decision": "block"})
    except RecordingError:
        pass   # the run ended while the call was being refused: it has nothing left to record
