"""Message-Action Traces → OpenTelemetry spans, for the tools a team already looks at.

One OTel trace per MAT: a root span for the run (its name, config, labels, outcome,
verdicts and first violation), and a child span per step named and attributed after the
GenAI conventions (``chat gpt-4o`` with ``gen_ai.input.messages``, ``execute_tool
send_email`` with ``gen_ai.tool.call.arguments`` ...), so Jaeger, Tempo or Phoenix show the
run as they show any agent. Each span also carries the step itself as JSON
(``mattrace.step``), so :class:`~mattrace.integrations.otel.MatSpanProcessor` turns the spans
back into the same trace, fingerprint and all.

```python
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
export_traces([trace], OTLPSpanExporter("http://localhost:4318/v1/traces"), reports=[report])
```
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from mattrace.contracts import Report
from mattrace.integrations.otel import names as n
from mattrace.trace import Step, StepKind, Trace

__all__ = ["export_traces", "step_attributes"]

_OPERATION = {StepKind.LLM: "chat", StepKind.TOOL: "execute_tool", StepKind.RETRIEVAL: "retrieval",
              StepKind.DELEGATE: "invoke_agent", StepKind.MEMORY_READ: "memory_read",
              StepKind.MEMORY_WRITE: "memory_write"}


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _parts(message: dict[str, Any]) -> dict[str, Any]:
    """A chat message in the conventions' role + parts form."""
    parts: list[dict[str, Any]] = []
    if message.get("tool_call_id"):
        parts.append({"type": "tool_call_response", "id": message["tool_call_id"],
                      "response": message.get("content")})
    elif message.get("content") is not None:
        parts.append({"type": "text", "content": message["content"]})
    for call in message.get("tool_calls") or []:
        parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"),
                      "arguments": call.get("arguments")})
    return {"role": message.get("role", "user"), "parts": parts}


def step_attributes(step: Step) -> dict[str, Any]:
    """The span attributes of one step: GenAI conventions for viewers, ``mattrace.step`` to restore it."""
    attrs: dict[str, Any] = {n.STEP: _json(step.to_json_dict()), "mattrace.kind": step.kind.value,
                             n.AGENT_NAME: step.agent}
    if step.kind in _OPERATION:
        attrs[n.OPERATION] = _OPERATION[step.kind]
    args = step.args or {}
    if step.kind is StepKind.LLM:
        attrs[n.REQUEST_MODEL] = str(args.get("model") or step.target or "")
        messages = args.get("messages")
        if isinstance(messages, list):
            attrs[n.INPUT_MESSAGES] = _json([_parts(m) for m in messages if isinstance(m, dict)])
        if isinstance(step.result, dict):
            attrs[n.OUTPUT_MESSAGES] = _json([_parts({**step.result, "role": "assistant"})])
        tokens = step.attrs.get("tokens")
        if isinstance(tokens, dict):
            attrs[n.INPUT_TOKENS[0]] = int(tokens.get("prompt") or 0)
            attrs[n.OUTPUT_TOKENS[0]] = int(tokens.get("completion") or 0)
        if step.attrs.get("provider"):
            attrs[n.PROVIDER] = str(step.attrs["provider"])
    elif step.kind is StepKind.TOOL:
        attrs[n.TOOL_NAME] = step.target or ""
        attrs[n.TOOL_CALL_ARGUMENTS] = _json(args)
        attrs[n.TOOL_CALL_RESULT] = _json(step.result)
    elif step.kind is StepKind.RETRIEVAL:
        attrs[n.DATA_SOURCE_ID] = step.target or ""
        attrs[n.RETRIEVAL_QUERY] = _json(args.get("query", args))
        attrs[n.RETRIEVAL_DOCUMENTS] = _json(step.result)
    if step.side_effect:
        attrs["mattrace.side_effect"] = True
    if step.untrusted:
        attrs["mattrace.untrusted"] = True
    return attrs


def _span_name(step: Step) -> str:
    operation = _OPERATION.get(step.kind)
    if operation is None:
        return f"{step.kind.value} {step.target or step.agent}"
    return f"{operation} {step.target}" if step.target else operation


def _run_attributes(trace: Trace, report: Report | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        n.TRACE: _json({"name": trace.name, "config": trace.config, "labels": trace.labels,
                        "outcome": trace.outcome.model_dump(mode="json") if trace.outcome else None}),
        n.OPERATION: "invoke_workflow", "gen_ai.workflow.name": trace.name, "mattrace.trace_id": trace.trace_id,
    }
    if trace.outcome is not None:
        attrs["mattrace.outcome"] = trace.outcome.status
    if report is not None:
        attrs[n.VERDICTS] = _json({v.contract: v.status.value for v in report.verdicts})
        first = report.first_violation
        if first is not None:
            attrs[n.FIRST_VIOLATION] = f"{first.contract} at step {first.step}: {first.reason}"
    return attrs


def _export_one(tracer: otel_trace.Tracer, trace: Trace, report: Report | None) -> None:
    steps = [s for s in trace.steps if s.kind is not StepKind.END]   # the outcome is on the root span
    times = [t for s in trace.steps for t in (s.t_start, s.t_end) if t is not None]
    start, end = (min(times), max(times)) if times else (None, None)
    root = tracer.start_span(f"mattrace {trace.name}", attributes=_run_attributes(trace, report), start_time=start)
    context = otel_trace.set_span_in_context(root)
    first = report.first_violation if report is not None else None
    for step in steps:
        span = tracer.start_span(_span_name(step), context=context, attributes=step_attributes(step),
                                 start_time=step.t_start or start)
        if step.error is not None:
            span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, step.error.message))
        if first is not None and first.step == step.index:
            span.add_event("mattrace.violation", {"contract": first.contract, "reason": first.reason,
                                                  "severity": first.severity})
        span.end(end_time=step.t_end or step.t_start or end)
    root.end(end_time=end)


def export_traces(traces: Iterable[Trace], exporter: SpanExporter | None = None, *,
                  provider: TracerProvider | None = None, reports: Sequence[Report | None] | None = None,
                  service: str = "mattrace") -> int:
    """Send ``traces`` as spans (one OTel trace each) and return how many were sent.

    The spans go through ``provider`` if given, else through a private provider feeding
    ``exporter`` (so the application's own tracing setup is left alone). ``reports`` (one
    per trace, or None) add the verdicts and the first violation.
    """
    if provider is None:
        if exporter is None:
            raise ValueError("export_traces needs an exporter or a provider")
        # batched (one request per batch, not per span); the exporter stays the caller's to shut down
        provider = TracerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=512))
    elif exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("mattrace.export")
    count = 0
    for i, trace in enumerate(traces):
        _export_one(tracer, trace, reports[i] if reports is not None and i < len(reports) else None)
        count += 1
    provider.force_flush()
    return count
