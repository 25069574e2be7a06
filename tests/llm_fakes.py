"""Fake OpenAI and Anthropic APIs behind the SDKs' own HTTP transports (no network).

Each fake is an ``httpx.MockTransport`` handler (``httpx2`` for Anthropic SDKs built on it)
that answers like the real API: JSON for plain calls, server-sent events for ``stream=True``,
and counts the requests it served, so a test can tell a replayed call from a real one.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import anthropic
import httpx
import openai


def anthropic_http() -> ModuleType:
    """The HTTP library the installed Anthropic SDK is built on (httpx, or httpx2 in recent versions)."""
    base = importlib.import_module("anthropic._base_client")
    return next(m for m in (vars(base).get("httpx2"), vars(base).get("httpx")) if isinstance(m, ModuleType))


def _sse(events: list[tuple[str | None, dict[str, Any]]], done: bool) -> str:
    lines = [(f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n" for name, data in events]
    return "".join(lines) + ("data: [DONE]\n\n" if done else "")


@dataclass
class FakeOpenAI:
    """Answers chat completions with a tool call (or ``text``), and responses with ``text``."""

    text: str = "Hello there"
    tool: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        if request.url.path.endswith("/responses"):
            return self._responses(body)
        if body.get("stream"):
            base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
            half = len(self.text) // 2
            events: list[tuple[str | None, dict[str, Any]]] = [
                (None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": self.text[:half]},
                                             "finish_reason": None}]}),
                (None, {**base, "choices": [{"index": 0, "delta": {"content": self.text[half:]},
                                             "finish_reason": "stop"}]})]
            return httpx.Response(200, text=_sse(events, True), headers={"content-type": "text/event-stream"})
        message: dict[str, Any] = {"role": "assistant", "content": None if self.tool else self.text}
        if self.tool:
            message["tool_calls"] = [{"id": "call_42", "type": "function", "function": {
                "name": self.tool, "arguments": json.dumps({"to": "ana@example.com"})}}]
        return httpx.Response(200, json={
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if self.tool else "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})

    def _responses(self, body: dict[str, Any]) -> httpx.Response:
        output: list[dict[str, Any]] = [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                                         "content": [{"type": "output_text", "text": self.text, "annotations": []}]}]
        if self.tool:
            output.append({"type": "function_call", "id": "fc_1", "call_id": "call_7", "name": self.tool,
                           "arguments": json.dumps({"to": "ana@example.com"}), "status": "completed"})
        response = {"id": "resp_1", "object": "response", "created_at": 1, "model": body["model"],
                    "status": "completed", "output": output, "parallel_tool_calls": True, "tool_choice": "auto",
                    "tools": [],
                    "usage": {"input_tokens": 4, "output_tokens": 6, "total_tokens": 10,
                              "input_tokens_details": {"cached_tokens": 0},
                              "output_tokens_details": {"reasoning_tokens": 0}}}
        if not body.get("stream"):
            return httpx.Response(200, json=response)
        message = {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress", "content": []}
        events: list[tuple[str | None, dict[str, Any]]] = [
            ("response.created", {"type": "response.created", "sequence_number": 0,
                                  "response": {**response, "status": "in_progress", "output": []}}),
            ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0,
                                            "item": message, "sequence_number": 1}),
            ("response.content_part.added", {"type": "response.content_part.added", "item_id": "msg_1",
                                             "output_index": 0, "content_index": 0, "sequence_number": 2,
                                             "part": {"type": "output_text", "text": "", "annotations": []}}),
            ("response.output_text.delta", {"type": "response.output_text.delta", "item_id": "msg_1",
                                            "output_index": 0, "content_index": 0, "delta": self.text,
                                            "sequence_number": 3, "logprobs": []}),
            ("response.completed", {"type": "response.completed", "response": response, "sequence_number": 4})]
        return httpx.Response(200, text=_sse(events, False), headers={"content-type": "text/event-stream"})

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(api_key="sk-test", max_retries=0,
                             http_client=httpx.Client(transport=httpx.MockTransport(self)))

    def async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(api_key="sk-test", max_retries=0,
                                  http_client=httpx.AsyncClient(transport=httpx.MockTransport(self)))


@dataclass
class FakeAnthropic:
    """Answers messages with ``text``, plus a ``tool_use`` block when ``tool`` is set."""

    text: str = "Hi there"
    tool: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: Any) -> Any:
        http = anthropic_http()
        body = json.loads(request.content)
        self.requests.append(body)
        content: list[dict[str, Any]] = [{"type": "text", "text": self.text}]
        if self.tool:
            content.append({"type": "tool_use", "id": "toolu_9", "name": self.tool, "input": {"to": "ana@example.com"}})
        usage = {"input_tokens": 3, "output_tokens": 4}
        if not body.get("stream"):
            return http.Response(200, json={"id": "msg_1", "type": "message", "role": "assistant",
                                            "model": body["model"], "content": content, "usage": usage,
                                            "stop_reason": "tool_use" if self.tool else "end_turn",
                                            "stop_sequence": None})
        half = len(self.text) // 2
        events: list[tuple[str | None, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": body["model"],
                "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}}}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": self.text[:half]}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": self.text[half:]}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0})]
        if self.tool:
            events += [
                ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
                    "type": "tool_use", "id": "toolu_9", "name": self.tool, "input": {}}}),
                ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
                    "type": "input_json_delta", "partial_json": json.dumps({"to": "ana@example.com"})}}),
                ("content_block_stop", {"type": "content_block_stop", "index": 1})]
        events += [("message_delta", {"type": "message_delta", "usage": {"output_tokens": 4},
                                      "delta": {"stop_reason": "tool_use" if self.tool else "end_turn",
                                                "stop_sequence": None}}),
                   ("message_stop", {"type": "message_stop"})]
        return http.Response(200, text=_sse(events, False), headers={"content-type": "text/event-stream"})

    def client(self) -> anthropic.Anthropic:
        http = anthropic_http()
        return anthropic.Anthropic(api_key="test-key", max_retries=0,
                                   http_client=http.Client(transport=http.MockTransport(self)))

    def async_client(self) -> anthropic.AsyncAnthropic:
        http = anthropic_http()
        return anthropic.AsyncAnthropic(api_key="test-key", max_retries=0,
                                        http_client=http.AsyncClient(transport=http.MockTransport(self)))
