"""OpenAI Agents SDK traces → Message-Action Traces, through the SDK's own tracing hook.

The Agents SDK does not emit OpenTelemetry spans: it has its own tracing, whose processors
see every trace and span of a run (agents, model calls, function tools, handoffs,
guardrails). :class:`MatTracingProcessor` is such a processor. Each SDK span is turned into
the :class:`~mattrace.integrations.otel.spans.SpanRecord` an OTel span would have been (the
GenAI attribute names) and handed to :func:`mattrace.integrations.otel.append_drafts`, so span
order, the acting agent, ``reads`` along tool call ids, trust and side effects are decided
by the same code for OTel spans and for the SDK::

    from mattrace.integrations.openai_agents import install
    install(side_effects=["send_email"])
    with mattrace.record("ticket") as rec:
        Runner.run_sync(agent, "refund order 1042")
    rec.trace            # delegate, llm, tool steps in span-start order

How SDK spans read as steps:

* generation spans (chat completions, LiteLLM) and response spans (the Responses API) →
  ``llm`` steps: the model, the input messages, the reply, ``attrs["tokens"]``;
* function spans → ``tool`` steps (target the function, args its parsed JSON input). The
  SDK's function spans do not carry the tool call id, so each is matched to the model call
  that asked for it by tool name and arguments: the model call after it then ``reads`` it;
* agent spans → ``delegate`` steps to that agent (content the user message its first model
  call answered, result the text of its last); the steps inside act as that agent;
* a handoff span → the ``delegate`` step from the agent handing off, merged with the span
  of the agent it starts (one step, ``attrs["handoff"]``); a handoff that started no agent
  is a step of its own;
* guardrail, custom and other spans → ``message`` steps with their data in ``attrs``;
* task and turn spans only group others: no step, their children belong to their parent.

Routing: a trace belongs to the ``record()`` block active when the SDK trace started (or,
for a trace started outside any block or resumed from a saved run state, when its first
span started inside one), so runs in concurrent threads or tests never mix. Its steps are
written when the trace ends (for a trace whose start was not seen: when its last open span
ends); a run that ends first takes what has arrived, spans still open included.
"""

from __future__ import annotations

import importlib
from typing import Any

from mattrace.integrations.openai_agents._processor import MatTracingProcessor

__all__ = ["install", "MatTracingProcessor"]


def install(**options: Any) -> MatTracingProcessor:
    """Add a :class:`MatTracingProcessor` to the SDK's trace processors and return it.

    ``options`` are those of :class:`MatTracingProcessor`. The SDK's other processors stay
    (by default its exporter to the OpenAI tracing backend, which sends traces over the
    network when an API key is set); ``agents.set_trace_processors([processor])`` keeps only
    this one.
    """
    agents = importlib.import_module("agents")
    processor = MatTracingProcessor(**options)
    agents.add_trace_processor(processor)
    return processor
