"""The span processor: spans of each ``record()`` block become that run's steps (see the package docstring)."""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from mattrace.integrations.otel import names as names
from mattrace.integrations.otel.drafts import Draft, Trust, draft, glob_matcher
from mattrace.integrations.otel.spans import SpanRecord, from_sdk, json_value
from mattrace.recording.context import active_recorder
from mattrace.recording.recorder import Recorder
from mattrace.trace import Source, StepError, StepKind, Trace

__all__ = ["append_drafts", "ATTRIBUTE_LIMIT", "install", "MatSpanProcessor", "spans_to_trace", "steps_from_spans"]

_log = logging.getLogger("mattrace.otel")
ATTRIBUTE_LIMIT = 8192
"""Span attribute count :func:`install` allows (the SDK default, 128, cuts flattened messages)."""


def _trust(trusted_tools: Iterable[str], trusted_retrievers: Iterable[str]) -> Trust:
    tools, retrievers = glob_matcher(trusted_tools), glob_matcher(trusted_retrievers)
    return lambda kind, name: tools(name) if kind == "tool" else retrievers(name)


@dataclass
class _Pending:
    """The spans of one OTel trace routed to one run, until the trace is complete."""

    recorder: Recorder
    ended: list[SpanRecord] = field(default_factory=list)
    live: dict[int, Span] = field(default_factory=dict)


class MatSpanProcessor(SpanProcessor):
    """Turns the spans of each ``record()`` block into that run's steps.

    Args:
        side_effects: glob patterns of tool names that change the outside world (their
            steps are marked ``side_effect``, which the taint contracts watch).
        trusted_tools, trusted_retrievers: glob patterns of tools and retrievers whose
            output is trusted; by default tool outputs and retrieved documents are not.
    """

    def __init__(self, *, side_effects: Iterable[str] = (), trusted_tools: Iterable[str] = (),
                 trusted_retrievers: Iterable[str] = ()) -> None:
        self._side_effects = glob_matcher(side_effects)
        self._trust = _trust(trusted_tools, trusted_retrievers)
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._hooked: weakref.WeakSet[Recorder] = weakref.WeakSet()
        self._warned: set[str] = set()
        self.unrouted = 0
        """Spans that started outside any ``record()`` block (ignored)."""

    # -- the SpanProcessor interface ---------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            trace_id = span.get_span_context().trace_id
            with self._lock:
                pending = self._pending.get(trace_id)
                if pending is None:
                    recorder = active_recorder()
                    if recorder is None or recorder.closed:
                        self.unrouted += 1
                        return
                    pending = self._pending[trace_id] = _Pending(recorder)
                    hook = recorder not in self._hooked
                    self._hooked.add(recorder)
                else:
                    hook = False
                pending.live[span.get_span_context().span_id] = span
            if hook:
                pending.recorder.before_end(functools.partial(self._flush_recorder, pending.recorder))
        except Exception as exc:   # the application's tracing must never break because of mattrace
            self._complain("on_start", exc)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            context = span.context
            if context is None:
                return
            with self._lock:
                pending = self._pending.get(context.trace_id)
                if pending is None:
                    return
                pending.live.pop(context.span_id, None)
                pending.ended.append(from_sdk(span))
                done = not pending.live
                if done:
                    del self._pending[context.trace_id]
            if done:
                self._write(pending.recorder, pending.ended)
        except Exception as exc:
            self._complain("on_end", exc)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # -- writing steps -------------------------------------------------------------------------------------------

    def _flush_recorder(self, recorder: Recorder) -> None:
        """The run is ending: write what its traces have so far, open spans included."""
        with self._lock:
            mine = [(tid, p) for tid, p in self._pending.items() if p.recorder is recorder]
            for tid, _ in mine:
                del self._pending[tid]
        for _, pending in mine:
            spans = pending.ended + [from_sdk(s, still_open=True) for s in pending.live.values()]
            self._write(recorder, spans)

    def _write(self, recorder: Recorder, spans: list[SpanRecord]) -> None:
        if recorder.closed:
            self._complain("late", RuntimeError(f"{len(spans)} span(s) ended after their run {recorder.name!r}"))
            return
        try:
            append_drafts(recorder, [draft(s, self._trust, self._side_effects) for s in spans])
        except Exception as exc:
            self._complain("write", exc)
            recorder.append(StepKind.MESSAGE, agent="mattrace", target="otel",
                            content=f"{len(spans)} span(s) could not be recorded: {type(exc).__name__}: {exc}",
                            attrs={names.WARNING: "span processor error"})

    def _complain(self, kind: str, exc: BaseException) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            _log.warning("mattrace span processor (%s): %s: %s; further %s errors are not logged",
                        kind, type(exc).__name__, exc, kind)


def append_drafts(recorder: Recorder, drafts: list[Draft]) -> None:
    """Append drafts in span-start order, with agents and ``reads`` filled from the span tree."""
    by_span = {d.span.span_id: d for d in drafts}
    drafts = sorted(drafts, key=lambda d: (d.span.start, d.span.end or 0))
    index_of_span: dict[int, int] = {}
    index_of_original: dict[int, int] = {}
    requested: dict[str, int] = {}
    asked_with: dict[str, Any] = {}          # tool call id -> the arguments the model gave
    answered: dict[str, int] = {}
    agent_of: dict[int, str] = {}

    def enclosing_agent(d: Draft) -> str | None:
        seen = {d.span.span_id}   # a span that is its own ancestor (a broken export) ends the walk
        parent = by_span.get(d.span.parent_id) if d.span.parent_id is not None else None
        while parent is not None and parent.span.span_id not in seen:
            if parent.agent_name:
                return parent.agent_name
            seen.add(parent.span.span_id)
            parent = by_span.get(parent.span.parent_id) if parent.span.parent_id is not None else None
        return None

    for d in drafts:
        if d.run is not None:   # a run mattrace exported: its outcome, unless the run already has one
            outcome = d.run.get("outcome")
            if isinstance(outcome, dict) and recorder.outcome is None:
                recorder.set_outcome(outcome.get("status"), output=outcome.get("output"),
                                     reason=outcome.get("reason"))
            continue
        if d.exact is not None:
            index_of_span[d.span.span_id] = _append_exact(recorder, d, index_of_original)
            continue
        requester = next((requested[i] for i in d.answers if i in requested), None) \
            if d.kind is StepKind.TOOL else None
        # a tool runs for the agent whose model asked for it; a LangGraph node acts as an agent
        agent = enclosing_agent(d) or (agent_of.get(requester) if requester is not None else None) \
            or (d.node if d.kind is not StepKind.TOOL else None) or "main"
        if d.bare_input and d.args is not None:
            named = next((asked_with[i] for i in d.answers if isinstance(asked_with.get(i), dict)), None)
            if named is not None:
                d.args = named
        reads: set[int] = set()
        parent = d.span.parent_id
        if parent is not None and parent in index_of_span and by_span[parent].kind is StepKind.DELEGATE:
            reads.add(index_of_span[parent])   # work done under an agent call reads the task it was given
        if d.kind is StepKind.TOOL:
            reads.update(requested[i] for i in d.answers if i in requested)
        else:
            reads.update(answered[i] for i in d.answers if i in answered)
        sources = d.sources or ([Source(kind="agent", ref=agent)] if d.kind is StepKind.LLM else [])
        step = recorder.append(d.kind, agent=agent, target=d.target, content=d.content, args=d.args,
                               result=d.result, error=d.error, sources=sources, reads=sorted(reads),
                               side_effect=d.side_effect, attrs=d.attrs, t_start=d.span.start,
                               t_end=d.span.end)
        index_of_span[d.span.span_id] = step.index
        agent_of[step.index] = agent
        for call_id in d.requests:
            requested[call_id] = step.index
        if isinstance(d.result, dict):
            for call in d.result.get("tool_calls") or ():
                if isinstance(call, dict) and call.get("id"):
                    asked_with[str(call["id"])] = call.get("arguments")
        if d.kind is StepKind.TOOL:
            for call_id in d.answers:
                answered[call_id] = step.index


def _append_exact(recorder: Recorder, d: Draft, index_of_original: dict[int, int]) -> int:
    """A step mattrace exported, restored field by field (its reads mapped to the new indices)."""
    raw = d.exact or {}
    error = raw.get("error")
    step = recorder.append(
        StepKind(raw["kind"]), agent=raw.get("agent"), target=raw.get("target"), content=raw.get("content"),
        args=raw.get("args"), result=raw.get("result"),
        error=StepError(**error) if isinstance(error, dict) else None,
        sources=[Source(**s) for s in raw.get("sources") or ()],
        reads=[index_of_original[r] for r in raw.get("reads") or () if r in index_of_original],
        side_effect=bool(raw.get("side_effect")), attrs=raw.get("attrs") or {},
        t_start=d.span.start, t_end=d.span.end)
    if isinstance(raw.get("index"), int):
        index_of_original[raw["index"]] = step.index
    return step.index


def steps_from_spans(recorder: Recorder, spans: Iterable[SpanRecord], *, side_effects: Iterable[str] = (),
                     trusted_tools: Iterable[str] = (), trusted_retrievers: Iterable[str] = ()) -> None:
    """Append the steps of already-collected spans to ``recorder`` (an OTLP file, a test)."""
    trust, effects = _trust(trusted_tools, trusted_retrievers), glob_matcher(side_effects)
    append_drafts(recorder, [draft(s, trust, effects) for s in spans])


def spans_to_trace(spans: Iterable[SpanRecord], name: str = "otel", **options: Any) -> Trace:
    """A trace (kept in memory) from spans; a root span mattrace exported restores the run's
    name, config, labels and outcome."""
    spans = list(spans)
    meta: dict[str, Any] = {}
    for span in spans:
        found = json_value(span.attributes.get(names.TRACE))
        if isinstance(found, dict):
            meta = found
    recorder = Recorder(str(meta.get("name") or name), config=meta.get("config") or {},
                        labels=meta.get("labels") or {}, persist=False)
    steps_from_spans(recorder, spans, **options)
    return recorder.close()


def install(provider: Any = None, **options: Any) -> MatSpanProcessor:
    """Add a :class:`MatSpanProcessor` to ``provider`` (default: the global SDK provider,
    created with generous attribute limits if none is set) and return it.

    Raises the provider's span attribute count limit to :data:`ATTRIBUTE_LIMIT` and lifts
    the length limit, so flattened OpenInference messages are kept whole.
    """
    from opentelemetry import trace as otel_trace
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider

    if provider is None:
        current = otel_trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            provider = TracerProvider(span_limits=_limits(SpanLimits))
            otel_trace.set_tracer_provider(provider)
    limits = getattr(provider, "_span_limits", None)
    if limits is not None and (limits.max_span_attributes or 0) < ATTRIBUTE_LIMIT:
        provider._span_limits = _limits(SpanLimits)   # the SDK has no public setter
    processor = MatSpanProcessor(**options)
    provider.add_span_processor(processor)
    return processor


def _limits(span_limits: Callable[..., Any]) -> Any:
    return span_limits(max_span_attributes=ATTRIBUTE_LIMIT, max_event_attributes=ATTRIBUTE_LIMIT,
                       max_events=ATTRIBUTE_LIMIT, max_attribute_length=None)
