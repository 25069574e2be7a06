"""Who is recording, who is acting and which requested tool call runs, held in ContextVars.

ContextVars rather than thread-locals because asyncio tasks and threads started with
``contextvars.copy_context().run`` inherit them: everything started inside a
``record()`` block records into that block's trace and into no other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from mattrace.errors import RecordingError

if TYPE_CHECKING:
    from mattrace.recording.recorder import Recorder

__all__ = [
    "active_recorder",
    "agent",
    "current_agent",
    "DEFAULT_AGENT",
    "current_tool_call_id",
    "require_recorder",
    "restore_tool_call_id",
    "take_tool_call_id",
    "tool_call_id",
]

DEFAULT_AGENT = "main"

_recorder: ContextVar[Recorder | None] = ContextVar("mattrace_recorder", default=None)
_agent: ContextVar[str] = ContextVar("mattrace_agent", default=DEFAULT_AGENT)
_call_id: ContextVar[str | None] = ContextVar("mattrace_tool_call_id", default=None)


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


def current_tool_call_id() -> str | None:
    """The id of the requested tool call being answered here (see :func:`tool_call_id`), if any."""
    return _call_id.get()


@contextmanager
def tool_call_id(call_id: str | None) -> Iterator[str | None]:
    """Say which requested tool call the boundary call inside the block answers.

    A model's answer may ask for the same tool twice; matched by name, the second call
    would be linked to whichever request came first. An orchestrator that dispatches the
    model's tool calls says which one it runs, and the tool step records the id
    (``attrs["tool_call_id"]``) and reads the LLM step that requested exactly that call::

        for call in message.tool_calls:
            with mattrace.tool_call_id(call.id):
                result = tools[call.function.name](**json.loads(call.function.arguments))

    The first boundary call inside the block takes the id; calls it makes in turn do not
    (a tool that calls another tool answers one request, not two). ``None`` or ``""`` sets
    no id.
    """
    if call_id is not None and not isinstance(call_id, str):
        raise RecordingError(f"tool_call_id() takes the call's id as a string, got {call_id!r}")
    token = _call_id.set(call_id or None)
    try:
        yield call_id or None
    finally:
        _call_id.reset(token)


def take_tool_call_id() -> tuple[str | None, Token[str | None] | None]:
    """The id for the boundary call starting here, cleared for the calls it makes in turn
    until :func:`restore_tool_call_id` is given the token (None: no id was set, nothing to
    restore). A plain pair, not a context manager: every boundary call pays for this."""
    call_id = _call_id.get()
    return (None, None) if call_id is None else (call_id, _call_id.set(None))


def restore_tool_call_id(token: Token[str | None] | None) -> None:
    """Undo :func:`take_tool_call_id` once the boundary call is over."""
    if token is not None:
        _call_id.reset(token)
