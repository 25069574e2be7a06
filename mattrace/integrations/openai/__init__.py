"""OpenAI SDK calls become ``llm`` steps through the interceptor chain.

:func:`instrument` wraps, on their classes, ``chat.completions.create`` and
``responses.create`` of the sync and async clients, so every client instance and every
import style goes through the run's chain: replayed from the cassette, faulted with the
SDK's own exceptions (``openai.APITimeoutError``, ``openai.RateLimitError`` ... built around
an HTTP request and response as the SDK builds them), governed, and recorded before the
call returns. ``stream=True`` calls and the ``stream()`` helpers built on them are recorded
and replayed too (see :mod:`mattrace.integrations._sdk`).

Requested tool calls are recorded in ``result["tool_calls"]`` (id, name, arguments),
``attrs["tool_calls_requested"]`` (names) and ``attrs["tool_call_ids"]`` (ids, same order).

What does not pass through the chain: ``parse()`` (it posts on its own) and
``with_raw_response`` / ``with_streaming_response`` calls. Inside a ``record()`` block they
are judged as escaped calls (refused with :class:`~mattrace.errors.EscapedCall` when the run
replays, faults LLM calls or is governed), else made and recorded with
``attrs["recorded_via"]``. See docs/llm-clients.md.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import openai
from openai.resources.chat.completions import AsyncCompletions, Completions
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from mattrace.integrations._sdk import Endpoint, wrap_async, wrap_sync, wrap_unintercepted
from mattrace.integrations._sdk_client import SDKClient
from mattrace.integrations.openai import _describe
from mattrace.recording.interceptors import Call

__all__ = ["instrument", "is_instrumented", "uninstrument"]

_lock = threading.Lock()
_STATE = "_mattrace_instrumentation"   # kept on the openai module: a re-imported copy of this one sees it


def _refuse_chat(call: Call) -> Any:
    model = str(call.args.get("model", call.target))
    if call.args.get("stream"):
        return [ChatCompletionChunk.model_validate({
            "id": "chatcmpl-refused", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": "content_filter"}]})]
    return ChatCompletion.model_validate({
        "id": "chatcmpl-refused", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "finish_reason": "content_filter",
                     "message": {"role": "assistant", "content": None}}]})


def _refuse_responses(call: Call) -> Any:
    from openai.types.responses import Response, ResponseCompletedEvent

    response = Response.model_validate({
        "id": "resp_refused", "object": "response", "created_at": time.time(), "status": "completed",
        "model": str(call.args.get("model", call.target)), "parallel_tool_calls": False, "tool_choice": "auto",
        "tools": [], "output": [{"type": "message", "id": "msg_refused", "role": "assistant", "status": "completed",
                                 "content": [{"type": "refusal", "refusal": "The model declined to answer."}]}]})
    if call.args.get("stream"):
        return [ResponseCompletedEvent(type="response.completed", response=response, sequence_number=0)]
    return response


def _client(path: str, refuse: Any) -> Any:
    def build(resource: Any) -> SDKClient:
        base = str(getattr(getattr(resource, "_client", None), "base_url", "https://api.openai.com/v1/"))
        return SDKClient("openai", openai, httpx, base.rstrip("/") + path, refuse)
    return build


_CHAT = Endpoint("openai.chat.completions", _client("/chat/completions", _refuse_chat), _describe.chat_args,
                 _describe.describe_chat)
_RESPONSES = Endpoint("openai.responses", _client("/responses", _refuse_responses), _describe.responses_args,
                      _describe.describe_responses)


def _methods() -> list[tuple[type, str, Endpoint, bool, bool]]:
    """(class, method, endpoint, async, through the chain) of every method this SDK version has."""
    found: list[tuple[type, str, Endpoint, bool, bool]] = [
        (Completions, "create", _CHAT, False, True), (AsyncCompletions, "create", _CHAT, True, True),
        (Completions, "parse", _CHAT, False, False), (AsyncCompletions, "parse", _CHAT, True, False)]
    try:   # the Responses API (openai >= 1.66)
        from openai.resources.responses import AsyncResponses, Responses
    except ImportError:
        return found
    return [*found, (Responses, "create", _RESPONSES, False, True), (AsyncResponses, "create", _RESPONSES, True, True),
            (Responses, "parse", _RESPONSES, False, False), (AsyncResponses, "parse", _RESPONSES, True, False)]


def instrument() -> None:
    """Route OpenAI SDK calls made inside ``record()`` blocks through the interceptor chain.

    Idempotent and thread-safe; ``mattrace.record()`` calls it when openai is imported.
    """
    with _lock:
        if getattr(openai, _STATE, None):
            return
        saved = []
        for cls, name, endpoint, is_async, chained in _methods():
            original = cls.__dict__.get(name)
            if original is None:
                continue   # an SDK version without it
            if chained:
                wrapped = (wrap_async if is_async else wrap_sync)(original, endpoint)
            else:
                wrapped = wrap_unintercepted(original, endpoint, name, is_async)
            saved.append((cls, name, original))
            setattr(cls, name, wrapped)
        setattr(openai, _STATE, saved)


def uninstrument() -> None:
    """Undo :func:`instrument`."""
    with _lock:
        for cls, name, original in getattr(openai, _STATE, None) or []:
            setattr(cls, name, original)
        if hasattr(openai, _STATE):
            delattr(openai, _STATE)


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in effect."""
    return bool(getattr(openai, _STATE, None))
