"""OpenAI answers as steps: chat completions and responses, whole or as the chunks of a stream.

Tool calls the model requests are recorded twice over, as the litellm integration does:
``result["tool_calls"]`` (id, name, parsed arguments) and ``attrs["tool_calls_requested"]``
(the names, which the recorder uses to link each later tool step to the LLM step that asked
for it), plus ``attrs["tool_call_ids"]``, the call ids in the same order.
"""

from __future__ import annotations

from typing import Any

from mattrace.integrations._sdk import Described, parse_arguments

__all__ = ["chat_args", "describe_chat", "describe_responses", "responses_args"]

_SAMPLING = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "max_output_tokens", "seed",
             "tool_choice", "response_format", "stop", "n", "reasoning_effort", "stream")


def _tool_names(tools: Any) -> list[Any]:
    names = []
    for tool in tools or []:
        if isinstance(tool, dict):
            fn = tool.get("function")
            names.append(fn.get("name") if isinstance(fn, dict) else tool.get("name", tool.get("type")))
    return names


def _sampling(params: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    for key in _SAMPLING:
        if params.get(key) is not None:
            args[key] = params[key]
    return args


def chat_args(params: dict[str, Any]) -> dict[str, Any]:
    """What a chat-completions step records as its input."""
    args: dict[str, Any] = {"model": params.get("model"), "messages": list(params.get("messages") or [])}
    if params.get("tools"):
        args["tools"] = _tool_names(params["tools"])
    return _sampling(params, args)


def responses_args(params: dict[str, Any]) -> dict[str, Any]:
    """What a responses step records as its input."""
    args: dict[str, Any] = {"model": params.get("model"), "input": params.get("input")}
    if params.get("instructions") is not None:
        args["instructions"] = params["instructions"]
    if params.get("tools"):
        args["tools"] = _tool_names(params["tools"])
    return _sampling(params, args)


def _tool_attrs(tool_calls: list[dict[str, Any]], attrs: dict[str, Any]) -> None:
    if tool_calls:
        attrs["tool_calls_requested"] = [tc["name"] for tc in tool_calls]
        attrs["tool_call_ids"] = [tc["id"] for tc in tool_calls]


def _usage(usage: Any, prompt: str, completion: str) -> dict[str, int] | None:
    if usage is None:
        return None
    p = getattr(usage, prompt, 0) or 0
    c = getattr(usage, completion, 0) or 0
    return {"prompt": p, "completion": c, "total": getattr(usage, "total_tokens", 0) or p + c}


def _chat_stream(chunks: list[Any]) -> tuple[str | None, list[dict[str, Any]], Any, Any, Any, Any]:
    """Join the chunks of a streamed chat completion: text, tool calls, finish reason, usage, model, id."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish = usage = model = ident = None
    for chunk in chunks:
        model, ident = getattr(chunk, "model", model), getattr(chunk, "id", ident)
        usage = getattr(chunk, "usage", None) or usage
        for choice in getattr(chunk, "choices", None) or []:
            if getattr(choice, "index", 0) != 0:
                continue
            delta = choice.delta
            if delta.content:
                text.append(delta.content)
            for tc in delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                slot["id"] = tc.id or slot["id"]
                if tc.function is not None:
                    slot["name"] = tc.function.name or slot["name"]
                    slot["arguments"] += tc.function.arguments or ""
            finish = choice.finish_reason or finish
    tool_calls = [{**c, "arguments": parse_arguments(c["arguments"])} for _, c in sorted(calls.items())]
    return ("".join(text) if text else None), tool_calls, finish, usage, model, ident


def describe_chat(answer: Any) -> Described:
    """A ``ChatCompletion`` (or the chunks of a streamed one) as text, result and attrs."""
    if isinstance(answer, list):
        text, tool_calls, finish, usage, model, ident = _chat_stream(answer)
    else:
        choice = answer.choices[0] if answer.choices else None
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None)
        tool_calls = [{"id": tc.id, "name": tc.function.name, "arguments": parse_arguments(tc.function.arguments)}
                      for tc in getattr(message, "tool_calls", None) or [] if getattr(tc, "function", None)]
        finish, usage, model, ident = getattr(choice, "finish_reason", None), answer.usage, answer.model, answer.id
    result: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        result["tool_calls"] = tool_calls
    if finish:
        result["finish_reason"] = finish
    attrs: dict[str, Any] = {"model": model, "provider": "openai"}
    tokens = _usage(usage, "prompt_tokens", "completion_tokens")
    if tokens is not None:
        attrs["tokens"] = tokens
    _tool_attrs(tool_calls, attrs)
    if ident:
        attrs["response_id"] = ident
    return text, result, attrs


def describe_responses(answer: Any) -> Described:
    """A ``Response`` (or the events of a streamed one, whose ``response.completed`` event holds
    the whole response) as text, result and attrs."""
    if isinstance(answer, list):
        done = [e.response for e in answer if getattr(e, "type", "") in ("response.completed", "response.incomplete",
                                                                          "response.failed")]
        if not done:
            deltas = [e.delta for e in answer if getattr(e, "type", "") == "response.output_text.delta"]
            text = "".join(deltas) or None
            return text, {"role": "assistant", "content": text}, {"provider": "openai", "incomplete_stream": True}
        answer = done[-1]
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for item in answer.output or []:
        if item.type == "message":
            texts += [part.text for part in item.content if getattr(part, "type", "") == "output_text"]
        elif item.type == "function_call":
            tool_calls.append({"id": item.call_id, "name": item.name, "arguments": parse_arguments(item.arguments)})
    text = "".join(texts) if texts else None
    result: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        result["tool_calls"] = tool_calls
    if answer.status:
        result["status"] = answer.status
    attrs: dict[str, Any] = {"model": answer.model, "provider": "openai", "response_id": answer.id}
    tokens = _usage(answer.usage, "input_tokens", "output_tokens")
    if tokens is not None:
        attrs["tokens"] = tokens
    _tool_attrs(tool_calls, attrs)
    return text, result, attrs
