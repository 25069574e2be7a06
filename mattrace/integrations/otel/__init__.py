"""OpenTelemetry spans → Message-Action Traces, with no change to the code that emits them.

Most agent frameworks already emit spans (the GenAI conventions, or OpenInference).
:class:`MatSpanProcessor` is an OTel ``SpanProcessor``: add it to the process's tracer
provider (:func:`install` does, raising the attribute limits so flattened messages are
not cut) and every span started inside a ``mattrace.record()`` block, or a pytest
``mat.run()``, becomes a step of that run::

    from mattrace.integrations.otel import install
    install(side_effects=["send_email", "delete_*"])
    with mattrace.record("ticket") as rec:
        agent.run_sync("refund order 1042")       # pydantic-ai, LangGraph, ... emit spans
    rec.trace                                      # llm, tool, retrieval steps, in span-start order

Routing: a span belongs to the run that was active when its trace's first span started
(captured at ``on_start``), so concurrent tests and threads never mix. A trace's spans are
turned into steps when its last open span ends, ordered by start time; a run that ends
first takes what has arrived, and spans still open are recorded with a warning.
"""

from mattrace.integrations.otel._processor import (
    ATTRIBUTE_LIMIT,
    MatSpanProcessor,
    append_drafts,
    install,
    spans_to_trace,
    steps_from_spans,
)

__all__ = ["append_drafts", "ATTRIBUTE_LIMIT", "install", "MatSpanProcessor", "spans_to_trace", "steps_from_spans"]
