"""The tracing processor: routes each SDK trace to its ``record()`` block and writes its steps.

Routing and the thread-safety it needs live here; reading spans is :mod:`._spans`, linking
them into drafts :mod:`._linking`.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import threading
import time
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mattrace.integrations.openai_agents._linking import _drafts
from mattrace.integrations.openai_agents._spans import _convert, _Converted
from mattrace.integrations.otel import append_drafts, names
from mattrace.integrations.otel.drafts import Trust, glob_matcher
from mattrace.integrations.otel.spans import SpanRecord
from mattrace.recording.context import active_recorder
from mattrace.recording.recorder import Recorder
from mattrace.trace import StepKind

__all__ = ["MatTracingProcessor"]

log = logging.getLogger("mattrace.openai_agents")

_GROUPING = frozenset({"task", "turn"})
"""SDK span types that only group other spans (no step of their own)."""
_LATE_TRACES = 4096
"""How many traces whose run ended first are remembered, so their later spans are not re-routed."""


# -- routing state ------------------------------------------------------------------------------------------------


@dataclass
class _Live:
    span: Any
    span_id: int
    parent_id: int | None
    start: int


@dataclass
class _Pending:
    """The spans of one SDK trace routed to one run, until the trace is complete."""

    recorder: Recorder
    trace_id: int
    by_trace: bool
    """Routed when the trace started (written at its end), not by its first span."""
    ids: dict[str, int | None] = field(default_factory=dict)
    """SDK span id → the SpanRecord id standing for it (a grouping span: its parent's)."""
    live: dict[str, _Live] = field(default_factory=dict)
    open: set[str] = field(default_factory=set)
    ended: list[_Converted] = field(default_factory=list)


def _int_id(text: str) -> int:
    try:
        return int(text.rpartition("_")[2], 16)
    except ValueError:
        return zlib.crc32(text.encode("utf-8", "surrogatepass"))


class MatTracingProcessor:
    """An Agents SDK tracing processor that turns the spans of each ``record()`` block into its steps.

    It implements the SDK's ``TracingProcessor`` interface (and is registered as one) without
    importing the SDK at import time. Register it with :func:`install`, or with
    ``agents.add_trace_processor`` / ``agents.set_trace_processors``.

    Args:
        side_effects: glob patterns of tool names that change the outside world (their steps
            are marked ``side_effect``, which the taint contracts watch).
        trusted_tools, trusted_retrievers: glob patterns of tools and retrievers whose output
            is trusted; by default tool outputs are not.
    """

    def __init__(self, *, side_effects: Iterable[str] = (), trusted_tools: Iterable[str] = (),
                 trusted_retrievers: Iterable[str] = ()) -> None:
        tools, retrievers = glob_matcher(trusted_tools), glob_matcher(trusted_retrievers)
        self._trust: Trust = lambda kind, name: tools(name) if kind == "tool" else retrievers(name)
        self._side_effects = glob_matcher(side_effects)
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._late: OrderedDict[str, None] = OrderedDict()
        self._hooked: weakref.WeakSet[Recorder] = weakref.WeakSet()
        self._warned: set[str] = set()
        self._ids = itertools.count(1)
        self._clock = 0
        self.unrouted = 0
        """Spans that started outside any ``record()`` block (ignored)."""
        _register_as_tracing_processor()

    # -- the TracingProcessor interface -----------------------------------------------------------------------

    def on_trace_start(self, trace: Any) -> None:
        try:
            trace_id = str(trace.trace_id)
            recorder = active_recorder()
            if trace_id == "no-op" or recorder is None or recorder.closed:
                return   # its spans may still start inside a record() block
            with self._lock:
                if trace_id in self._pending:
                    return
                pending = self._route(trace_id, recorder, by_trace=True)
            self._hook(pending.recorder)
        except Exception as exc:   # the application's run must never break because of mattrace
            self._complain("on_trace_start", exc)

    def on_trace_end(self, trace: Any) -> None:
        try:
            trace_id = str(trace.trace_id)
            with self._lock:
                self._late.pop(trace_id, None)
                pending = self._pending.pop(trace_id, None)
                if pending is None:
                    return
                spans = self._collect(pending)
            self._write(pending.recorder, spans)
        except Exception as exc:
            self._complain("on_trace_end", exc)

    def on_span_start(self, span: Any) -> None:
        try:
            trace_id, span_id = str(span.trace_id), str(span.span_id)
            if trace_id == "no-op":
                return
            hook = None
            with self._lock:
                pending = self._pending.get(trace_id)
                if pending is None:
                    if trace_id in self._late:
                        self._complain("late", RuntimeError(f"a span of trace {trace_id} started after its run ended"))
                        return
                    recorder = active_recorder()
                    if recorder is None or recorder.closed:
                        self.unrouted += 1
                        return
                    pending = hook = self._route(trace_id, recorder, by_trace=False)
                parent = pending.ids.get(span.parent_id) if span.parent_id is not None else None
                pending.open.add(span_id)
                if getattr(span.span_data, "type", None) in _GROUPING:
                    pending.ids[span_id] = parent
                else:
                    number = pending.ids[span_id] = next(self._ids)
                    self._clock = max(time.time_ns(), self._clock + 1)
                    pending.live[span_id] = _Live(span, number, parent, self._clock)
            if hook is not None:
                self._hook(hook.recorder)
        except Exception as exc:
            self._complain("on_span_start", exc)

    def on_span_end(self, span: Any) -> None:
        try:
            trace_id, span_id = str(span.trace_id), str(span.span_id)
            with self._lock:
                pending = self._pending.get(trace_id)
                if pending is None:
                    if trace_id in self._late:
                        self._complain("late", RuntimeError(f"a span of trace {trace_id} ended after its run ended"))
                    return
                pending.open.discard(span_id)
                live = pending.live.pop(span_id, None)
                if live is not None:
                    pending.ended.append(self._read(pending, live, time.time_ns()))
                done = not pending.by_trace and not pending.open
                if done:
                    del self._pending[trace_id]
            if done:
                self._write(pending.recorder, pending.ended)
        except Exception as exc:
            self._complain("on_span_end", exc)

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass

    # -- routing and writing ----------------------------------------------------------------------------------

    def _route(self, trace_id: str, recorder: Recorder, *, by_trace: bool) -> _Pending:
        """Called with the lock held."""
        pending = self._pending[trace_id] = _Pending(recorder, _int_id(trace_id), by_trace)
        return pending

    def _hook(self, recorder: Recorder) -> None:
        with self._lock:
            if recorder in self._hooked:
                return
            self._hooked.add(recorder)
        recorder.before_end(lambda: self._flush_recorder(recorder))

    def _read(self, pending: _Pending, live: _Live, end: int | None) -> _Converted:
        """The converted span (never raises: a span that cannot be read is a message step saying so)."""
        still_open = end is None
        try:
            return _convert(live.span, live.span_id, live.parent_id, pending.trace_id, live.start,
                            None if still_open else max(end or 0, live.start), still_open)
        except Exception as exc:
            self._complain("read", exc)
            record = SpanRecord(trace_id=pending.trace_id, span_id=live.span_id, parent_id=live.parent_id,
                                name="openai_agents span", start=live.start, end=end, open=still_open)
            converted = _Converted(record, "unreadable", message=("openai_agents", None))
            converted.attrs[names.WARNING] = f"the SDK span could not be read: {type(exc).__name__}: {exc}"
            return converted

    def _collect(self, pending: _Pending) -> list[_Converted]:
        """What a trace has so far, spans still open included (called with the lock held)."""
        return pending.ended + [self._read(pending, live, None) for live in pending.live.values()]

    def _flush_recorder(self, recorder: Recorder) -> None:
        """The run is ending: write what its traces have so far, open spans included."""
        with self._lock:
            mine = [(tid, p) for tid, p in self._pending.items() if p.recorder is recorder]
            batches = []
            for trace_id, pending in mine:
                del self._pending[trace_id]
                self._late[trace_id] = None
                batches.append(self._collect(pending))
            while len(self._late) > _LATE_TRACES:
                self._late.popitem(last=False)
        for spans in batches:
            self._write(recorder, spans)

    def _write(self, recorder: Recorder, spans: list[_Converted]) -> None:
        if not spans:
            return
        if recorder.closed:
            self._complain("late", RuntimeError(f"{len(spans)} span(s) ended after their run {recorder.name!r}"))
            return
        try:
            append_drafts(recorder, _drafts(spans, self._trust, self._side_effects))
        except Exception as exc:
            self._complain("write", exc)
            recorder.append(StepKind.MESSAGE, agent="mattrace", target="openai_agents",
                            content=f"{len(spans)} span(s) could not be recorded: {type(exc).__name__}: {exc}",
                            attrs={names.WARNING: "tracing processor error"})

    def _complain(self, kind: str, exc: BaseException) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("mattrace tracing processor (%s): %s: %s; further %s errors are not logged",
                        kind, type(exc).__name__, exc, kind)


def _register_as_tracing_processor() -> None:
    """Make ``isinstance(processor, agents.tracing.TracingProcessor)`` true, when the SDK is installed."""
    try:
        tracing = importlib.import_module("agents.tracing")
    except ImportError:
        return
    if not issubclass(MatTracingProcessor, tracing.TracingProcessor):
        tracing.TracingProcessor.register(MatTracingProcessor)
