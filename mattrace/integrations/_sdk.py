"""What the provider SDK integrations (OpenAI, Anthropic) share: one wrapper per API method.

Each integration replaces an SDK method on its *class* (``Completions.create``,
``Messages.create`` ...), so every client instance and every import style goes through
it. Inside a ``record()`` block the wrapper:

1. builds the :class:`~mattrace.recording.interceptors.Call` (kind ``llm``, the model as
   target, the request parameters as args, the SDK as its :class:`LLMClient` so injected
   faults raise the SDK's own exceptions);
2. runs it through the run's interceptor chain (governance, faults, replay, the real call);
3. records the ``llm`` step before returning, so it precedes the tool calls its answer causes.

**Streams** are read to their end inside the chain and handed to the caller as a
:class:`~mattrace.integrations._streams.RecordedStream` of the same chunks: the cassette stores the chunks, a replay
serves them, faults see the whole answer. The price: inside a ``record()`` block the first
chunk arrives when the last one has (outside one the SDK is called directly).

Calls the SDK makes on behalf of litellm (which uses the OpenAI SDK for some providers)
are litellm's: its own integration records them, through the chain, so they pass straight
through here. Calls the OpenAI Agents SDK makes are recorded from its spans by
``mattrace.integrations.openai_agents``; they pass through too, after being judged as
escaped calls (a run that replays, faults or governs LLM calls refuses them).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mattrace.integrations._sdk_client import SDKClient
from mattrace.integrations._streams import Chunks, RecordedStream
from mattrace.recording.context import active_recorder, current_agent
from mattrace.recording.escapes import refuse_escape, refuse_unclaimed, runs_open
from mattrace.recording.interceptors import Call, CallOutcome, run_call, run_call_async
from mattrace.recording.recorder import Recorder
from mattrace.trace import Source, StepKind

__all__ = ["Endpoint", "Described", "parse_arguments", "wrap_async", "wrap_sync", "wrap_unintercepted"]

Described = tuple[str | None, dict[str, Any] | None, dict[str, Any]]
"""What an endpoint makes of a response: the text, the recorded result, the step attrs."""

# keyword arguments that shape the HTTP exchange, not the request: kept out of the cassette key
_TRANSPORT = frozenset({"timeout", "extra_headers", "extra_query"})
_RAW_HEADER = "X-Stainless-Raw-Response"


@dataclass(frozen=True)
class Endpoint:
    """One API method of an SDK, as the wrapper needs to know it.

    Attributes:
        api: its name in attrs (``openai.chat.completions``).
        client: builds the :class:`LLMClient` of a call from the resource object (``self``),
            for faults.
        step_args: the request parameters as the step records them (model, messages, tool names).
        describe: a response, or the list of chunks of a streamed one, as text, result and attrs.
    """

    api: str
    client: Callable[[Any], SDKClient]
    step_args: Callable[[dict[str, Any]], dict[str, Any]]
    describe: Callable[[Any], Described]


def parse_arguments(raw: Any) -> Any:
    """Tool-call arguments as JSON when they are JSON (a model may emit broken JSON: kept as said)."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _omitted(value: Any) -> bool:
    """The SDKs' "not given" sentinels (``NOT_GIVEN``, ``omit``), which their helpers pass for
    every parameter the caller left out."""
    return type(value).__name__ in ("NotGiven", "Omit")


def _framework() -> str | None:
    """The framework that called the SDK method, when it is one whose own mattrace integration
    records its model calls: ``litellm`` (through the chain) or ``agents``, the OpenAI Agents
    SDK (from its spans, see ``mattrace.integrations.openai_agents``)."""
    frame = sys._getframe(1)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if not module.startswith(("openai.", "anthropic.", "mattrace.integrations")) \
                and module not in ("openai", "anthropic"):
            top = module.partition(".")[0]
            return top if top in ("litellm", "agents") else None
        frame = frame.f_back  # type: ignore[assignment]
    return None


_AGENTS_FIX = ("The OpenAI Agents SDK's model calls are recorded from its spans (mattrace.integrations.openai_agents), "
               "which cannot replay or fault them: record such runs with cassette=False and no faults or governor.")


def _passes_by(rec: Recorder, endpoint: Endpoint, resource: Any, kwargs: dict[str, Any]) -> bool:
    """Whether the call is left to the framework that made it (judged first when that is an escape)."""
    framework = _framework()
    if framework == "agents":
        call, _ = _prepare(endpoint, resource, kwargs)
        refuse_escape(rec.interceptors, call, f"{endpoint.api} called by the OpenAI Agents SDK", _AGENTS_FIX)
    return framework is not None


def _prepare(endpoint: Endpoint, resource: Any, kwargs: dict[str, Any]) -> tuple[Call, dict[str, Any]]:
    params = {k: v for k, v in kwargs.items() if not _omitted(v)}
    hidden = {k: params.pop(k) for k in list(params) if k in _TRANSPORT}
    call = Call(StepKind.LLM, str(params.get("model")), params, current_agent(), client=endpoint.client(resource))
    call.attrs["api"] = endpoint.api
    return call, hidden


def _is_raw(kwargs: dict[str, Any]) -> bool:
    headers = kwargs.get("extra_headers")
    return isinstance(headers, dict) and _RAW_HEADER in headers


def _record(rec: Recorder, endpoint: Endpoint, call: Call, outcome: CallOutcome, t_start: int,
            via: str | None = None) -> None:
    attrs = dict(call.attrs)
    attrs["latency_ms"] = round((time.time_ns() - t_start) / 1e6, 3)
    if via is not None:
        attrs["recorded_via"] = via
    text: str | None = None
    result: dict[str, Any] | None = None
    if outcome.error is None and outcome.result is not None:
        try:
            text, result, described = endpoint.describe(outcome.result)
        except Exception as exc:   # an answer of a shape this version does not know: kept, and said
            described = {"describe_error": f"{type(exc).__name__}: {exc}"}
        attrs.update(described)
    rec.append(StepKind.LLM, agent=call.agent, target=call.target, content=text,
               args=endpoint.step_args(call.args), result=result, error=outcome.error,
               sources=[Source(kind="agent", ref=call.agent), *call.sources], reads=list(call.reads),
               attrs=attrs, t_start=t_start, t_end=time.time_ns())


def _deliver(call: Call, outcome: CallOutcome) -> Any:
    """The outcome as the caller expects it: raised, a stream of the chunks, or the answer."""
    if outcome.error is not None:
        raise outcome.error
    if call.args.get("stream") and isinstance(outcome.result, list):
        live = outcome.result.origin if isinstance(outcome.result, Chunks) else None
        empty = call.client.empty_response() if live is None and isinstance(call.client, SDKClient) else None
        return RecordedStream(outcome.result, empty)
    return outcome.result


def wrap_sync(original: Callable[..., Any], endpoint: Endpoint) -> Callable[..., Any]:
    """``original`` (an unbound SDK method) routed through the interceptor chain inside ``record()`` blocks."""
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        rec = active_recorder()
        if rec is None and not args and runs_open() and _framework() is None:
            refuse_unclaimed(_prepare(endpoint, self, kwargs)[0], endpoint.api)
        if rec is None or rec.closed or args or _passes_by(rec, endpoint, self, kwargs):
            return original(self, *args, **kwargs)
        if _is_raw(kwargs):
            return _unintercepted(rec, endpoint, self, original, args, kwargs, "with_raw_response")
        call, hidden = _prepare(endpoint, self, kwargs)

        def real(**params: Any) -> Any:
            answer = original(self, **params, **hidden)
            if not params.get("stream"):
                return answer
            with answer:
                return Chunks(answer, answer)

        t_start = time.time_ns()
        outcome = run_call(rec.chain, call, real)
        if not call.refused:
            _record(rec, endpoint, call, outcome, t_start)
        return _deliver(call, outcome)
    method.__wrapped__ = original  # type: ignore[attr-defined]
    method.__doc__ = original.__doc__
    method.__name__ = original.__name__
    return method


def wrap_async(original: Callable[..., Any], endpoint: Endpoint) -> Callable[..., Any]:
    """The async twin of :func:`wrap_sync`."""
    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        rec = active_recorder()
        if rec is None and not args and runs_open() and _framework() is None:
            refuse_unclaimed(_prepare(endpoint, self, kwargs)[0], endpoint.api)
        if rec is None or rec.closed or args or _passes_by(rec, endpoint, self, kwargs):
            return await original(self, *args, **kwargs)
        if _is_raw(kwargs):
            return await _unintercepted_async(rec, endpoint, self, original, args, kwargs, "with_raw_response")
        call, hidden = _prepare(endpoint, self, kwargs)

        async def real(**params: Any) -> Any:
            answer = await original(self, **params, **hidden)
            if not params.get("stream"):
                return answer
            async with answer:
                return Chunks([chunk async for chunk in answer], answer)

        t_start = time.time_ns()
        outcome = await run_call_async(rec.chain, call, real)
        if not call.refused:
            _record(rec, endpoint, call, outcome, t_start)
        return _deliver(call, outcome)
    method.__wrapped__ = original  # type: ignore[attr-defined]
    method.__doc__ = original.__doc__
    method.__name__ = original.__name__
    return method


_FIX = ("Use the method's plain form (create(...), create(stream=True)) inside record() blocks, or, for an "
        "observe-only run, record with cassette=False and no faults or governor.")


def _judge(rec: Recorder, endpoint: Endpoint, resource: Any, kwargs: dict[str, Any], how: str) -> Call:
    call, _ = _prepare(endpoint, resource, kwargs)
    refuse_escape(rec.interceptors, call, f"{endpoint.api} {how} is not intercepted", _FIX)
    return call


def _parsed(answer: Any) -> Any:
    """What a raw-response wrapper's answer parses to, when it can be read without consuming a stream."""
    parse = getattr(answer, "parse", None)
    if callable(parse) and not getattr(answer, "_is_sse_stream", False) and getattr(answer, "_stream", False) is False:
        try:
            return parse()
        except Exception:
            return None
    return None


def _unintercepted(rec: Recorder, endpoint: Endpoint, resource: Any, original: Callable[..., Any],
                   args: tuple[Any, ...], kwargs: dict[str, Any], how: str) -> Any:
    call = _judge(rec, endpoint, resource, kwargs, how)
    t_start = time.time_ns()
    try:
        answer = original(resource, *args, **kwargs)
    except Exception as exc:
        _record(rec, endpoint, call, CallOutcome(error=exc), t_start, via=how)
        raise
    _record(rec, endpoint, call, CallOutcome(result=_parsed(answer)), t_start, via=how)
    return answer


async def _unintercepted_async(rec: Recorder, endpoint: Endpoint, resource: Any, original: Callable[..., Any],
                               args: tuple[Any, ...], kwargs: dict[str, Any], how: str) -> Any:
    call = _judge(rec, endpoint, resource, kwargs, how)
    t_start = time.time_ns()
    try:
        answer = await original(resource, *args, **kwargs)
    except Exception as exc:
        _record(rec, endpoint, call, CallOutcome(error=exc), t_start, via=how)
        raise
    _record(rec, endpoint, call, CallOutcome(result=_parsed(answer)), t_start, via=how)
    return answer


def wrap_unintercepted(original: Callable[..., Any], endpoint: Endpoint, how: str,
                       is_async: bool) -> Callable[..., Any]:
    """A method that bypasses the chain by construction (``parse``, which posts on its own):
    judged like an escaped call, then run and recorded (``attrs["recorded_via"]``)."""
    if is_async:
        async def amethod(self: Any, *args: Any, **kwargs: Any) -> Any:
            rec = active_recorder()
            if rec is None or rec.closed or _passes_by(rec, endpoint, self, kwargs):
                return await original(self, *args, **kwargs)
            return await _unintercepted_async(rec, endpoint, self, original, args, kwargs, how)
        wrapped: Callable[..., Any] = amethod
    else:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            rec = active_recorder()
            if rec is None or rec.closed or _passes_by(rec, endpoint, self, kwargs):
                return original(self, *args, **kwargs)
            return _unintercepted(rec, endpoint, self, original, args, kwargs, how)
        wrapped = method
    wrapped.__wrapped__ = original  # type: ignore[attr-defined]
    wrapped.__doc__ = original.__doc__
    wrapped.__name__ = original.__name__
    return wrapped
