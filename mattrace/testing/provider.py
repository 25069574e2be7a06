"""The scripted litellm provider: ``litellm.completion(model="mattrace/<script>")``.

A test double, not a model: it answers from a :class:`~mattrace.testing._script.Script`
so an orchestrator written against litellm runs offline, for free and identically every
time. Token counts are word counts and the cost is zero, so budgets and metrics have
numbers to work with. ``mattrace/scripted`` serves the script set by ``use_script``;
``mattrace/<name>`` the one registered under ``name``.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import litellm
from litellm.llms.custom_llm import CustomLLM, CustomLLMError
from litellm.types.utils import ChatCompletionMessageToolCall, Choices, Function, Message, Usage

from mattrace.errors import MatTraceError
from mattrace.testing._script import get_script

__all__ = [
    "PROVIDER",
    "register_provider",
    "ScriptedLLM",
]

PROVIDER = "mattrace"
_lock = threading.Lock()


def _words(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content") or "").split()) for m in messages)


class ScriptedLLM(CustomLLM):
    """litellm custom provider answering from registered scripts."""

    def completion(self, model: str, messages: list[dict[str, Any]], api_base: Any,
                   custom_prompt_dict: Any, model_response: Any, print_verbose: Any,
                   encoding: Any, api_key: Any, logging_obj: Any, optional_params: dict[str, Any],
                   acompletion: Any = None, litellm_params: dict[str, Any] | None = None,
                   *args: Any, **kwargs: Any) -> Any:
        if optional_params.get("stream"):
            raise CustomLLMError(400, "the scripted model does not stream; call without stream=True")  # type: ignore[no-untyped-call]
        meta = (litellm_params or {}).get("metadata") or {}
        try:
            reply = get_script(model).answer(messages, meta.get("agent"))
        except MatTraceError as exc:
            raise CustomLLMError(400, str(exc)) from exc  # type: ignore[no-untyped-call]
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        tool_calls = [
            ChatCompletionMessageToolCall(
                id=f"call_{turn}_{i}", type="function",
                function=Function(name=tc.name, arguments=json.dumps(tc.arguments, sort_keys=True)))
            for i, tc in enumerate(reply.tool_calls)]
        message = Message(role="assistant", content=reply.content, tool_calls=tool_calls or None)
        model_response.choices = [Choices(index=0, message=message,
                                          finish_reason="tool_calls" if tool_calls else "stop")]
        prompt, completion = _words(messages), len((reply.content or "").split()) + 8 * len(tool_calls)
        model_response.usage = Usage(prompt_tokens=prompt, completion_tokens=completion,
                                     total_tokens=prompt + completion)
        model_response.model = f"{PROVIDER}/{model}"
        model_response._hidden_params["response_cost"] = 0.0
        return model_response

    async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
        return self.completion(*args, **kwargs)


def register_provider() -> None:
    """Make ``mattrace/...`` models resolvable by litellm. Idempotent."""
    with _lock:
        if any(p.get("provider") == PROVIDER for p in litellm.custom_provider_map):
            return
        litellm.custom_provider_map = [*litellm.custom_provider_map,
                                       {"provider": PROVIDER, "custom_handler": ScriptedLLM()}]
        # litellm reads the map at import and in completion(); make it see this one now
        from litellm.utils import custom_llm_setup

        custom_llm_setup()  # type: ignore[no-untyped-call]
