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
import itertools
import json
import logging
import threading
import time
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mattrace.integrations.otel import append_drafts
from mattrace.integrations.otel import names as names
from mattrace.integrations.otel.drafts import Draft, Trust, draft, glob_matcher
from mattrace.integrations.otel.spans import SpanRecord, json_value
from mattrace.recording.context import active_recorder
from mattrace.recording.jsonable import to_jsonable
from mattrace.recording.recorder import Recorder
from mattrace.trace import StepKind

__all__ = ["install", "MatTracingProcessor"]

log = logging.getLogger("mattrace.openai_agents")

_GROUPING = frozenset({"task", "turn"})
"""SDK span types that only group other spans (no step of their own)."""
_LATE_TRACES = 4096
"""How many traces whose run ended first are remembered, so their later spans are not re-routed."""


# -- one SDK span as a SpanRecord --------------------------------------------------------------------------------


@dataclass
class _Converted:
    """A span read from the SDK, with what the step needs beyond the GenAI attributes."""

    record: SpanRecord
    type: str
    attrs: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    """(call id, tool name, arguments) of the tool calls an llm span asked for."""
    tool: tuple[str, Any] | None = None
    """(name, arguments) of a function span."""
    task: str | None = None
    answer: str | None = None
    """An llm span's latest user message and the text it answered."""
    agent: str | None = None
    handoff: tuple[str | None, str | None] | None = None
    message: tuple[str, str | None] | None = None
    """(target, content) of a span read as a ``message`` step."""


def _plain(value: Any) -> Any:
    """SDK data (pydantic models, TypedDicts, tuples) as plain JSON-able data."""
    return to_jsonable(value)


def _json(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, ensure_ascii=False)


def _text_parts(content: Any) -> list[dict[str, Any]]:
    """Message content (a string, or a list of chat / Responses content parts) as GenAI text parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    if not isinstance(content, list):
        return [{"type": "text", "content": _json(content)}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            parts.append({"type": "text", "content": part})
        elif isinstance(part, dict):
            text = part.get("text", part.get("refusal"))
            if isinstance(text, str):
                parts.append({"type": "text", "content": text})
    return parts


def _message(item: Any) -> dict[str, Any] | None:
    """One input or output item, in chat form or Responses form, as a GenAI message (role + parts)."""
    item = _plain(item)
    if isinstance(item, str):
        return {"role": "user", "parts": _text_parts(item)}
    if not isinstance(item, dict):
        return None
    kind = item.get("type")
    if kind == "function_call":
        return {"role": "assistant", "parts": [{"type": "tool_call", "id": item.get("call_id"),
                                                "name": item.get("name"), "arguments": item.get("arguments")}]}
    if kind == "function_call_output":
        output = item.get("output")
        if isinstance(output, list):
            output = "\n".join(p["content"] for p in _text_parts(output))
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": item.get("call_id"),
                                           "response": output}]}
    if kind not in (None, "message") or "role" not in item:
        return None   # reasoning, hosted tool calls (web search, file search, ...)
    role = str(item.get("role") or "user")
    if role == "tool":   # chat form
        text = "\n".join(p["content"] for p in _text_parts(item.get("content")))
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": item.get("tool_call_id"),
                                           "response": text}]}
    parts = _text_parts(item.get("content"))
    if isinstance(item.get("refusal"), str):
        parts.append({"type": "text", "content": item["refusal"]})
    for call in item.get("tool_calls") or ():
        if isinstance(call, dict):
            fn = call.get("function") or {}
            parts.append({"type": "tool_call", "id": call.get("id"), "name": fn.get("name", call.get("name")),
                          "arguments": fn.get("arguments", call.get("arguments"))})
    return {"role": role, "parts": parts}


def _messages(items: Any) -> list[dict[str, Any]]:
    """Input or output items as GenAI messages; a tool call joins the assistant message before it."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    out: list[dict[str, Any]] = []
    for item in items if isinstance(items, list | tuple) else [items]:
        message = _message(item)
        if message is None:
            continue
        calls_only = all(p.get("type") == "tool_call" for p in message["parts"])
        if message["role"] == "assistant" and calls_only and out and out[-1]["role"] == "assistant":
            out[-1]["parts"].extend(message["parts"])
        else:
            out.append(message)
    return out


def _reply(items: Any) -> list[dict[str, Any]]:
    """A model call's output items as the one assistant message they are."""
    messages = _messages(items)
    if len(messages) <= 1:
        return messages
    return [{"role": "assistant", "parts": [p for m in messages for p in m["parts"]]}]


def _usage(attributes: dict[str, Any], usage: Any) -> None:
    usage = _plain(usage)
    if not isinstance(usage, dict):
        return
    prompt = usage.get("input_tokens", usage.get("prompt_tokens"))
    completion = usage.get("output_tokens", usage.get("completion_tokens"))
    if prompt is not None:
        attributes[names.INPUT_TOKENS[0]] = prompt
    if completion is not None:
        attributes[names.OUTPUT_TOKENS[0]] = completion
    if usage.get("total_tokens"):
        attributes[names.OI_TOTAL_TOKENS] = usage["total_tokens"]
    details = usage.get("input_tokens_details") or usage.get("prompt_tokens_details")
    if isinstance(details, dict) and details.get("cached_tokens"):
        attributes[names.CACHE_READ_TOKENS[0]] = details["cached_tokens"]


def _text_of(message: dict[str, Any]) -> str | None:
    return "\n".join(p["content"] for p in message["parts"] if p.get("type") == "text") or None


def _llm(out: _Converted, inputs: list[dict[str, Any]], reply: list[dict[str, Any]]) -> None:
    attributes = out.record.attributes
    attributes[names.INPUT_MESSAGES] = _json(inputs)
    attributes[names.OUTPUT_MESSAGES] = _json(reply)
    out.calls = _requested(reply)
    out.task = next((_text_of(m) for m in reversed(inputs) if m["role"] == "user"), None)
    out.answer = _text_of(reply[-1]) if reply else None


def _requested(reply: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return [(str(p["id"]), str(p.get("name")), json_value(p.get("arguments")))
            for m in reply for p in m["parts"] if p.get("type") == "tool_call" and p.get("id")]


def _convert(span: Any, span_id: int, parent_id: int | None, trace_id: int, start: int, end: int | None,
             still_open: bool = False) -> _Converted:
    """The SpanRecord (GenAI attribute names) of one SDK span, and the extras of its step."""
    data = span.span_data
    kind = str(getattr(data, "type", "") or "unknown")
    attributes: dict[str, Any] = {"openai_agents.span.type": kind}
    record = SpanRecord(trace_id=trace_id, span_id=span_id, parent_id=parent_id, name=kind, start=start,
                        end=end, attributes=attributes, open=still_open)
    error = getattr(span, "error", None)
    if isinstance(error, dict):
        detail = error.get("data") if isinstance(error.get("data"), dict) else {}
        record.error = str(error.get("message") or "error")
        if detail and detail.get("error"):
            record.error = f"{record.error}: {detail['error']}"
    out = _Converted(record, kind)
    if kind == "generation":
        attributes[names.OPERATION] = "chat"
        record.name = f"chat {data.model or ''}".strip()
        if data.model:
            attributes[names.REQUEST_MODEL] = str(data.model)
        _llm(out, _messages(data.input), _reply(data.output))
        _usage(attributes, data.usage)
        if data.model_config:
            out.attrs["model_config"] = _plain(dict(data.model_config))
    elif kind == "response":
        response = data.response
        attributes[names.OPERATION] = "chat"
        attributes[names.PROVIDER] = "openai"
        model = getattr(response, "model", None)
        record.name = f"chat {model or ''}".strip()
        if model:
            attributes[names.RESPONSE_MODEL] = str(model)
        instructions = getattr(response, "instructions", None)
        if isinstance(instructions, str) and instructions:
            attributes[names.SYSTEM_INSTRUCTIONS] = _json([{"type": "text", "content": instructions}])
        _llm(out, _messages(data.input), _reply(getattr(response, "output", None)))
        _usage(attributes, data.usage if data.usage is not None else getattr(response, "usage", None))
        if getattr(response, "id", None):
            out.attrs["response_id"] = str(response.id)
    elif kind == "function":
        name = str(data.name)
        record.name = f"execute_tool {name}"
        attributes[names.OPERATION] = "execute_tool"
        attributes[names.TOOL_NAME] = name
        if data.input is not None:
            attributes[names.TOOL_CALL_ARGUMENTS] = str(data.input)
        if data.output is not None:
            output = data.output
            attributes[names.TOOL_CALL_RESULT] = output if isinstance(output, str) else _json(output)
        out.tool = (name, json_value(data.input) if data.input else None)
        if data.mcp_data:
            out.attrs["mcp"] = _plain(data.mcp_data)
    elif kind == "agent":
        out.agent = str(data.name)
        record.name = f"invoke_agent {out.agent}"
        attributes[names.OPERATION] = "invoke_agent"
        attributes[names.AGENT_NAME] = out.agent
        described = {"tools": data.tools, "handoffs": data.handoffs, "output_type": data.output_type}
        out.attrs["agent"] = {k: _plain(v) for k, v in described.items() if v}
    elif kind == "handoff":
        out.handoff = (data.from_agent, data.to_agent)
        record.name = f"handoff {data.from_agent} -> {data.to_agent}"
        attributes[names.OPERATION] = "invoke_agent"
        attributes[names.AGENT_NAME] = str(data.to_agent or "unknown agent")
        out.attrs["handoff"] = {"from": data.from_agent, "to": data.to_agent}
    elif kind == "guardrail":
        record.name = f"guardrail {data.name}"
        verdict = "triggered" if data.triggered else "passed"
        out.message = (str(data.name), f"guardrail {data.name}: {verdict}")
        out.attrs["guardrail"] = {"name": data.name, "triggered": bool(data.triggered)}
    else:   # custom, mcp_tools, transcription, speech, ... and types this module does not know
        exported = _plain(data.export()) if hasattr(data, "export") else {}
        exported = exported if isinstance(exported, dict) else {"data": exported}
        exported.pop("type", None)
        label = str(getattr(data, "name", None) or kind)
        record.name = f"{kind} {label}" if label != kind else kind
        out.message = (label, None)
        out.attrs["data"] = exported.get("data", exported) if kind == "custom" else exported
    return out


# -- SpanRecords → drafts ---------------------------------------------------------------------------------------


def _match_tool_calls(spans: list[_Converted]) -> None:
    """Give each function span the id of the tool call it answers (the SDK's spans leave it out):
    the earliest unanswered call of the same tool with the same arguments, else of the same tool."""
    open_calls: list[tuple[str, str, Any]] = []
    for c in spans:
        open_calls.extend(c.calls)
        if c.tool is None or names.TOOL_CALL_ID in c.record.attributes:
            continue
        name, args = c.tool
        same_tool = [call for call in open_calls if call[1] == name]
        found = next((call for call in same_tool if call[2] == args), same_tool[0] if same_tool else None)
        if found is not None:
            open_calls.remove(found)
            c.record.attributes[names.TOOL_CALL_ID] = found[0]


def _agent_tasks(spans: list[_Converted]) -> None:
    """An agent span's task is the user message its first model call answered; its answer, the text
    of its last model call (the SDK's agent spans carry neither)."""
    by_id = {c.record.span_id: c for c in spans}
    for c in spans:
        if c.task is None and c.answer is None:
            continue
        parent = by_id.get(c.record.parent_id) if c.record.parent_id is not None else None
        while parent is not None and parent.agent is None:
            parent = by_id.get(parent.record.parent_id) if parent.record.parent_id is not None else None
        if parent is None:
            continue
        attributes = parent.record.attributes
        if c.task is not None:
            attributes.setdefault(names.OI_INPUT_VALUE, c.task)
        if c.answer is not None:
            attributes[names.OI_OUTPUT_VALUE] = c.answer


def _merge_handoffs(spans: list[_Converted]) -> list[_Converted]:
    """A handoff and the agent span it starts become one delegate step, from the agent handing off."""
    dropped: set[int] = set()
    claimed: set[int] = set()
    for i, c in enumerate(spans):
        if c.handoff is None or not c.handoff[1]:
            continue
        started = next((s for s in spans[i + 1:] if s.agent == c.handoff[1] and id(s) not in claimed), None)
        if started is None:
            continue
        claimed.add(id(started))
        dropped.add(id(c))
        started.record.parent_id = c.record.parent_id
        started.attrs["handoff"] = c.attrs["handoff"]
    return [c for c in spans if id(c) not in dropped]


def _drafts(spans: list[_Converted], trust: Trust, side_effects: Callable[[str], bool]) -> list[Draft]:
    spans = sorted(spans, key=lambda c: (c.record.start, c.record.end or 0))
    _match_tool_calls(spans)
    _agent_tasks(spans)
    drafts = []
    for c in _merge_handoffs(spans):
        d = draft(c.record, trust, side_effects)
        if c.handoff is not None:   # a handoff with no agent span after it: its step names no agent of its own
            d.agent_name = None
        if c.message is not None:
            d.target, d.content = c.message
            d.attrs.pop("span_attributes", None)
            d.attrs.pop("span_role", None)
        d.attrs.update(c.attrs)
        drafts.append(d)
    return drafts


# -- the processor ------------------------------------------------------------------------------------------------


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
