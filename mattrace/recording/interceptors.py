"""The one chain every boundary call passes through.

Replay, fault injection and governance all need to act on the same calls (tools,
retrieval, memory, LLM) at the same point: before the call (answer it, change its
arguments, refuse it) and after it (change or replace its result). Rather than a hook per
capability in every wrapper, each registers an :class:`Interceptor` on the recorder and
:func:`run_call` applies the chain in one documented order:

    governance (order 100) → faults (200) → replay (300) → the real call

so a governance refusal wins over everything, a fault is an explicit override, and calls
a fault does not touch fall through to the cassette. ``after`` runs in reverse order.

Fail-closed: an interceptor whose ``before`` raises refuses the call with that error,
and the error is recorded on the step; it never vanishes and never crashes the run
outside the boundary that was being called.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mattrace.trace import Source, StepKind

if TYPE_CHECKING:
    from mattrace.recording.clients import LLMClient

__all__ = [
    "Answer",
    "Call",
    "CallOutcome",
    "FAULTS_ORDER",
    "GOVERNANCE_ORDER",
    "Interceptor",
    "REPLAY_ORDER",
    "run_call",
    "run_call_async",
]

GOVERNANCE_ORDER = 100
FAULTS_ORDER = 200
REPLAY_ORDER = 300


@dataclass
class Call:
    """A boundary call about to happen. Interceptors may replace ``args``.

    ``sources`` and ``reads`` are added to the step the call becomes: an interceptor that
    changed the answer (an injected fault) says so there, so provenance and taint see it.
    """

    kind: StepKind
    target: str
    args: dict[str, Any]
    agent: str
    side_effect: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)
    repeat: int = 0
    """Extra times the real call runs (an injected duplicate delivery); the last result counts."""
    refused: bool = False
    """Set by an interceptor that refused the call (governance): no step is recorded for an
    action that never happened; the interceptor's own step holds the attempt."""
    unattributed: bool = False
    """The call was made where no run's context was active (a thread that did not inherit it)
    while a governed run was open; see :mod:`mattrace.recording.unattributed`."""
    client: LLMClient | None = None
    """For an LLM call: the client library that made it, whose own exceptions and responses an
    injected fault uses (see :mod:`mattrace.recording.clients`); None means litellm's."""


@dataclass
class Answer:
    """What ``before`` returns to answer a call without running it (result or error).

    ``wait``, for async calls, is awaited before the answer is delivered: replay uses it to
    deliver answers in the order the recorded run completed them, so interleaved asyncio
    tasks record their steps in the same order again.
    """

    result: Any = None
    error: BaseException | None = None
    wait: Callable[[], Awaitable[None]] | None = None


@dataclass
class CallOutcome:
    """The result or error of a call, as ``after`` sees and may replace it."""

    result: Any = None
    error: BaseException | None = None


@runtime_checkable
class Interceptor(Protocol):
    """A participant in the boundary chain (see the module docstring for the order)."""

    name: str
    order: int

    def before(self, call: Call) -> Answer | None:
        """Inspect/modify ``call`` before it runs; return an Answer to short-circuit it."""
        ...

    def after(self, call: Call, outcome: CallOutcome) -> CallOutcome:
        """Inspect/replace the outcome of ``call``."""
        ...

    def close(self) -> None:
        """Called once, after the run's trace is sealed: write what was kept (a cassette, an
        audit log), release what was held. The recorder tolerates an object without it."""
        ...

    # Optional, looked up with getattr like close():
    #
    #     def on_escape(self, call: Call) -> str | None
    #
    # asked when a call reaches its client without passing through the chain (an LLM call
    # made through a reference the integration could not wrap): the reason this run cannot
    # let it go by (it would have answered, faulted or judged it), or None. An interceptor
    # without it is taken to need every call. See mattrace.recording.escapes.


def _enter(chain: Sequence[Interceptor], call: Call) -> tuple[list[Interceptor], Answer | None]:
    entered: list[Interceptor] = []
    for interceptor in chain:
        entered.append(interceptor)
        try:
            answer = interceptor.before(call)
        except BaseException as exc:  # fail-closed: a broken interceptor refuses the call
            return entered, Answer(error=exc)
        if answer is not None:
            return entered, answer
    return entered, None


def _leave(entered: list[Interceptor], call: Call, outcome: CallOutcome) -> CallOutcome:
    for interceptor in reversed(entered):
        try:
            outcome = interceptor.after(call, outcome)
        except BaseException as exc:
            outcome = CallOutcome(error=exc)
    return outcome


def run_call(chain: Sequence[Interceptor], call: Call, fn: Callable[..., Any]) -> CallOutcome:
    """Run ``fn(**call.args)`` through the chain; never raises, returns the outcome."""
    entered, answer = _enter(chain, call)
    if answer is not None:
        outcome = CallOutcome(answer.result, answer.error)
    else:
        try:
            for _ in range(call.repeat):
                fn(**call.args)
            outcome = CallOutcome(result=fn(**call.args))
        except Exception as exc:
            outcome = CallOutcome(error=exc)
    return _leave(entered, call, outcome)


async def run_call_async(chain: Sequence[Interceptor], call: Call,
                         fn: Callable[..., Awaitable[Any]]) -> CallOutcome:
    """The async twin of :func:`run_call`."""
    entered, answer = _enter(chain, call)
    if answer is not None:
        if answer.wait is not None:
            await answer.wait()
        outcome = CallOutcome(answer.result, answer.error)
    else:
        try:
            for _ in range(call.repeat + 1):
                value = fn(**call.args)
                value = await value if inspect.isawaitable(value) else value
            outcome = CallOutcome(result=value)
        except Exception as exc:
            outcome = CallOutcome(error=exc)
    return _leave(entered, call, outcome)
