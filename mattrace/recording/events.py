"""Steps that are not boundary calls: messages between agents, and delegation.

Orchestrators pass text between agents without any boundary to wrap, so they say so
explicitly; these calls are cheap and do nothing outside a ``record()`` block, so the
instrumentation can stay in production code.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from mattrace.errors import RecordingError
from mattrace.recording.context import active_recorder, current_agent
from mattrace.trace import Source, Step, StepKind

__all__ = [
    "delegate",
    "message",
]


def _check_text(**fields: object) -> None:
    """Refuse non-text where text belongs: in a trace it would be unreadable later."""
    for name, value in fields.items():
        optional = name in ("agent", "to")
        if not isinstance(value, str) and not (optional and value is None):
            raise RecordingError(f"{name} must be text, got {type(value).__name__} {value!r}")


@functools.lru_cache(maxsize=1024)   # a Source is immutable; speakers repeat
def _source_of(agent: str) -> Source:
    return Source(kind="user", ref=agent) if agent == "user" else Source(kind="agent", ref=agent)


def message(agent: str | None, content: str, *, to: str | None = None,
            sources: Iterable[Source] | None = None, reads: Iterable[int] = (),
            claims: list[dict[str, Any]] | None = None,
            attrs: dict[str, Any] | None = None) -> Step | None:
    """Record that ``agent`` said ``content`` (to agent ``to``, or to everyone).

    Args:
        agent: who spoke (``None``: the enclosing ``agent()`` block; ``"user"`` for the user).
        sources: provenance of the text; defaults to the speaker itself, trusted.
        reads: indices of earlier steps this message used (added to inferred ones).
        claims: ``[{"text": ..., "cites": [doc ids]}]`` for the factuality contracts.

    Returns:
        The recorded step, or None outside a ``record()`` block.
    """
    _check_text(content=content, agent=agent, to=to)
    rec = active_recorder()
    if rec is None:
        return None
    speaker = agent or current_agent()
    extra = dict(attrs or {})
    if claims is not None:
        extra["claims"] = claims
    return rec.append(StepKind.MESSAGE, agent=speaker, target=to, content=content,
                      sources=list(sources) if sources is not None else [_source_of(speaker)],
                      reads=reads, attrs=extra)


def delegate(agent: str | None, to: str, task: str, *, reads: Iterable[int] = (),
             attrs: dict[str, Any] | None = None) -> Step | None:
    """Record that ``agent`` handed ``task`` to agent ``to``.

    Returns the recorded step, or None outside a ``record()`` block.
    """
    if not to:
        raise RecordingError("delegate() needs the agent the task is handed to (to=...)")
    _check_text(task=task, agent=agent, to=to)
    rec = active_recorder()
    if rec is None:
        return None
    speaker = agent or current_agent()
    return rec.append(StepKind.DELEGATE, agent=speaker, target=to, content=task,
                      sources=[_source_of(speaker)], reads=reads, attrs=attrs)
