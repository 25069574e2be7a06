"""Reading an OpenAI chat-format file, every decode problem reported at its line.

Accepted files:

* a JSON list of messages;
* a JSON object with a ``messages`` list: its other keys become the trace's labels
  (non-text values as canonical JSON), and ``model`` also goes to ``config["model"]``;
* JSONL (``.jsonl``/``.ndjson``, or a file whose lines each parse): one such list or
  object per line, one trace per line, named ``<stem>#<line>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mattrace.errors import TraceFormatError
from mattrace.trace import canonical_json
from mattrace.tracefile import MAX_DEPTH, too_deep

__all__ = ["JSONL_SUFFIXES", "NOT_MESSAGES", "json_or_text", "jsonl_runs", "loads", "looks_like_jsonl", "type_name",
           "unpack"]

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
NOT_MESSAGES = "not a JSON list of messages nor an object with a 'messages' list"


def _keep_constant(text: str) -> str:
    """NaN/Infinity in Python-written JSON stay text: a trace file cannot hold them as numbers."""
    return text


def loads(text: str) -> Any:
    """One JSON value; what would crash a later step (nesting past the limit, a number too long
    to convert) is a decode error like any other, so it is reported at its line."""
    try:
        value = json.loads(text, parse_constant=_keep_constant)
    except RecursionError:
        raise json.JSONDecodeError(f"values nested more than {MAX_DEPTH} deep", text, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:   # an integer past the interpreter's conversion limit
        raise json.JSONDecodeError(f"a number too long to read ({exc})", text, 0) from None
    if too_deep(value):
        raise json.JSONDecodeError(f"values nested more than {MAX_DEPTH} deep", text, 0)
    return value


def looks_like_jsonl(text: str) -> bool:
    """A file that is not one JSON value but whose first line is one is taken as JSONL."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2:
        return False
    try:
        loads(lines[0])
    except json.JSONDecodeError:
        return False
    return True


def jsonl_runs(path: Path, text: str) -> list[tuple[int | None, Any]]:
    runs: list[tuple[int | None, Any]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            runs.append((lineno, loads(raw)))
        except json.JSONDecodeError as exc:
            raise TraceFormatError(path, lineno, f"line is not valid JSON ({exc.msg}, column {exc.colno})") from None
    if not runs:
        raise TraceFormatError(path, None, "file is empty; expected a JSON chat log")
    return runs


def unpack(path: Path, line: int | None, data: Any) -> tuple[list[Any], dict[str, str], dict[str, Any]]:
    """The messages, labels and config of one run (a list, or an object with ``messages``)."""
    if isinstance(data, list):
        return data, {}, {}
    if isinstance(data, dict) and isinstance(data.get("messages"), list):
        labels = {k: v if isinstance(v, str) else canonical_json(v)
                  for k, v in data.items() if k != "messages"}
        config = {"model": data["model"]} if "model" in data else {}
        return data["messages"], labels, config
    raise TraceFormatError(path, line, NOT_MESSAGES)


def type_name(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
             float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def json_or_text(text: str | None) -> Any:
    """A tool message's content: its JSON value when it is JSON, else the text."""
    if text is None:
        return None
    try:
        return loads(text)
    except json.JSONDecodeError:
        return text
