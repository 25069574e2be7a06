"""LLM calls through litellm become ``llm`` steps.

Two mechanisms, because litellm offers no single hook that is both complete and ordered:

* **The completion wrapper** (primary). :func:`instrument` replaces ``litellm.completion``
  and ``litellm.acompletion`` with wrappers that run the call through the recorder's
  interceptor chain (so replay, faults and governance apply to LLM calls like to any
  boundary) and record the step *before returning the response*. The step therefore
  precedes the tool call its answer causes, as it happened. A streamed call is read whole
  inside the chain and its chunks handed on afterwards, so a cassette stores and replays
  them (inside a ``record()`` block the first chunk arrives with the last).
* **The callback** (fallback). litellm's success callbacks run on a logging thread pool
  or as a later task, are best-effort (dropped under load), and custom providers never
  fire ``log_pre_api_call``; they cannot order steps. :class:`MatLiteLLMCallback` records
  only calls that bypassed the wrapper and marks those steps
  ``attrs["recorded_via"] = "callback"``.

Calls bypass the wrapper only through a reference it could not rebind (see
:mod:`mattrace.integrations.litellm._escape`: names bound by ``from litellm import
completion`` in modules imported before :func:`instrument` are rebound; a reference kept in
a closure or an object is not). Such a call is judged before it is made: refused with
:class:`~mattrace.errors.EscapedCall` when the run replays, injects a fault into it or is
governed; otherwise let through and recorded by the callback.

Who acts: ``metadata={"agent": ...}`` on the call, else the enclosing ``agent()`` block.
``metadata={"mattrace_reads": [step indices]}`` adds explicit ``reads`` edges; text that an
earlier step produced and that appears in the prompt is linked at analysis time
(:mod:`mattrace.provenance`). A response's tool calls are recorded as
``attrs["tool_calls_requested"]`` (names) and ``attrs["tool_call_ids"]`` (their ids, in the
same order); a tool run inside ``mattrace.tool_call_id(call.id)`` is linked to its request
by that id.

Importing this module imports litellm (about 3 s); mattrace imports it only on demand.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import

import importlib
import json
import sys
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger

from mattrace.integrations._streams import Chunks, RecordedStream
from mattrace.integrations.litellm import _escape
from mattrace.recording.context import active_recorder, current_agent
from mattrace.recording.escapes import refuse_unclaimed, runs_open
from mattrace.recording.interceptors import (
    Call,
    CallOutcome,
    run_call,
    run_call_async,
)
from mattrace.recording.recorder import Recorder
from mattrace.trace import Source, Step, StepKind

__all__ = [
    "instrument",
    "is_instrumented",
    "MatLiteLLMCallback",
    "SCRIPTED_PROVIDER",
    "uninstrument",
]

SCRIPTED_PROVIDER = "mattrace.testing.provider"
"""The module that registers the scripted model (``mattrace/<script>``) as a litellm provider."""

# litellm's response and logging types use typing.ReadOnly, which pydantic warns about
# when it first builds them, often on litellm's logging threads: noise for every user.
warnings.filterwarnings("ignore", message=r"Items? .* using the `ReadOnly` qualifier",
                        category=UserWarning)

_WRAPPED_FLAG = "mattrace_wrapped"
_RECORDED_PARAMS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "seed",
                    "tool_choice", "response_format", "stop", "n")
_lock = threading.Lock()
# What instrument() replaced lives on litellm itself, not in this module: if this module
# is imported afresh (pytester restores sys.modules between in-process runs; importlib
# reloads), a second copy must see that litellm is already wrapped, or every call would
# be recorded twice.
_STATE = "_mattrace_instrumentation"


def _metadata(kwargs: dict[str, Any]) -> dict[str, Any]:
    meta = kwargs.get("metadata")
    if meta is None:
        meta = (kwargs.get("litellm_params") or {}).get("metadata")
    return meta if isinstance(meta, dict) else {}


def _call_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What an ``llm`` step records as its input: model, messages, tool names, sampling."""
    args: dict[str, Any] = {"model": kwargs.get("model"), "messages": kwargs.get("messages") or []}
    tools = kwargs.get("tools") or []
    if tools:
        args["tools"] = [t.get("function", {}).get("name") for t in tools if isinstance(t, dict)]
    for key in _RECORDED_PARAMS:
        if kwargs.get(key) is not None:
            args[key] = kwargs[key]
    return args


def _parse_arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw  # a model may emit broken JSON; keep what it said
    return raw


def _describe_response(response: Any) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """(text, result, attrs) of a litellm ModelResponse."""
    choice = response.choices[0] if getattr(response, "choices", None) else None
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None)
    tool_calls = []
    for tc in getattr(message, "tool_calls", None) or []:
        fn = getattr(tc, "function", None)
        tool_calls.append({"id": getattr(tc, "id", None), "name": getattr(fn, "name", None),
                           "arguments": _parse_arguments(getattr(fn, "arguments", None))})
    result: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        result["tool_calls"] = tool_calls
    finish = getattr(choice, "finish_reason", None)
    if finish:
        result["finish_reason"] = finish
    attrs: dict[str, Any] = {"model": getattr(response, "model", None)}
    usage = getattr(response, "usage", None)
    if usage is not None:
        attrs["tokens"] = {"prompt": getattr(usage, "prompt_tokens", 0) or 0,
                           "completion": getattr(usage, "completion_tokens", 0) or 0,
                           "total": getattr(usage, "total_tokens", 0) or 0}
    hidden = getattr(response, "_hidden_params", None) or {}
    if hidden.get("custom_llm_provider"):
        attrs["provider"] = hidden["custom_llm_provider"]
    cost = hidden.get("response_cost")
    if cost is None:
        try:
            cost = litellm.completion_cost(completion_response=response)
        except Exception:  # unknown model price: cost stays unknown, not zero
            cost = None
    if cost is not None:
        attrs["cost_usd"] = float(cost)
    if tool_calls:   # names (what earlier versions recorded) and, in the same order, the call ids
        attrs["tool_calls_requested"] = [tc["name"] for tc in tool_calls]
        attrs["tool_call_ids"] = [tc["id"] if isinstance(tc["id"], str) and tc["id"] else None
                                  for tc in tool_calls]
    if getattr(response, "id", None):
        attrs["response_id"] = response.id
    return text, result, attrs


def _record_llm(rec: Recorder, call: Call, outcome: CallOutcome, t_start: int,
                t_end: int, via: str) -> Step:
    meta = _metadata(call.args)
    reads = [r for r in meta.get("mattrace_reads", ()) if isinstance(r, int)]
    attrs = dict(call.attrs)
    attrs["latency_ms"] = round((t_end - t_start) / 1e6, 3)
    if via != "wrapper":
        attrs["recorded_via"] = via
    text, result = None, None
    if outcome.error is None and outcome.result is not None:
        text, result, response_attrs = _describe_response(outcome.result)
        attrs.update(response_attrs)
    return rec.append(StepKind.LLM, agent=call.agent, target=call.target, content=text,
                      args=_call_args(call.args), result=result, error=outcome.error,
                      sources=[Source(kind="agent", ref=call.agent), *call.sources],
                      reads=[*reads, *call.reads], attrs=attrs, t_start=t_start, t_end=t_end)


# keyword arguments that say how to make the call, not what is asked (litellm's Router adds
# most of them, with clients, trace ids and retry counts that differ on every run): passed
# to litellm, kept out of the call's args and so out of the cassette key
_TRANSPORT = frozenset({"client", "litellm_logging_obj", "litellm_call_id", "litellm_trace_id",
                        "litellm_parent_otel_span", "model_info", "timeout", "request_timeout", "max_retries",
                        "num_retries", "caching"})
# metadata keys that belong to the call's args (the rest is for logging and routing)
_OWN_METADATA = ("agent", _WRAPPED_FLAG, "mattrace_reads")


def _make_call(kwargs: dict[str, Any]) -> tuple[Call, dict[str, Any]]:
    """The call as the chain sees it, and the keyword arguments passed to litellm besides its args."""
    meta = dict(_metadata(kwargs))
    named = meta.get("agent")
    agent = named if isinstance(named, str) and named else current_agent()
    meta[_WRAPPED_FLAG] = True
    meta["agent"] = agent  # providers and callbacks see who asked
    hidden = {k: v for k, v in kwargs.items() if k in _TRANSPORT or k.startswith("_")}
    hidden["metadata"] = meta
    args = {k: v for k, v in kwargs.items() if k not in hidden}
    args["metadata"] = {k: meta[k] for k in _OWN_METADATA if k in meta}
    return Call(StepKind.LLM, str(kwargs.get("model")), args, agent), hidden


def _with(fn: Callable[..., Any], hidden: dict[str, Any]) -> Callable[..., Any]:
    """``fn`` given the call's args plus the keyword arguments kept out of them."""
    def call(**kwargs: Any) -> Any:
        return fn(**{**kwargs, **hidden})
    return call


def _normalise(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """litellm accepts model and messages positionally; the chain works on keywords."""
    names = ("model", "messages")
    return {**dict(zip(names, args, strict=False)), **kwargs}


def _read_whole(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a streamed call) read to its end, so the chain (the cassette, faults) gets the chunks."""
    def call(**kwargs: Any) -> Any:
        answer = fn(**kwargs)
        return Chunks(answer, answer) if hasattr(answer, "__next__") else answer
    return call


def _read_whole_async(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The async twin of :func:`_read_whole`."""
    async def call(**kwargs: Any) -> Any:
        answer = await fn(**kwargs)
        if hasattr(answer, "__anext__"):
            return Chunks([chunk async for chunk in answer], answer)
        return Chunks(answer, answer) if hasattr(answer, "__next__") else answer
    return call


def _finish(rec: Recorder, call: Call, outcome: CallOutcome, t_start: int) -> Any:
    """Record the call and return or raise its outcome.

    A streamed call was read whole inside the chain (so a cassette holds its chunks and replays
    them): its step is built from the joined chunks, and the caller iterates the same chunks.
    """
    streamed = outcome.error is None and call.args.get("stream") and isinstance(outcome.result, list)
    if not call.refused:   # a refused call never happened: the refusing interceptor says why
        recorded = outcome
        if streamed:
            chunks = outcome.result
            recorded = CallOutcome(litellm.stream_chunk_builder(chunks, messages=call.args.get("messages"))
                                   if chunks else None)
        _record_llm(rec, call, recorded, t_start, time.time_ns(), "wrapper")
    if outcome.error is not None:
        raise outcome.error
    return RecordedStream(outcome.result) if streamed else outcome.result


def _wrap_sync(original: Callable[..., Any]) -> Callable[..., Any]:
    def completion(*args: Any, **kwargs: Any) -> Any:
        rec = active_recorder()
        if rec is None:
            if runs_open():   # a thread that did not inherit a run's context: refused if a run needs the call
                refuse_unclaimed(_make_call(_normalise(args, kwargs))[0], "litellm.completion")
            return original(*args, **kwargs)
        call, hidden = _make_call(_normalise(args, kwargs))
        fn = _with(_escape.through(original), hidden)
        fn = _read_whole(fn) if call.args.get("stream") else fn
        t_start = time.time_ns()
        return _finish(rec, call, run_call(rec.chain, call, fn), t_start)
    completion.__wrapped__ = original  # type: ignore[attr-defined]
    completion.__doc__ = original.__doc__
    return completion


def _wrap_async(original: Callable[..., Any]) -> Callable[..., Any]:
    async def acompletion(*args: Any, **kwargs: Any) -> Any:
        rec = active_recorder()
        if rec is None:
            if runs_open():
                refuse_unclaimed(_make_call(_normalise(args, kwargs))[0], "litellm.acompletion")
            return await original(*args, **kwargs)
        call, hidden = _make_call(_normalise(args, kwargs))
        fn = _with(_escape.through_async(original), hidden)
        fn = _read_whole_async(fn) if call.args.get("stream") else fn
        t_start = time.time_ns()
        return _finish(rec, call, await run_call_async(rec.chain, call, fn), t_start)
    acompletion.__wrapped__ = original  # type: ignore[attr-defined]
    acompletion.__doc__ = original.__doc__
    return acompletion


class MatLiteLLMCallback(CustomLogger):
    """Records litellm calls that bypassed the wrapper (see the module docstring)."""

    def _record(self, kwargs: dict[str, Any], response: Any, error: BaseException | None,
                start: Any, end: Any) -> None:
        meta = _metadata(kwargs)
        if meta.get(_WRAPPED_FLAG):
            return  # the wrapper recorded it, in order
        rec = active_recorder()
        if rec is None or rec.closed:
            return
        t_start = int(start.timestamp() * 1e9) if hasattr(start, "timestamp") else time.time_ns()
        t_end = int(end.timestamp() * 1e9) if hasattr(end, "timestamp") else time.time_ns()
        named = meta.get("agent")
        agent = named if isinstance(named, str) and named else current_agent()
        call = Call(StepKind.LLM, str(kwargs.get("model")), {**kwargs, "metadata": meta}, agent)
        try:
            _record_llm(rec, call, CallOutcome(response, error), t_start, t_end, "callback")
        except Exception:  # a logging thread must never raise into litellm
            pass

    def log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                          end_time: Any) -> None:
        self._record(kwargs, response_obj, None, start_time, end_time)

    async def async_log_success_event(self, kwargs: dict[str, Any], response_obj: Any,
                                      start_time: Any, end_time: Any) -> None:
        self._record(kwargs, response_obj, None, start_time, end_time)

    def log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                          end_time: Any) -> None:
        error = kwargs.get("exception") or RuntimeError("litellm call failed")
        self._record(kwargs, None, error, start_time, end_time)

    async def async_log_failure_event(self, kwargs: dict[str, Any], response_obj: Any,
                                      start_time: Any, end_time: Any) -> None:
        self.log_failure_event(kwargs, response_obj, start_time, end_time)


def _originals(name: str) -> list[Any]:
    """The function objects a program may hold for ``litellm.<name>``: the public one and, where
    litellm's public function dispatches to it, ``litellm.main``'s."""
    found = [getattr(litellm, name)]
    main = sys.modules.get("litellm.main")
    inner = getattr(main, name, None) if main is not None else None
    if callable(inner) and inner is not found[0]:
        found.append(inner)
    return found


def instrument() -> None:
    """Route litellm calls made inside ``record()`` blocks through the interceptor chain, and
    register ``mattrace/scripted``.

    Wraps ``litellm.completion`` and ``litellm.acompletion``, rebinds the names other modules
    already imported them under, and guards litellm's call setup against calls through a
    reference it could not rebind (see :mod:`mattrace.integrations.litellm._escape`).
    Idempotent and thread-safe; ``mattrace.record()`` calls it when litellm is imported.
    """
    with _lock:
        if getattr(litellm, _STATE, None):
            return
        # the scripted test double is served as a litellm provider; it lives with the
        # other test doubles in mattrace.testing, named here so no layer imports a sibling
        importlib.import_module(SCRIPTED_PROVIDER).register_provider()
        callback = MatLiteLLMCallback()
        wrapped_sync, wrapped_async = _wrap_sync(litellm.completion), _wrap_async(litellm.acompletion)
        replacements = {**{id(f): wrapped_sync for f in _originals("completion")},
                        **{id(f): wrapped_async for f in _originals("acompletion")}}
        utils = sys.modules.get("litellm.utils")
        setup = getattr(utils, "function_setup", None)
        state: dict[str, Any] = {"completion": litellm.completion, "acompletion": litellm.acompletion,
                                 "callback": callback, "replacements": replacements, "setup": setup}
        setattr(litellm, _STATE, state)
        litellm.completion = wrapped_sync
        litellm.acompletion = wrapped_async
        litellm.callbacks = [*litellm.callbacks, callback]
        if utils is not None and callable(setup):
            utils.function_setup = _escape.guard(  # type: ignore[attr-defined]
                setup, lambda args, kwargs: _make_call(_normalise(args, kwargs))[0])
        state["rebound"] = _escape.rebind(replacements)


def uninstrument() -> None:
    """Undo :func:`instrument` (restores litellm's functions, the names it rebound and its call setup,
    and removes the callback)."""
    with _lock:
        state = getattr(litellm, _STATE, None)
        if not state:
            return
        litellm.completion = state["completion"]
        litellm.acompletion = state["acompletion"]
        litellm.callbacks = [c for c in litellm.callbacks if c is not state["callback"]]
        utils = sys.modules.get("litellm.utils")
        if utils is not None and state.get("setup") is not None:
            utils.function_setup = state["setup"]  # type: ignore[attr-defined]
        _escape.restore(state.get("rebound", []), state.get("replacements", {}))
        delattr(litellm, _STATE)


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in effect."""
    return bool(getattr(litellm, _STATE, None))
