"""One Agents SDK span read as the SpanRecord an OTel span would have been, with its step's extras.

Each SDK span type (generation, response, function, agent, handoff, guardrail, custom ...)
maps onto the GenAI attribute names :mod:`mattrace.integrations.otel` reads; what those
names cannot carry (the tool calls a model asked for, an agent's task, a handoff's ends, a
message step's text) travels alongside in :class:`_Converted`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mattrace.integrations.otel import names
from mattrace.integrations.otel.spans import SpanRecord, json_value
from mattrace.recording.jsonable import to_jsonable


@dataclass
class _Converted:
    """A span read from the SDK, with what the step needs beyond the GenAI attributes."""

    record: SpanRecord
    type: str
    attrs: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    """(call id, tool name, arguments) of the tool calls an llm span asked for."""
    tool: tuple[str, Any] | None = None
    """(name, arguments) of a function span."""
    task: str | None = None
    answer: str | None = None
    """An llm span's latest user message and the text it answered."""
    agent: str | None = None
    handoff: tuple[str | None, str | None] | None = None
    message: tuple[str, str | None] | None = None
    """(target, content) of a span read as a ``message`` step."""


def _plain(value: Any) -> Any:
    """SDK data (pydantic models, TypedDicts, tuples) as plain JSON-able data."""
    return to_jsonable(value)


def _json(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, ensure_ascii=False)


def _text_parts(content: Any) -> list[dict[str, Any]]:
    """Message content (a string, or a list of chat / Responses content parts) as GenAI text parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    if not isinstance(content, list):
        return [{"type": "text", "content": _json(content)}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            parts.append({"type": "text", "content": part})
        elif isinstance(part, dict):
            text = part.get("text", part.get("refusal"))
            if isinstance(text, str):
                parts.append({"type": "text", "content": text})
    return parts


def _message(item: Any) -> dict[str, Any] | None:
    """One input or output item, in chat form or Responses form, as a GenAI message (role + parts)."""
    item = _plain(item)
    if isinstance(item, str):
        return {"role": "user", "parts": _text_parts(item)}
    if not isinstance(item, dict):
        return None
    kind = item.get("type")
    if kind == "function_call":
        return {"role": "assistant", "parts": [{"type": "tool_call", "id": item.get("call_id"),
                                                "name": item.get("name"), "arguments": item.get("arguments")}]}
    if kind == "function_call_output":
        output = item.get("output")
        if isinstance(output, list):
            output = "\n".join(p["content"] for p in _text_parts(output))
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": item.get("call_id"),
                                           "response": output}]}
    if kind not in (None, "message") or "role" not in item:
        return None   # reasoning, hosted tool calls (web search, file search, ...)
    role = str(item.get("role") or "user")
    if role == "tool":   # chat form
        text = "\n".join(p["content"] for p in _text_parts(item.get("content")))
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": item.get("tool_call_id"),
                                           "response": text}]}
    parts = _text_parts(item.get("content"))
    if isinstance(item.get("refusal"), str):
        parts.append({"type": "text", "content": item["refusal"]})
    for call in item.get("tool_calls") or ():
        if isinstance(call, dict):
            fn = call.get("function") or {}
            parts.append({"type": "tool_call", "id": call.get("id"), "name": fn.get("name", call.get("name")),
                          "arguments": fn.get("arguments", call.get("arguments"))})
    return {"role": role, "parts": parts}


def _messages(items: Any) -> list[dict[str, Any]]:
    """Input or output items as GenAI messages; a tool call joins the assistant message before it."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    out: list[dict[str, Any]] = []
    for item in items if isinstance(items, list | tuple) else [items]:
        message = _message(item)
        if message is None:
            continue
        calls_only = all(p.get("type") == "tool_call" for p in message["parts"])
        if message["role"] == "assistant" and calls_only and out and out[-1]["role"] == "assistant":
            out[-1]["parts"].extend(message["parts"])
        else:
            out.append(message)
    return out


def _reply(items: Any) -> list[dict[str, Any]]:
    """A model call's output items as the one assistant message they are."""
    messages = _messages(items)
    if len(messages) <= 1:
        return messages
    return [{"role": "assistant", "parts": [p for m in messages for p in m["parts"]]}]


def _usage(attributes: dict[str, Any], usage: Any) -> None:
    usage = _plain(usage)
    if not isinstance(usage, dict):
        return
    prompt = usage.get("input_tokens", usage.get("prompt_tokens"))
    completion = usage.get("output_tokens", usage.get("completion_tokens"))
    if prompt is not None:
        attributes[names.INPUT_TOKENS[0]] = prompt
    if completion is not None:
        attributes[names.OUTPUT_TOKENS[0]] = completion
    if usage.get("total_tokens"):
        attributes[names.OI_TOTAL_TOKENS] = usage["total_tokens"]
    details = usage.get("input_tokens_details") or usage.get("prompt_tokens_details")
    if isinstance(details, dict) and details.get("cached_tokens"):
        attributes[names.CACHE_READ_TOKENS[0]] = details["cached_tokens"]


def _text_of(message: dict[str, Any]) -> str | None:
    return "\n".join(p["content"] for p in message["parts"] if p.get("type") == "text") or None


def _llm(out: _Converted, inputs: list[dict[str, Any]], reply: list[dict[str, Any]]) -> None:
    attributes = out.record.attributes
    attributes[names.INPUT_MESSAGES] = _json(inputs)
    attributes[names.OUTPUT_MESSAGES] = _json(reply)
    out.calls = _requested(reply)
    out.task = next((_text_of(m) for m in reversed(inputs) if m["role"] == "user"), None)
    out.answer = _text_of(reply[-1]) if reply else None


def _requested(reply: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return [(str(p["id"]), str(p.get("name")), json_value(p.get("arguments")))
            for m in reply for p in m["parts"] if p.get("type") == "tool_call" and p.get("id")]


def _convert(span: Any, span_id: int, parent_id: int | None, trace_id: int, start: int, end: int | None,
             still_open: bool = False) -> _Converted:
    """The SpanRecord (GenAI attribute names) of one SDK span, and the extras of its step."""
    data = span.span_data
    kind = str(getattr(data, "type", "") or "unknown")
    attributes: dict[str, Any] = {"openai_agents.span.type": kind}
    record = SpanRecord(trace_id=trace_id, span_id=span_id, parent_id=parent_id, name=kind, start=start,
                        end=end, attributes=attributes, open=still_open)
    error = getattr(span, "error", None)
    if isinstance(error, dict):
        detail = error.get("data") if isinstance(error.get("data"), dict) else {}
        record.error = str(error.get("message") or "error")
        if detail and detail.get("error"):
            record.error = f"{record.error}: {detail['error']}"
    out = _Converted(record, kind)
    if kind == "generation":
        attributes[names.OPERATION] = "chat"
        record.name = f"chat {data.model or ''}".strip()
        if data.model:
            attributes[names.REQUEST_MODEL] = str(data.model)
        _llm(out, _messages(data.input), _reply(data.output))
        _usage(attributes, data.usage)
        if data.model_config:
            out.attrs["model_config"] = _plain(dict(data.model_config))
    elif kind == "response":
        response = data.response
        attributes[names.OPERATION] = "chat"
        attributes[names.PROVIDER] = "openai"
        model = getattr(response, "model", None)
        record.name = f"chat {model or ''}".strip()
        if model:
            attributes[names.RESPONSE_MODEL] = str(model)
        instructions = getattr(response, "instructions", None)
        if isinstance(instructions, str) and instructions:
            attributes[names.SYSTEM_INSTRUCTIONS] = _json([{"type": "text", "content": instructions}])
        _llm(out, _messages(data.input), _reply(getattr(response, "output", None)))
        _usage(attributes, data.usage if data.usage is not None else getattr(response, "usage", None))
        if getattr(response, "id", None):
            out.attrs["response_id"] = str(response.id)
    elif kind == "function":
        name = str(data.name)
        record.name = f"execute_tool {name}"
        attributes[names.OPERATION] = "execute_tool"
        attributes[names.TOOL_NAME] = name
        if data.input is not None:
            attributes[names.TOOL_CALL_ARGUMENTS] = str(data.input)
        if data.output is not None:
            output = data.output
            attributes[names.TOOL_CALL_RESULT] = output if isinstance(output, str) else _json(output)
        out.tool = (name, json_value(data.input) if data.input else None)
        if data.mcp_data:
            out.attrs["mcp"] = _plain(data.mcp_data)
    elif kind == "agent":
        out.agent = str(data.name)
        record.name = f"invoke_agent {out.agent}"
        attributes[names.OPERATION] = "invoke_agent"
        attributes[names.AGENT_NAME] = out.agent
        described = {"tools": data.tools, "handoffs": data.handoffs, "output_type": data.output_type}
        out.attrs["agent"] = {k: _plain(v) for k, v in described.items() if v}
    elif kind == "handoff":
        out.handoff = (data.from_agent, data.to_agent)
        record.name = f"handoff {data.from_agent} -> {data.to_agent}"
        attributes[names.OPERATION] = "invoke_agent"
        attributes[names.AGENT_NAME] = str(data.to_agent or "unknown agent")
        out.attrs["handoff"] = {"from": data.from_agent, "to": data.to_agent}
    elif kind == "guardrail":
        record.name = f"guardrail {data.name}"
        verdict = "triggered" if data.triggered else "passed"
        out.message = (str(data.name), f"guardrail {data.name}: {verdict}")
        out.attrs["guardrail"] = {"name": data.name, "triggered": bool(data.triggered)}
    else:   # custom, mcp_tools, transcription, speech, ... and types this module does not know
        exported = _plain(data.export()) if hasattr(data, "export") else {}
        exported = exported if isinstance(exported, dict) else {"data": exported}
        exported.pop("type", None)
        label = str(getattr(data, "name", None) or kind)
        record.name = f"{kind} {label}" if label != kind else kind
        out.message = (label, None)
        out.attrs["data"] = exported.get("data", exported) if kind == "custom" else exported
    return out
