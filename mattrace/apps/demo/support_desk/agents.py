"""A plain tool-calling agent loop on litellm: what most orchestrators boil down to."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import litellm

import mattrace

__all__ = [
    "MAX_TURNS",
    "run_agent",
]

MAX_TURNS = 6


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    return value


def run_agent(name: str, system: str, task: str, *, model: str,
              tools: dict[str, Callable[..., Any]], specs: list[dict[str, Any]]) -> str:
    """Let agent ``name`` work on ``task`` with ``tools`` until it answers in text.

    Tool errors go back to the model as tool results (as real agents do), so a failing
    tool never crashes the run; the loop stops after MAX_TURNS model calls.
    """
    messages: list[dict[str, Any]] = [{"role": "system", "content": system},
                                      {"role": "user", "content": task}]
    with mattrace.agent(name):
        for _ in range(MAX_TURNS):
            response = litellm.completion(model=model, messages=messages, tools=specs or None,
                                          temperature=0, metadata={"agent": name})
            message = response.choices[0].message
            calls = message.tool_calls or []
            if not calls:
                return message.content or ""
            messages.append({"role": "assistant", "content": message.content, "tool_calls": [
                {"id": c.id, "type": "function",
                 "function": {"name": c.function.name, "arguments": c.function.arguments}}
                for c in calls]})
            for call in calls:
                with mattrace.tool_call_id(call.id):   # the tool step reads the request it answers
                    result = _run_tool(tools, call.function.name, call.function.arguments)
                messages.append({"role": "tool", "tool_call_id": call.id, "name": call.function.name,
                                 "content": result})
    return f"({name} stopped after {MAX_TURNS} turns without an answer)"


def _run_tool(tools: dict[str, Callable[..., Any]], name: str, arguments: str | None) -> str:
    tool = tools.get(name)
    if tool is None:
        return json.dumps({"error": f"unknown tool {name!r}"})
    try:
        result = tool(**json.loads(arguments or "{}"))
    except Exception as exc:  # the model sees the error and may recover
        return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
    return json.dumps(_jsonable(result))
