"""Anthropic answers as steps: a ``Message``, or the events of a streamed one.

Tool use is recorded as the OpenAI and litellm integrations record tool calls:
``result["tool_calls"]`` (id, name, input as arguments), ``attrs["tool_calls_requested"]``
(names, which link later tool steps to this one) and ``attrs["tool_call_ids"]`` (the
``tool_use`` ids, same order).
"""

from __future__ import annotations

import json
from typing import Any

from mattrace.integrations._sdk import Described, parse_arguments

__all__ = ["describe_message", "message_args"]

_SAMPLING = ("max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "tool_choice", "stream")


def message_args(params: dict[str, Any]) -> dict[str, Any]:
    """What a messages step records as its input: model, system prompt, messages, tool names, sampling."""
    args: dict[str, Any] = {"model": params.get("model"), "messages": list(params.get("messages") or [])}
    if params.get("system") is not None:
        args["system"] = params["system"]
    if params.get("tools"):
        args["tools"] = [t.get("name", t.get("type")) for t in params["tools"] if isinstance(t, dict)]
    for key in _SAMPLING:
        if params.get(key) is not None:
            args[key] = params[key]
    return args


def _stream(events: list[Any]) -> tuple[list[dict[str, Any]], Any, dict[str, int], Any, Any]:
    """Join the events of a streamed message: its content blocks, stop reason, usage, model and id."""
    blocks: dict[int, dict[str, Any]] = {}
    stop = model = ident = None
    usage = {"input": 0, "output": 0}
    for event in events:
        kind = getattr(event, "type", "")
        if kind == "message_start":
            message = event.message
            model, ident = message.model, message.id
            usage["input"] = getattr(message.usage, "input_tokens", 0) or 0
            usage["output"] = getattr(message.usage, "output_tokens", 0) or 0
        elif kind == "content_block_start":
            block = event.content_block
            blocks[event.index] = {"type": block.type, "text": getattr(block, "text", "") or "",
                                   "id": getattr(block, "id", None), "name": getattr(block, "name", None),
                                   "json": ""}
        elif kind == "content_block_delta":
            slot = blocks.setdefault(event.index, {"type": "text", "text": "", "json": ""})
            delta = event.delta
            if getattr(delta, "type", "") == "text_delta":
                slot["text"] += delta.text
            elif getattr(delta, "type", "") == "input_json_delta":
                slot["json"] += delta.partial_json
        elif kind == "message_delta":
            stop = getattr(event.delta, "stop_reason", None) or stop
            usage["output"] = getattr(event.usage, "output_tokens", None) or usage["output"]
    content = []
    for _, block in sorted(blocks.items()):
        if block["type"] == "tool_use":
            content.append({"type": "tool_use", "id": block["id"], "name": block["name"],
                            "input": parse_arguments(block["json"] or "{}")})
        elif block["type"] == "text":
            content.append({"type": "text", "text": block["text"]})
    return content, stop, usage, model, ident


def describe_message(answer: Any) -> Described:
    """A ``Message`` (or the events of a streamed one) as text, result and attrs."""
    if isinstance(answer, list):
        content, stop, usage, model, ident = _stream(answer)
    else:
        content = [block.model_dump(mode="json") if hasattr(block, "model_dump") else dict(block)
                   for block in answer.content or []]
        stop, model, ident = answer.stop_reason, answer.model, answer.id
        usage = {"input": getattr(answer.usage, "input_tokens", 0) or 0,
                 "output": getattr(answer.usage, "output_tokens", 0) or 0}
    texts = [b.get("text") or "" for b in content if b.get("type") == "text"]
    text = "".join(texts) if texts else None
    tool_calls = [{"id": b.get("id"), "name": b.get("name"),
                   "arguments": b.get("input") if not isinstance(b.get("input"), str) else json.loads(b["input"])}
                  for b in content if b.get("type") == "tool_use"]
    result: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        result["tool_calls"] = tool_calls
    if stop:
        result["stop_reason"] = stop
    attrs: dict[str, Any] = {"model": model, "provider": "anthropic",
                             "tokens": {"prompt": usage["input"], "completion": usage["output"],
                                        "total": usage["input"] + usage["output"]}}
    if tool_calls:
        attrs["tool_calls_requested"] = [tc["name"] for tc in tool_calls]
        attrs["tool_call_ids"] = [tc["id"] for tc in tool_calls]
    if ident:
        attrs["response_id"] = ident
    return text, result, attrs
