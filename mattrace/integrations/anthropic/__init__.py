"""Anthropic SDK calls become ``llm`` steps through the interceptor chain.

:func:`instrument` wraps ``messages.create`` of the sync and async clients on their classes,
so every client instance and every import style goes through the run's chain: replayed
from the cassette, faulted with the SDK's own exceptions (``anthropic.APITimeoutError``,
``anthropic.RateLimitError``, ``anthropic.OverloadedError`` ... built around an HTTP request
and response of the HTTP library the SDK uses), governed, and recorded before the call
returns. ``stream=True`` calls are recorded and replayed too (see
:mod:`mattrace.integrations._sdk`).

``tool_use`` blocks are recorded in ``result["tool_calls"]`` (id, name, arguments),
``attrs["tool_calls_requested"]`` (names) and ``attrs["tool_call_ids"]`` (ids, same order).

What does not pass through the chain: ``messages.stream()`` and ``messages.parse()`` (they
post on their own) and ``with_raw_response`` / ``with_streaming_response`` calls. Inside a
``record()`` block they are judged as escaped calls (refused with
:class:`~mattrace.errors.EscapedCall` when the run replays, faults LLM calls or is governed);
``parse()`` and raw responses are otherwise made and recorded with ``attrs["recorded_via"]``,
``stream()`` is made and not recorded, with an :class:`~mattrace.errors.EscapedCallWarning`.
Use ``create(stream=True)`` to record a stream. See docs/llm-clients.md.
"""

from __future__ import annotations

import importlib
import threading
import warnings
from types import ModuleType
from typing import Any

import anthropic
from anthropic.resources.messages import AsyncMessages, Messages
from anthropic.types import Message, RawMessageStartEvent, RawMessageStopEvent

from mattrace.errors import EscapedCallWarning
from mattrace.integrations._sdk import Endpoint, wrap_async, wrap_sync, wrap_unintercepted
from mattrace.integrations._sdk_client import SDKClient
from mattrace.integrations.anthropic import _describe
from mattrace.recording.context import active_recorder, current_agent
from mattrace.recording.escapes import call_site, refuse_escape
from mattrace.recording.interceptors import Call
from mattrace.trace import StepKind

__all__ = ["instrument", "is_instrumented", "uninstrument"]

_lock = threading.Lock()
_STATE = "_mattrace_instrumentation"   # kept on the anthropic module: a re-imported copy of this one sees it


def _http() -> ModuleType:
    """The HTTP library this SDK version builds its requests with (httpx, or httpx2 in recent ones)."""
    base = importlib.import_module("anthropic._base_client")
    for name in ("httpx2", "httpx"):
        module = vars(base).get(name)
        if isinstance(module, ModuleType):
            return module
    return importlib.import_module("httpx")


def _refuse(call: Call) -> Any:
    message = Message.model_validate({
        "id": "msg_refused", "type": "message", "role": "assistant", "content": [], "stop_reason": "refusal",
        "model": str(call.args.get("model", call.target)), "usage": {"input_tokens": 0, "output_tokens": 0}})
    if call.args.get("stream"):
        start = message.model_copy(update={"stop_reason": None})
        delta = anthropic.types.RawMessageDeltaEvent.model_validate({
            "type": "message_delta", "delta": {"stop_reason": "refusal", "stop_sequence": None},
            "usage": {"output_tokens": 0}})
        return [RawMessageStartEvent(type="message_start", message=start), delta,
                RawMessageStopEvent(type="message_stop")]
    return message


def _client(resource: Any) -> SDKClient:
    base = str(getattr(getattr(resource, "_client", None), "base_url", "https://api.anthropic.com"))
    return SDKClient("anthropic", anthropic, _http(), base.rstrip("/") + "/v1/messages", _refuse)


_MESSAGES = Endpoint("anthropic.messages", _client, _describe.message_args, _describe.describe_message)


def _guard_stream(original: Any) -> Any:
    """``messages.stream()``: judged as an escaped call; made unrecorded, with a warning, when allowed."""
    def stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        rec = active_recorder()
        if rec is not None and not rec.closed:
            call = Call(StepKind.LLM, str(kwargs.get("model")), dict(kwargs), current_agent(), client=_client(self))
            refuse_escape(rec.interceptors, call, "anthropic messages.stream() is not intercepted",
                          "Use messages.create(stream=True), which is recorded and replayed.")
            warnings.warn(EscapedCallWarning(
                f"{call_site(2)}: anthropic messages.stream() bypasses mattrace's interceptor chain and is not "
                "recorded; use messages.create(stream=True) inside record() blocks"), stacklevel=2)
        return original(self, *args, **kwargs)
    stream.__wrapped__ = original  # type: ignore[attr-defined]
    stream.__doc__ = original.__doc__
    return stream


def instrument() -> None:
    """Route Anthropic SDK calls made inside ``record()`` blocks through the interceptor chain.

    Idempotent and thread-safe; ``mattrace.record()`` calls it when anthropic is imported.
    """
    with _lock:
        if getattr(anthropic, _STATE, None):
            return
        saved = []
        for cls, is_async in ((Messages, False), (AsyncMessages, True)):
            for name in ("create", "parse", "stream"):
                original = cls.__dict__.get(name)
                if original is None:
                    continue   # an SDK version without it
                if name == "create":
                    wrapped = (wrap_async if is_async else wrap_sync)(original, _MESSAGES)
                elif name == "parse":
                    wrapped = wrap_unintercepted(original, _MESSAGES, name, is_async)
                else:
                    wrapped = _guard_stream(original)
                saved.append((cls, name, original))
                setattr(cls, name, wrapped)
        setattr(anthropic, _STATE, saved)


def uninstrument() -> None:
    """Undo :func:`instrument`."""
    with _lock:
        for cls, name, original in getattr(anthropic, _STATE, None) or []:
            setattr(cls, name, original)
        if hasattr(anthropic, _STATE):
            delattr(anthropic, _STATE)


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in effect."""
    return bool(getattr(anthropic, _STATE, None))
