"""Pinned tool definitions: the "rug pull" defence.

A client approves an MCP server's tools once, by their descriptions and schemas, and the
model then trusts those descriptions on every turn. A server that changes a description
after that (to plant an instruction), swaps a schema, adds a tool, drops one or renames one
has changed what was approved. :class:`ToolPins` fixes each tool's definition at the first
complete ``tools/list`` of a session, or from a lock file the user commits
(``mattrace mcp --pin tools.lock``), and reports every difference of a later listing as a
change; the proxy records the changes on the listing's step, where the stock contract
``tool_definitions_stable()`` fails.

A rename is reported as a rename (the definition is the same under another name), never as
an unrelated add and remove that a reader could overlook.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mattrace.errors import McpError
from mattrace.trace import canonical_json

__all__ = ["changes", "definition", "LOCK_FORMAT", "PINNED_FIELDS", "read_lock", "ToolPins", "write_lock"]

PINNED_FIELDS: tuple[str, ...] = ("title", "description", "inputSchema", "outputSchema", "annotations")
"""What of a tool's definition is pinned: what the model reads and what decides its marks."""

LOCK_FORMAT = "mattrace-mcp-tools/1"

_FIELD_NAMES = {"title": "title", "description": "description", "inputSchema": "input schema",
                "outputSchema": "output schema", "annotations": "annotations"}


def definition(tool: dict[str, Any]) -> dict[str, Any]:
    """The pinned part of one tool of a ``tools/list`` result (absent fields left out)."""
    return {k: tool[k] for k in PINNED_FIELDS if tool.get(k) is not None}


def _same(a: Any, b: Any) -> bool:
    return canonical_json(a) == canonical_json(b)


class ToolPins:
    """The pinned definitions of one session, and the changes later listings make to them.

    Args:
        pinned: name -> definition from a lock file; None pins the first complete listing.
        source: where the pins came from, for messages (``the first tools/list`` or the lock path).

    Not thread-safe: the proxy observes listings from one task at a time.
    """

    def __init__(self, pinned: dict[str, dict[str, Any]] | None = None, *, source: str | None = None) -> None:
        self.pinned = pinned
        self.source = source or ("the lock file" if pinned is not None else "the first tools/list")
        self.current: dict[str, dict[str, Any]] = {}
        self._pages: dict[str, dict[str, Any]] = {}

    def tool(self, name: str) -> dict[str, Any] | None:
        """The latest definition the server listed for ``name`` (None if never listed)."""
        return self.current.get(name)

    def observe(self, tools: Iterable[dict[str, Any]], *, first_page: bool, last_page: bool) -> list[dict[str, Any]]:
        """Take one page of a ``tools/list`` result; return the changes (on the listing's last page).

        Args:
            tools: the page's tools, as the server sent them.
            first_page: the request had no cursor (a new listing starts).
            last_page: the result had no ``nextCursor`` (the listing is complete).
        """
        if first_page:
            self._pages = {}
        for tool in tools:
            name = tool.get("name")
            if isinstance(name, str):
                self._pages[name] = tool
                self.current[name] = tool
        if not last_page:
            return []
        listing = {name: definition(tool) for name, tool in self._pages.items()}
        if self.pinned is None:
            self.pinned = listing
            return []
        return changes(self.pinned, listing)


def changes(pinned: dict[str, dict[str, Any]], listing: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every difference of ``listing`` from ``pinned``, in name order: changed fields, new,
    removed and renamed tools. Each change is JSON: ``{"tool", "change", "pinned", "now"}``
    (``"from"`` for a rename)."""
    out: list[dict[str, Any]] = []
    for name in sorted(set(pinned) & set(listing)):
        for field in PINNED_FIELDS:
            before, after = pinned[name].get(field), listing[name].get(field)
            if not _same(before, after):
                out.append({"tool": name, "change": _FIELD_NAMES[field], "pinned": before, "now": after})
    removed = {n: pinned[n] for n in sorted(set(pinned) - set(listing))}
    for name in sorted(set(listing) - set(pinned)):
        twin = next((old for old, body in removed.items() if _same(body, listing[name])), None)
        if twin is not None:
            del removed[twin]
            out.append({"tool": name, "change": "renamed", "from": twin, "pinned": twin, "now": name})
        else:
            out.append({"tool": name, "change": "new", "pinned": None, "now": listing[name]})
    out += [{"tool": name, "change": "removed", "pinned": body, "now": None} for name, body in removed.items()]
    out.sort(key=lambda c: (c["tool"], c["change"]))
    return out


def read_lock(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The pinned definitions of a lock file written by :func:`write_lock`.

    Raises:
        McpError: the file is unreadable, not JSON (with its line), or not a tools lock.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise McpError(f"cannot read the tools lock file: {exc}", path=path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise McpError(f"not JSON: {exc.msg}", path=path, line=exc.lineno) from None
    if not isinstance(data, dict) or data.get("format") != LOCK_FORMAT or not isinstance(data.get("tools"), dict):
        raise McpError(f"not a tools lock file: expected an object with \"format\": \"{LOCK_FORMAT}\" and "
                       "\"tools\": {name: definition} (write one with `mattrace mcp --pin FILE`)", path=path, line=1)
    tools: dict[str, dict[str, Any]] = {}
    for name, body in data["tools"].items():
        if not isinstance(body, dict) or set(body) - set(PINNED_FIELDS):
            line = next((i for i, ln in enumerate(text.splitlines(), 1) if json.dumps(name) in ln), 1)
            raise McpError(f"tool {name!r}: a definition is an object with only {', '.join(PINNED_FIELDS)}",
                           path=path, line=line)
        tools[name] = body
    return tools


def write_lock(path: str | os.PathLike[str], tools: dict[str, dict[str, Any]]) -> None:
    """Write ``tools`` (name -> definition) as a lock file: sorted, indented, diff-friendly."""
    body = {"format": LOCK_FORMAT, "tools": {name: tools[name] for name in sorted(tools)}}
    Path(path).write_text(json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
