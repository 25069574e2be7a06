"""Who is recording and who is acting, held in ContextVars.

ContextVars rather than thread-locals because asyncio tasks and threads started with
``contextvars.copy_context().run`` inherit them: everything started inside a
``record()`` block records into that block's trace and into no other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from mattrace.errors import RecordingError

if TYPE_CHECKING:
    from mattrace.recording.recorder import Recorder

__all__ = [
    "active_recorder",
    "agent",
    "current_agent",
    "DEFAULT_AGENT",
    "require_recorder",
]

DEFAULT_AGENT = "main"

_recorder: ContextVar[Recorder | None] = ContextVar("mattrace_recorder", default=None)
_agent: ContextVar[str] = ContextVar("mattrace_agent", default=DEFAULT_AGENT)


def active_recorder() -> Recorder | None:
    """The recorder of the innermost ``record()`` block around this code, if any."""
    return _recorder.get()


def require_recorder(what: str) -> Recorder:
    """The active recorder, or a RecordingError saying which call needed one."""
    rec = _recorder.get()
    if rec is None:
        raise RecordingError(f"{what} was called outside any mattrace.record() block; "
                             "wrap the run in `with mattrace.record(name):`")
    return rec


def current_agent() -> str:
    """The agent steps are attributed to here (``main`` outside any agent block)."""
    return _agent.get()


@contextmanager
def agent(name: str) -> Iterator[str]:
    """Attribute every step recorded inside the block to agent ``name``.

    Nests: the innermost block wins, and the outer agent is restored on exit.
    """
    if not isinstance(name, str) or not name:
        raise RecordingError(f"agent name must be a non-empty string, got {name!r}")
    token = _agent.set(name)
    try:
        yield name
    finally:
        _agent.reset(token)
