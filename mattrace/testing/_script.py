"""Scripts for the scripted model: a test double that answers from rules, not a model.

Tests of an orchestrator need LLM answers that are offline, free and identical on every
run. A :class:`Script` is an ordered list of :class:`Rule` s keyed on the conversation:
the first rule whose conditions all hold answers, with text or tool calls. Conditions are
regexes (on the agent, the system prompt, the last message, anything in the
conversation, the tool whose result came last); named groups from them, plus ``{last}``,
``{user}`` and ``{tool_result}``, fill ``{placeholders}`` in the answer. No state is kept
between calls, so the same conversation always gets the same answer.

This module is pure Python (no litellm at import); :mod:`mattrace.testing.provider` serves
scripts as the litellm provider ``mattrace/<script name>``, registered with litellm by
:func:`register_script` and :func:`use_script` themselves (when litellm is installed), so a
scripted model answers from the first call, inside a ``record()`` block or not.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import re
import string
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mattrace.errors import RecordingError

__all__ = [
    "get_script",
    "register_script",
    "Reply",
    "Rule",
    "Script",
    "ToolCall",
    "use_script",
]


class ToolCall(BaseModel):
    """A tool call the scripted model requests; string values may hold ``{placeholders}``."""

    model_config = ConfigDict(frozen=True)

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Reply(BaseModel):
    """What the scripted model answers: text, tool calls, or both."""

    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class _Formatter(string.Formatter):
    """``str.format`` that leaves unknown ``{names}`` as they are instead of raising."""

    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:
        if isinstance(key, str) and key not in kwargs:
            return "{" + key + "}"
        return super().get_value(key, args, kwargs)


_FORMAT = _Formatter()


def _fill(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _FORMAT.vformat(value, (), variables)
    if isinstance(value, dict):
        return {k: _fill(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, variables) for v in value]
    return value


def _tool_name(result: dict[str, Any], messages: list[dict[str, Any]]) -> str | None:
    """The tool a ``tool`` message answers: its ``name``, else the call its ``tool_call_id`` names.

    OpenAI's format makes ``name`` optional on tool results; the call id is always there.
    A conversation may hold the client's response objects as well as dicts.
    """
    if result.get("name"):
        return str(result["name"])
    call_id = result.get("tool_call_id")
    for message in reversed(messages):
        for call in _field(message, "tool_calls") or ():
            if _field(call, "id") == call_id:
                name = _field(_field(call, "function"), "name")
                return str(name) if name is not None else None
    return None


def _field(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _draw(messages: list[dict[str, Any]], agent: str | None) -> random.Random:
    """A generator for one scripted choice: the run's seed and the conversation so far decide it."""
    from mattrace.recording.context import active_recorder

    rec = active_recorder()
    seed = rec.config.get("seed", 0) if rec is not None else 0
    digest = hashlib.sha256(json.dumps([seed, agent, [_text(m) for m in messages]], default=str).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class Rule(BaseModel):
    """One scripted answer and the conditions under which it is given (all must hold).

    Args:
        agent: regex the calling agent's name must match (``metadata={"agent": ...}``).
        system: regex the system prompt must match.
        last: regex the last message's text must match.
        contains: regex some message of the conversation must match.
        after_tool: the last message must be the result of this tool.
        reply: the text answer; tool_calls: the tool calls to request.
        respond: a Python function of the messages returning a :class:`Reply` (for
            answers no template expresses; rules with it cannot be loaded from JSON).
        choices: alternative replies, one drawn per call with ``weights`` from a generator
            seeded by the run's ``seed`` and the conversation so far: a *seeded stochastic*
            model, so runs with different seeds really differ, and the same seed answers
            the same way every time (and replays, since replay never asks the model).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    agent: str | None = None
    system: str | None = None
    last: str | None = None
    contains: str | None = None
    after_tool: str | None = None
    reply: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    respond: Callable[[list[dict[str, Any]]], Reply] | None = Field(default=None, exclude=True)
    choices: list[Reply] = Field(default_factory=list)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _weights_fit(self) -> Rule:
        if self.weights is not None and (len(self.weights) != len(self.choices) or
                                         any(w < 0 for w in self.weights) or not sum(self.weights)):
            raise ValueError(f"weights must be {len(self.choices)} non-negative numbers, not all zero, "
                             f"one per choice; got {self.weights}")
        return self

    @field_validator("agent", "system", "last", "contains")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from exc
        return value

    def answer(self, messages: list[dict[str, Any]], agent: str | None) -> Reply | None:
        """This rule's reply to the conversation, or None when a condition fails."""
        variables: dict[str, str] = {}
        last = messages[-1] if messages else {}
        system = next((_text(m) for m in messages if m.get("role") == "system"), "")
        checks = [(self.agent, agent or ""), (self.system, system), (self.last, _text(last))]
        for pattern, text in checks:
            if pattern is not None:
                match = re.search(pattern, text, re.DOTALL)
                if match is None:
                    return None
                variables.update({k: v for k, v in match.groupdict().items() if v is not None})
        if self.contains is not None:
            match = next((m for msg in messages
                          if (m := re.search(self.contains, _text(msg), re.DOTALL))), None)
            if match is None:
                return None
            variables.update({k: v for k, v in match.groupdict().items() if v is not None})
        if self.after_tool is not None and not (
                last.get("role") == "tool" and _tool_name(last, messages) == self.after_tool):
            return None
        if self.respond is not None:
            return self.respond(messages)
        if self.choices:
            picked = _draw(messages, agent).choices(self.choices, weights=self.weights)[0]
            return Reply(content=picked.content, tool_calls=list(picked.tool_calls))
        user = next((_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
        tool_result = _text(last) if last.get("role") == "tool" else ""
        variables = {"last": _text(last), "user": user, "tool_result": tool_result, **variables}
        return Reply(content=_fill(self.reply, variables) if self.reply is not None else None,
                     tool_calls=[ToolCall(name=tc.name, arguments=_fill(tc.arguments, variables))
                                 for tc in self.tool_calls])


class Script(BaseModel):
    """An ordered list of rules; the first that matches answers.

    Args:
        rules: the rules, tried in order.
        default: the answer when no rule matches; without one, a miss is an error that
            shows the conversation's last message (a script gap, not a model failure).
    """

    model_config = ConfigDict(frozen=True)

    rules: list[Rule]
    default: str | None = None

    def answer(self, messages: list[dict[str, Any]], agent: str | None = None) -> Reply:
        """The scripted reply to ``messages``."""
        for rule in self.rules:
            reply = rule.answer(messages, agent)
            if reply is not None:
                return reply
        if self.default is not None:
            return Reply(content=self.default)
        last = _text(messages[-1]) if messages else ""
        raise RecordingError(
            f"scripted model: no rule matches the conversation (agent={agent!r}, "
            f"last message {last[:120]!r}); add a rule or a default")

    @classmethod
    def from_rules(cls, rules: Iterable[dict[str, Any] | Rule], default: str | None = None) -> Script:
        """A script from rule dicts (e.g. loaded from JSON) or rules."""
        return cls(rules=[r if isinstance(r, Rule) else Rule.model_validate(r) for r in rules],
                   default=default)

    @classmethod
    def load(cls, path: str) -> Script:
        """A script from a JSON file ``{"rules": [...], "default": ...}``."""
        with open(path, encoding="utf-8") as fh:
            return cls.model_validate(json.load(fh))


_registry: dict[str, Script] = {}
_registry_lock = threading.Lock()
_active: ContextVar[Script | None] = ContextVar("mattrace_script", default=None)


def _serve_through_litellm() -> None:
    """Register the ``mattrace/...`` litellm provider now, if litellm is installed.

    Without this, a script answered only once a ``record()`` block had instrumented litellm:
    a call before the first block (a smoke test, a script's warm-up) failed inside litellm
    with "LLM Provider NOT provided". Registering is idempotent; litellm is imported here,
    not when this module is, so code that only builds scripts never pays for it.
    """
    if importlib.util.find_spec("litellm") is None:
        return
    from mattrace.testing.provider import register_provider

    register_provider()


@contextmanager
def use_script(script: Script) -> Iterator[Script]:
    """Serve ``script`` as the model ``mattrace/scripted`` inside the block (this context only)."""
    _serve_through_litellm()
    token = _active.set(script)
    try:
        yield script
    finally:
        _active.reset(token)


def register_script(name: str, script: Script) -> None:
    """Serve ``script`` as the litellm model ``mattrace/<name>``."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        raise RecordingError(f"script name {name!r} must be letters, digits, '_', '.' or '-'")
    with _registry_lock:
        _registry[name] = script
    _serve_through_litellm()


def get_script(name: str) -> Script:
    """The script registered as ``name``; ``scripted`` is the one :func:`use_script` set."""
    if name == "scripted" and (active := _active.get()) is not None:
        return active
    with _registry_lock:
        script = _registry.get(name)
    if script is None:
        known = ", ".join(sorted(_registry)) or "none"
        raise RecordingError(f"no script is registered as {name!r} (registered: {known}); "
                             "call mattrace.testing.register_script(name, script) first")
    return script
