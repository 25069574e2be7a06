"""OTLP JSON files (what the OpenTelemetry Collector's file exporter writes) → traces.

Each line of such a file is an ``ExportTraceServiceRequest`` in OTLP's JSON encoding
(``resourceSpans`` → ``scopeSpans`` → ``spans``); a file holding one such object over
many lines reads too. Every OTel trace in the file becomes one Message-Action Trace,
its spans turned into steps exactly as :class:`~mattrace.integrations.otel.MatSpanProcessor`
turns live ones. Ids may be hex (the OTLP JSON rule) or base64 (protobuf's generic JSON).

Every span becomes a step; the ones that needed a guess (a span of no known kind, a span
read with a warning such as a tool span without a tool name) are listed by
:func:`otlp_gaps` and warned about (:class:`~mattrace.errors.ImportGapWarning`).
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mattrace.errors import TraceFormatError
from mattrace.integrations.otel import names as names
from mattrace.integrations.otel import spans_to_trace
from mattrace.integrations.otel.spans import SpanRecord
from mattrace.io.gaps import ImportGap, collect, warn_gaps
from mattrace.trace import Trace
from mattrace.tracefile import JSONInputError, parse_json

__all__ = ["import_otlp", "otlp_gaps", "read_otlp"]

_ERROR = 2   # STATUS_CODE_ERROR


@dataclass(frozen=True)
class _Where:
    """Where in the file a span is, for errors that name it."""

    path: Path
    line: int
    span: str = ""

    def error(self, reason: str) -> TraceFormatError:
        return TraceFormatError(self.path, self.line, f"{self.span}: {reason}" if self.span else reason)


def _id(raw: Any, size: int, where: _Where) -> int | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise where.error(f"an id must be a string, got {raw!r}")
    if len(raw) == size * 2:
        try:
            return int(raw, 16)
        except ValueError:
            pass
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise where.error(f"{raw!r} is neither a hex nor a base64 id") from None
    if len(data) != size:
        raise where.error(f"id {raw!r} is {len(data)} bytes, expected {size}")
    return int.from_bytes(data, "big")


def _value(raw: Any) -> Any:
    """An OTLP ``AnyValue`` as a Python value."""
    if not isinstance(raw, dict) or not raw:
        return None
    (kind, value), *_ = raw.items()
    if kind == "intValue":
        return int(value)
    if kind == "doubleValue":
        return float(value)
    if kind == "arrayValue":
        return [_value(v) for v in (value or {}).get("values", [])]
    if kind == "kvlistValue":
        return {kv.get("key"): _value(kv.get("value")) for kv in (value or {}).get("values", [])}
    if kind == "bytesValue":
        return value
    return value


def _attributes(raw: Any) -> dict[str, Any]:
    return {kv["key"]: _value(kv.get("value")) for kv in raw or [] if isinstance(kv, dict) and "key" in kv}


def _span(raw: Any, where: _Where) -> SpanRecord:
    if not isinstance(raw, dict):
        raise where.error(f"a span must be an object, got {type(raw).__name__}")
    trace_id = _id(raw.get("traceId"), 16, where)
    span_id = _id(raw.get("spanId"), 8, where)
    if trace_id is None or span_id is None:
        raise where.error("a span needs a traceId and a spanId")
    status = raw.get("status") or {}
    failed = status.get("code") in (_ERROR, "STATUS_CODE_ERROR")
    events = [(str(e.get("name", "")), _attributes(e.get("attributes"))) for e in raw.get("events") or []]
    error = error_type = None
    if failed:
        error = status.get("message") or "error"
        for name, attrs in events:
            if name == "exception":
                error_type = attrs.get("exception.type")
                error = attrs.get("exception.message") or error
    try:
        start = int(raw.get("startTimeUnixNano") or 0)
        end = int(raw["endTimeUnixNano"]) if raw.get("endTimeUnixNano") else None
    except (TypeError, ValueError):
        raise where.error("start/end times must be integers (nanoseconds)") from None
    return SpanRecord(trace_id=trace_id, span_id=span_id, parent_id=_id(raw.get("parentSpanId"), 8, where),
                      name=str(raw.get("name", "")), start=start, end=end,
                      attributes=_attributes(raw.get("attributes")), events=events, error=error,
                      error_type=error_type)


def _requests(path: Path) -> list[tuple[int, Any]]:
    """The export requests of a file: one JSON object over many lines, or one per line."""
    data = path.read_bytes()
    try:
        whole = parse_json(data)
    except JSONInputError as exc:
        if "not valid JSON" not in str(exc):   # not UTF-8, nested too deep, a number too long: no line reads
            raise TraceFormatError(path, None, f"not OTLP JSON: {exc}") from None
    else:
        if not isinstance(whole, dict):
            raise TraceFormatError(path, 1, f"not an OTLP trace export: a JSON {_kind(whole)}, expected an object "
                                            "with a resourceSpans list (one per line, or one for the file)")
        return [(1, whole)]
    found = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            found.append((number, parse_json(line)))
        except JSONInputError as exc:
            raise TraceFormatError(path, number, f"not OTLP JSON: {exc}") from None
    return found


def _kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _listed(value: Any, key: str) -> list[Any]:
    """``value[key]`` when ``value`` is an object holding a list there, else nothing (OTLP omits empty lists)."""
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, list) else []


def read_otlp(path: str | Path) -> dict[int, list[SpanRecord]]:
    """The spans of an OTLP JSON file, by trace id (file order kept).

    Raises:
        TraceFormatError: unreadable JSON, or a span without ids (file and line named).
    """
    path = Path(path)
    try:
        requests = _requests(path)
    except OSError as exc:
        raise TraceFormatError(path, None, f"cannot read: {exc.strerror or exc}") from None
    traces: dict[int, list[SpanRecord]] = defaultdict(list)
    for number, request in requests:
        resources = request.get("resourceSpans") if isinstance(request, dict) else None
        if not isinstance(resources, list):
            raise TraceFormatError(path, number, "not an OTLP trace export (no resourceSpans list)")
        for resource in resources:
            for scope in _listed(resource, "scopeSpans"):
                for i, raw in enumerate(_listed(scope, "spans")):
                    span = _span(raw, _Where(path, number, f"span {i}"))
                    traces[span.trace_id].append(span)
    return dict(traces)


def otlp_gaps(trace: Trace) -> tuple[ImportGap, ...]:
    """The steps of a trace read from spans that needed a guess, by step index.

    ``unknown_span``: a span of no kind the converter knows (neither a GenAI operation nor
    an OpenInference span kind), kept as a message step; ``span_warning``: a span that
    could not be read as it says (e.g. a tool span without ``gen_ai.tool.name``, named
    after the span), explained in the step's ``attrs["mattrace_warning"]``.
    """
    found: dict[str, list[int]] = {}
    for s in trace.steps:
        if s.attrs.get("span_role") == "unknown":
            found.setdefault("unknown_span", []).append(s.index)
        if s.attrs.get(names.WARNING):
            found.setdefault("span_warning", []).append(s.index)
    return collect(found)


def import_otlp(path: str | Path, **options: Any) -> list[Trace]:
    """One trace per OTel trace in an OTLP JSON file (options: those of ``MatSpanProcessor``).

    Warns :class:`~mattrace.errors.ImportGapWarning` for a trace with :func:`otlp_gaps`.
    """
    traces = []
    for trace_id, spans in read_otlp(path).items():
        root = min((s for s in spans if s.parent_id is None), key=lambda s: s.start, default=spans[0])
        trace = spans_to_trace(spans, name=root.name or f"otlp-{trace_id:032x}", **options)
        if not any(names.TRACE in s.attributes for s in spans):   # a foreign trace: say where it came from
            trace = trace.model_copy(update={"config": {**trace.config, "import": {
                "format": "otlp", "file": str(path), "otel_trace_id": f"{trace_id:032x}"}}})
        warn_gaps(str(path), otlp_gaps(trace))
        traces.append(trace)
    return traces
