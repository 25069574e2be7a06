"""LLM calls that reach the model without passing through the interceptor chain.

Each integration wraps its client's entry points, but a program can hold a reference the
wrapper never saw (a function bound before instrumentation and kept in a closure, a default
argument or an object). Such a call still happens; what matters is whether this run could
let it by. Replay-only mode would call the model, an injected ``Timeout("llm:*")`` would
never fire, a governor would judge the run with a hole in it. So the integration that
notices an escaped call (before it is made) asks every interceptor of the run through its
optional ``on_escape(call)``:

* any reason given: the call is refused with :class:`~mattrace.errors.EscapedCall`, naming
  the call site, the reasons and how to route the call through the chain;
* none: the call goes ahead and is recorded by the client's own hook, marked so; an
  interceptor may warn (a recording cassette does: the call will be missing from it).

An interceptor without ``on_escape`` is taken to need every call (fail-closed).

A call no run's context reached (made from a thread that did not inherit it) belongs to no
run, yet a run open in the process may still need it: a replay-only run whose code hands
the model call to a thread pool would call the model. :func:`refuse_unclaimed` judges such
a call against every open run, and refuses it when one of them needs it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mattrace.errors import EscapedCall

if TYPE_CHECKING:
    from mattrace.recording.interceptors import Call, Interceptor
    from mattrace.recording.recorder import Recorder

__all__ = ["call_site", "close_run", "escape_reasons", "open_run", "refuse_escape", "refuse_unclaimed", "runs_open"]

_lock = threading.Lock()
_open: dict[int, Recorder] = {}   # id(recorder) -> every run open in this process, oldest first


def open_run(rec: Recorder) -> None:
    """Count ``rec`` as open (its interceptors judge calls no run can claim) until :func:`close_run`."""
    with _lock:
        _open[id(rec)] = rec


def close_run(rec: Recorder) -> None:
    with _lock:
        _open.pop(id(rec), None)


def runs_open() -> bool:
    """Whether any run is open in this process (the cheap test before :func:`refuse_unclaimed`)."""
    return bool(_open)


def refuse_unclaimed(call: Call, how: str) -> None:
    """Raise :class:`EscapedCall` if a run open in this process needs ``call``, which no run's
    context reached (a thread that did not inherit it).

    Raises:
        EscapedCall: some open run's interceptor gave a reason; nothing was called.
    """
    with _lock:
        runs = [rec for rec in _open.values() if not rec.closed]
    reasons = [f"run {rec.name!r}: {reason}" for rec in runs for reason in escape_reasons(rec.interceptors, call)]
    if reasons:
        raise EscapedCall(f"{call_site(2)}: the {call.kind.value} call to {call.target} ({how}) was made where no "
                          f"run's context reaches (a thread that did not inherit it), while a run open in this "
                          f"process needs it: {'; '.join(reasons)}. It was not made. Carry the context into the "
                          "thread: contextvars.copy_context().run(fn), pool.submit(contextvars.copy_context().run, "
                          "fn), or asyncio.to_thread (docs/governance.md#threads).")

# frames of these packages are the plumbing between the user's call and the client
_PLUMBING = ("mattrace.", "litellm.", "openai.", "anthropic.", "httpx", "asyncio.", "concurrent.",
             "threading", "contextvars", "functools")


def escape_reasons(chain: Iterable[Interceptor], call: Call) -> list[str]:
    """Why the run of ``chain`` cannot let ``call`` bypass it: one reason per interceptor that
    needed to see it (a raising ``on_escape`` counts as needing it)."""
    reasons: list[str] = []
    for interceptor in chain:
        judge = getattr(interceptor, "on_escape", None)
        name = getattr(interceptor, "name", type(interceptor).__name__)
        if not callable(judge):
            reasons.append(f"the run's {name!r} interceptor sees every boundary call")
            continue
        try:
            reason = judge(call)
        except Warning:   # a warning the program turned into an error: it asked for exactly that
            raise
        except Exception as exc:   # fail-closed: an interceptor that cannot say needs the call
            reason = f"the {name!r} interceptor could not judge the call ({type(exc).__name__}: {exc})"
        if reason:
            reasons.append(str(reason))
    return reasons


def call_site(skip: int = 1) -> str:
    """``file:line`` of the innermost frame outside mattrace, the LLM clients and the plumbing
    between them: where the program made the call."""
    frame = sys._getframe(skip)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if not any(module == p.rstrip(".") or module.startswith(p) for p in _PLUMBING):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back   # type: ignore[assignment]
    return "an unknown place"


def refuse_escape(chain: Iterable[Interceptor], call: Call, how: str, fix: str) -> None:
    """Raise :class:`EscapedCall` if the run needs ``call`` to pass through ``chain``.

    Args:
        chain: the run's interceptors.
        call: the call as it would have entered the chain.
        how: how it escaped (``litellm.completion through a reference bound before
            instrumentation``).
        fix: how to route such calls through the chain.

    Raises:
        EscapedCall: some interceptor gave a reason; nothing was called.
    """
    reasons = escape_reasons(chain, call)
    if reasons:
        raise EscapedCall(f"{call_site(2)}: the {call.kind.value} call to {call.target} by {call.agent} escaped "
                          f"mattrace's interceptor chain ({how}), and this run needs it: "
                          f"{'; '.join(reasons)}. It was not made. {fix}")
