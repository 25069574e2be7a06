"""LLM calls through litellm become ``llm`` steps.

Two mechanisms, because litellm offers no single hook that is both complete and ordered:

* **The completion wrapper** (primary). :func:`instrument` replaces ``litellm.completion``
  and ``litellm.acompletion`` with wrappers that run the call through the recorder's
  interceptor chain (so replay, faults and governance apply to LLM calls like to any
  boundary) and record the step *before returning the response*. The step therefore
  precedes the tool call its answer causes, as it happened.
* **The callback** (fallback). litellm's success callbacks run on a logging thread pool
  or as a later task, are best-effort (dropped under load), and custom providers never
  fire ``log_pre_api_call``; they cannot order steps. :class:`MatLiteLLMCallback` records
  only calls that bypassed the wrapper (code that did ``from litellm import completion``
  before :func:`instrument` ran, frameworks holding their own reference) and marks those
  steps ``attrs["recorded_via"] = "callback"``.

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
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger

from mattrace.recording.context import active_recorder, current_agent
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


def _make_call(kwargs: dict[str, Any]) -> Call:
    meta = dict(_metadata(kwargs))
    named = meta.get("agent")
    agent = named if isinstance(named, str) and named else current_agent()
    meta[_WRAPPED_FLAG] = True
    meta["agent"] = agent  # providers and callbacks see who asked
    return Call(StepKind.LLM, str(kwargs.get("model")), {**kwargs, "metadata": meta}, agent)


def _normalise(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """litellm accepts model and messages positionally; the chain works on keywords."""
    names = ("model", "messages")
    return {**dict(zip(names, args, strict=False)), **kwargs}


class _RecordingStream:
    """Passes a streamed response through, chunk by chunk, and records the step at its end.

    Works as both a sync and an async iterator, like litellm's own stream wrapper, and
    forwards every other attribute to it.
    """

    def __init__(self, stream: Any, rec: Recorder, call: Call, t_start: int) -> None:
        self._stream, self._rec, self._call, self._t_start = stream, rec, call, t_start
        self._chunks: list[Any] = []
        self._done = False

    def _finish(self, error: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        response = None
        if error is None and self._chunks:
            response = litellm.stream_chunk_builder(self._chunks, messages=self._call.args.get("messages"))
        _record_llm(self._rec, self._call, CallOutcome(response, error), self._t_start,
                    time.time_ns(), "wrapper")

    def __iter__(self) -> _RecordingStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._stream)
        except StopIteration:
            self._finish()
            raise
        except Exception as exc:
            self._finish(exc)
            raise
        self._chunks.append(chunk)
        return chunk

    def __aiter__(self) -> _RecordingStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._finish()
            raise
        except Exception as exc:
            self._finish(exc)
            raise
        self._chunks.append(chunk)
        return chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _finish(rec: Recorder, call: Call, outcome: CallOutcome, t_start: int) -> Any:
    """Record the call (a stream: once it is consumed) and return or raise its outcome."""
    if outcome.error is None and call.args.get("stream"):
        return _RecordingStream(outcome.result, rec, call, t_start)
    if not call.refused:   # a refused call never happened: the refusing interceptor says why
        _record_llm(rec, call, outcome, t_start, time.time_ns(), "wrapper")
    if outcome.error is not None:
        raise outcome.error
    return outcome.result


def _wrap_sync(original: Callable[..., Any]) -> Callable[..., Any]:
    def completion(*args: Any, **kwargs: Any) -> Any:
        rec = active_recorder()
        if rec is None:
            return original(*args, **kwargs)
        call = _make_call(_normalise(args, kwargs))
        t_start = time.time_ns()
        return _finish(rec, call, run_call(rec.interceptors, call, original), t_start)
    completion.__wrapped__ = original  # type: ignore[attr-defined]
    completion.__doc__ = original.__doc__
    return completion


def _wrap_async(original: Callable[..., Any]) -> Callable[..., Any]:
    async def acompletion(*args: Any, **kwargs: Any) -> Any:
        rec = active_recorder()
        if rec is None:
            return await original(*args, **kwargs)
        call = _make_call(_normalise(args, kwargs))
        t_start = time.time_ns()
        return _finish(rec, call, await run_call_async(rec.interceptors, call, original), t_start)
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


def instrument() -> None:
    """Record litellm calls made inside ``record()`` blocks, and register ``mattrace/scripted``.

    Idempotent and thread-safe; ``mattrace.record()`` calls it when litellm is imported.
    """
    with _lock:
        if getattr(litellm, _STATE, None):
            return
        # the scripted test double is served as a litellm provider; it lives with the
        # other test doubles in mattrace.testing, named here so no layer imports a sibling
        importlib.import_module(SCRIPTED_PROVIDER).register_provider()
        callback = MatLiteLLMCallback()
        setattr(litellm, _STATE, {"completion": litellm.completion, "acompletion": litellm.acompletion,
                                  "callback": callback})
        litellm.completion = _wrap_sync(litellm.completion)
        litellm.acompletion = _wrap_async(litellm.acompletion)
        litellm.callbacks = [*litellm.callbacks, callback]


def uninstrument() -> None:
    """Undo :func:`instrument` (restores litellm's functions and removes the callback)."""
    with _lock:
        state = getattr(litellm, _STATE, None)
        if not state:
            return
        litellm.completion = state["completion"]
        litellm.acompletion = state["acompletion"]
        litellm.callbacks = [c for c in litellm.callbacks if c is not state["callback"]]
        delattr(litellm, _STATE)


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in effect."""
    return bool(getattr(litellm, _STATE, None))
