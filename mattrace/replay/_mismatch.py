"""What replay says when a call is not in the cassette: which call, which field, both values.

The values a person must compare are often long (a prompt of a thousand characters) and
differ near the end (a date, a name appended). Cut from the start, both would show the same
prefix and read as "expected x, got x"; so each pair is cut around its first difference, with
``…`` where text was left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mattrace.errors import UnrecordedCall
from mattrace.replay._match import Matcher
from mattrace.trace import canonical_json

__all__ = ["cut_pair", "differences", "unrecorded_call", "WIDTH"]

WIDTH = 120
"""Characters of each value shown in a mismatch message."""
SHOWN = 5
"""Differing fields listed per mismatch."""
_MISSING = object()


def differences(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf path where two JSON values differ, in sorted-key order (a side without it: missing)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[str, Any, Any]] = []
        for k in sorted(set(old) | set(new)):
            out += differences(old.get(k, _MISSING), new.get(k, _MISSING), f"{path}.{k}" if path else k)
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            out += differences(old[i] if i < len(old) else _MISSING, new[i] if i < len(new) else _MISSING,
                               f"{path}[{i}]")
        return out
    return [] if old == new else [(path or "(args)", old, new)]


def _text(value: Any) -> str:
    if value is _MISSING:
        return "<missing>"
    text = repr(value) if isinstance(value, str) else canonical_json(value)
    return text.replace("\n", "\\n")


def cut_pair(old: Any, new: Any, width: int = WIDTH) -> tuple[str, str]:
    """Both values as text, each cut to ``width`` characters around where they first differ."""
    a, b = _text(old), _text(new)
    if len(a) <= width and len(b) <= width:
        return a, b
    common = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    start = max(0, common - width // 3)
    return _window(a, start, width), _window(b, start, width)


def _window(text: str, start: int, width: int) -> str:
    head = "…" if start else ""
    body = text[start:]
    return head + (body if len(body) <= width else body[: width - 1] + "…")


def unrecorded_call(cassette: Path, recorded: list[dict[str, Any]], unused: list[dict[str, Any]], *,
                    kind: str, target: str, agent: str, args: Any, index: int, matcher: Matcher) -> UnrecordedCall:
    """The error for a call the cassette does not hold, against the closest recorded call like it.

    Args:
        cassette: the cassette file.
        recorded: every recorded entry; unused: those replay has not served yet (preferred
            as the closest, since a served one already answered another call).
        kind, target, agent, args: the call (``args`` redacted, as recorded).
        index: the step index the call gets (negative: unknown).
        matcher: what replay compares; ignored arguments are not shown as differences.
    """
    where = f"step {index}: " if index >= 0 else ""
    call = f"{kind} {target} by {agent}"
    head = f"{where}{call} is not in the cassette {cassette}"
    any_target = "target" not in matcher.match_on

    def like(entry: dict[str, Any]) -> bool:
        return entry["kind"] == kind and (any_target or entry["target"] == target)

    near = [e for e in recorded if like(e)]
    pool = [e for e in unused if like(e)] or near
    step = index if index >= 0 else None
    if not pool:
        return UnrecordedCall(f"{head}: it holds no {kind} {target} call at all", cassette=cassette, step=step,
                              call=call)
    masked = matcher.masked(args)

    def gaps(entry: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        found = differences(matcher.masked(entry["args"]), masked) if "args" in matcher.match_on else []
        if "agent" in matcher.match_on and entry.get("agent", "") != agent:
            found.insert(0, ("(agent)", entry.get("agent", ""), agent))
        return found

    closest = min(pool, key=lambda e: len(gaps(e)))
    found = gaps(closest)
    shown = tuple((path, *cut_pair(old, new)) for path, old, new in found[:SHOWN])
    lines = [f"{head}; the closest recorded {kind} {closest['target']} call (occurrence "
             f"{closest.get('occurrence', 0)}) differs in {len(found)} place(s):"]
    lines += [f"  {path}: expected {old}, got {new}" for path, old, new in shown]
    if len(found) > SHOWN:
        lines.append(f"  … and {len(found) - SHOWN} more")
    if not found:   # same masked args and agent: only its occurrence was used up already
        lines[0] = (f"{head}; every recorded {kind} {target} call like it was already served (the run made this "
                    "call more often than the recording did)")
    return UnrecordedCall("\n".join(lines), cassette=cassette, step=step, call=call,
                          differences=tuple((path, old, new) for path, old, new in shown))
