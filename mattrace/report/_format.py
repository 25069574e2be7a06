"""One-line renderings of step fields, shared by the terminal view and (later) the HTML report.

A trace table has one row per step, so each step has to be summed up in a single line:
its text when it has some, otherwise ``args → result`` (or ``args → ✗ error``) in a
compact JSON-ish form. These functions produce plain strings; styling is the caller's job,
which keeps them usable where there is no rich at all.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from mattrace.trace import Step, StepKind

__all__ = ["MAX_SUMMARY", "compact", "one_line", "pretty_json", "readable", "step_summary",
           "timestamp"]

# longer summaries are cut here before rich ellipsizes them to the column: a 2 MB tool
# result must not be laid out in full only to show 60 characters of it.
MAX_SUMMARY = 400
_SPACE = re.compile(r"\s+")


def one_line(text: str, limit: int = MAX_SUMMARY) -> str:
    """``text`` with each run of whitespace (newlines too) made one space, cut to ``limit``."""
    flat = _SPACE.sub(" ", text[: limit * 4]).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def compact(value: Any, limit: int = MAX_SUMMARY) -> str:
    """A one-line JSON rendering of ``value`` (strings quoted, no spaces after separators)."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return one_line(text, limit)


def readable(value: Any, limit: int = MAX_SUMMARY) -> str:
    """One-line JSON with a space after separators, so rich can wrap it between items."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return one_line(text, limit)


def pretty_json(value: Any, inline: int = 72) -> str:
    """JSON for the detail view: on one line when it fits in ``inline`` characters, else indented.

    Small values (``{"key": "policy"}``) stay on one line because a five-line block for
    them hides the fields around it; non-JSON values fall back to their repr.
    """
    try:
        flat = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)
    if len(flat) <= inline:
        return flat
    return json.dumps(value, ensure_ascii=False, indent=2, default=repr)


def _args(args: dict[str, Any] | None) -> str:
    if not args:
        return "()"
    return ", ".join(f"{k}={compact(v, 120)}" for k, v in args.items())


def _result(step: Step) -> str:
    if step.error is not None:
        return f"✗ {step.error.type}: {step.error.message}"
    result = step.result
    if step.kind is StepKind.RETRIEVAL and isinstance(result, list):
        ids = [str(d.get("id")) for d in result if isinstance(d, dict)]
        shown = ", ".join(ids[:6]) + (", …" if len(ids) > 6 else "")
        return f"{len(result)} doc(s)" + (f": {shown}" if ids else "")
    return compact(result)


def _end(step: Step) -> str:
    outcome = step.result if isinstance(step.result, dict) else {}
    text = str(outcome.get("status", "end"))
    if step.content:
        text += f": {step.content}"
    if outcome.get("output") is not None:
        text += f" → {compact(outcome['output'])}"
    return text


def _llm(step: Step) -> str:
    """An LLM call without text: the tool calls it asked for, not its (long) prompt."""
    result = step.result if isinstance(step.result, dict) else {}
    calls = result.get("tool_calls")
    parts = []
    for call in calls if isinstance(calls, list) else []:
        if isinstance(call, dict):
            arguments = call.get("arguments")
            shown = _args(arguments) if isinstance(arguments, dict) else compact(arguments, 120)
            parts.append(f"{call.get('name')}({shown})")
    if step.error is not None:
        return f"✗ {step.error.type}: {step.error.message}"
    if parts:
        return "→ " + "; ".join(parts)
    messages = (step.args or {}).get("messages")
    prompt = f"{len(messages)} message(s)" if isinstance(messages, list) else _args(step.args)
    return f"{prompt} → {compact(step.result)}"


def step_summary(step: Step, limit: int = MAX_SUMMARY) -> str:
    """What a step said or did, in one line: its content, or ``args → result``.

    An LLM call without text shows the tool calls it requested. A step with both text
    and an error shows both, so a failed call never reads like a successful one.
    """
    if step.kind is StepKind.END:
        text = _end(step)
    elif step.kind is StepKind.LLM and not step.content:
        text = _llm(step)
    elif step.content:
        text = step.content
        if step.error is not None:
            text += f" ✗ {step.error.type}: {step.error.message}"
    elif step.args is not None or step.result is not None or step.error is not None:
        text = f"{_args(step.args)} → {_result(step)}"
    else:
        text = ""
    return one_line(text, limit)


def timestamp(ns: int | None) -> str:
    """An ISO-8601 UTC rendering of a wall-clock time in nanoseconds ('' when unknown)."""
    if ns is None:
        return ""
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")
