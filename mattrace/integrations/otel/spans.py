"""One plain record per span, whether it came from the OTel SDK or from an OTLP JSON file.

Reading spans and turning them into steps are separate jobs: the SDK hands a
``ReadableSpan``, the collector's file exporter writes OTLP JSON, and both become a
:class:`SpanRecord` here, so the conversion to steps is written (and tested) once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["flattened", "from_sdk", "json_value", "SpanRecord"]


@dataclass
class SpanRecord:
    """What mattrace needs of a span."""

    trace_id: int
    span_id: int
    parent_id: int | None
    name: str
    start: int
    end: int | None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    error: str | None = None
    """The status description (or the exception's message) when the span failed."""
    error_type: str | None = None
    open: bool = False
    """Still running when it was read (the run ended first)."""


def from_sdk(span: Any, *, still_open: bool = False) -> SpanRecord:
    """A record of an SDK span (``ReadableSpan`` at ``on_end``, or a live ``Span``)."""
    context = span.get_span_context() if hasattr(span, "get_span_context") else span.context
    parent = span.parent
    events = [(e.name, dict(e.attributes or {})) for e in (span.events or ())]
    error = error_type = None
    status = getattr(span, "status", None)
    if status is not None and getattr(status.status_code, "name", "") == "ERROR":
        error = status.description or "error"
        for name, attrs in events:
            if name == "exception":
                error_type = str(attrs.get("exception.type") or "") or None
                error = str(attrs.get("exception.message") or error)
                break
    return SpanRecord(trace_id=context.trace_id, span_id=context.span_id,
                      parent_id=parent.span_id if parent is not None else None, name=span.name,
                      start=span.start_time or 0, end=span.end_time, attributes=_attributes(span),
                      events=events, error=error, error_type=error_type, open=still_open)


def _attributes(span: Any) -> dict[str, Any]:
    """A span's attributes as a plain dict. The SDK's mapping proxy over its bounded attributes
    copies in C through ``copy()``; ``dict(proxy)`` would fetch each value in Python."""
    attributes = span.attributes
    if not attributes:
        return {}
    copy = getattr(attributes, "copy", None)
    copied = copy() if callable(copy) else attributes
    return copied if type(copied) is dict else dict(copied)


def json_value(value: Any) -> Any:
    """An attribute that may hold JSON text, parsed; anything else as it is."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return orjson.loads(value)
        except ValueError:   # what orjson refuses and json reads: NaN, integers beyond 64 bits
            try:
                return json.loads(value)
            except ValueError:
                return value
    if isinstance(value, tuple):
        return list(value)
    return value


def flattened(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.0.a.b = x`` style attributes (OpenInference) as a list of nested dicts."""
    items: dict[int, dict[str, Any]] = {}
    start = prefix + "."
    for key, value in attributes.items():
        if not key.startswith(start):
            continue
        head, _, rest = key[len(start):].partition(".")
        if not head.isdigit() or not rest:
            continue
        node = items.setdefault(int(head), {})
        parts = rest.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return [_lists(items[i]) for i in sorted(items)]


def _lists(node: Any) -> Any:
    """Turn dicts keyed "0", "1", ... (nested flattened lists) into lists."""
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}
