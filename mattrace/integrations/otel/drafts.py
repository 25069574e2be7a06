"""What one span means as a step: GenAI conventions first, then OpenInference, then as-is.

Each span becomes a :class:`Draft` (a step not yet given an index), read in this order:
mattrace's own ``mattrace.step`` attribute (a span mattrace exported: taken exactly), the
GenAI ``gen_ai.operation.name``, OpenInference's ``openinference.span.kind``, and
otherwise a ``message`` step that keeps the span's attributes. Nothing is dropped: what
cannot be read is left out of the step and named in ``attrs["mattrace_warning"]``.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mattrace.integrations.otel import names as n
from mattrace.integrations.otel.spans import SpanRecord, flattened, json_value
from mattrace.trace import Source, StepError, StepKind

__all__ = [
    "agent_name",
    "Draft",
    "draft",
    "glob_matcher",
    "span_role",
    "Trust",
]

Trust = Callable[[str, str], bool]
"""``trust(kind, name)``: whether a ``tool`` output or a ``retrieval`` from ``name`` is trusted."""


@dataclass
class Draft:
    """A step read from a span, before it has an index."""

    span: SpanRecord
    kind: StepKind
    target: str | None = None
    content: str | None = None
    args: dict[str, Any] | None = None
    result: Any = None
    error: StepError | None = None
    sources: list[Source] = field(default_factory=list)
    side_effect: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)
    agent: str | None = None
    agent_name: str | None = None
    """Set on an agent span: the agent it runs (its children act as this agent)."""
    requests: list[str] = field(default_factory=list)
    """Tool call ids an LLM step asked for."""
    answers: list[str] = field(default_factory=list)
    """Tool call ids whose results an LLM step read, or the id a tool step answered."""
    exact: dict[str, Any] | None = None
    """A step mattrace exported, to be restored as it was."""
    bare_input: bool = False
    """A tool's input was a bare value, not named arguments: the requesting call names them."""
    node: str | None = None
    """The LangGraph node the span ran in (an agent when no agent span encloses it)."""
    run: dict[str, Any] | None = None
    """The root span of a run mattrace exported: its name, config, labels, outcome (no step)."""

    def warn(self, text: str) -> None:
        previous = self.attrs.get(n.WARNING)
        self.attrs[n.WARNING] = f"{previous}; {text}" if previous else text


# -- which kind of span -------------------------------------------------------------------------------------


def span_role(span: SpanRecord) -> str:
    """``llm``, ``embedding``, ``agent``, ``tool``, ``retrieval``, ``memory_read``,
    ``memory_write``, ``chain`` or ``other``."""
    attrs = span.attributes
    op = str(attrs.get(n.OPERATION) or "").lower()
    if op:
        if op in n.LLM_OPERATIONS:
            return "llm"
        if op in n.EMBEDDING_OPERATIONS:
            return "embedding"
        if op in n.AGENT_OPERATIONS:
            return "agent"
        if op in n.TOOL_OPERATIONS:
            return "tool"
        if op in n.RETRIEVAL_OPERATIONS:
            return "retrieval"
        if "memory" in op:
            writes = ("write", "update", "add", "save", "store", "delete", "put", "set")
            return "memory_write" if any(w in op for w in writes) else "memory_read"
        if op in n.WORKFLOW_OPERATIONS:
            return "chain"
    kind = str(attrs.get(n.SPAN_KIND) or "").upper()
    return {"LLM": "llm", "EMBEDDING": "embedding", "AGENT": "agent", "TOOL": "tool", "RETRIEVER": "retrieval",
            "CHAIN": "chain"}.get(kind, "other")


def agent_name(span: SpanRecord) -> str:
    attrs = span.attributes
    for key in (n.AGENT_NAME, n.OI_AGENT_NAME, n.AGENT_ID):
        if attrs.get(key):
            return str(attrs[key])
    name = span.name
    for prefix in ("invoke_agent ", "create_agent ", "agent run", "agent "):
        if name.startswith(prefix) and name[len(prefix):].strip():
            return name[len(prefix):].strip()
    return name


# -- messages ---------------------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _genai_message(raw: Any) -> dict[str, Any]:
    """One message of ``gen_ai.input.messages`` / ``output.messages`` (role + parts) in chat form."""
    if not isinstance(raw, dict):
        return {"role": "user", "content": _text(raw)}
    out: dict[str, Any] = {"role": raw.get("role") or "user"}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in raw.get("parts") or []:
        if not isinstance(part, dict):
            texts.append(str(part))
            continue
        ptype = part.get("type")
        if ptype == "tool_call":
            calls.append({"id": part.get("id"), "name": part.get("name"),
                          "arguments": json_value(part.get("arguments"))})
        elif ptype == "tool_call_response":
            out["role"] = "tool"
            out["tool_call_id"] = part.get("id")
            answer = part.get("response", part.get("result"))   # pydantic-ai writes "result"
            texts.append(_text(json_value(answer)) or "")
        elif "content" in part:
            texts.append(_text(part.get("content")) or "")
    if "content" in raw and not raw.get("parts"):
        texts.append(_text(raw.get("content")) or "")
    out["content"] = "\n".join(t for t in texts if t) or None
    if calls:
        out["tool_calls"] = calls
    if raw.get("finish_reason"):
        out["finish_reason"] = raw["finish_reason"]
    return out


def _oi_message(raw: dict[str, Any]) -> dict[str, Any]:
    message = raw.get("message", raw)
    out: dict[str, Any] = {"role": message.get("role") or "user"}
    content = message.get("content")
    if content is None and isinstance(message.get("contents"), list):
        content = "\n".join(str((c.get("message_content") or {}).get("text") or "") for c in message["contents"]
                            if isinstance(c, dict))
    out["content"] = _text(content)
    calls = []
    for call in message.get("tool_calls") or []:
        tc = call.get("tool_call", call) if isinstance(call, dict) else {}
        fn = tc.get("function") or {}
        calls.append({"id": tc.get("id"), "name": fn.get("name"), "arguments": json_value(fn.get("arguments"))})
    if calls:
        out["tool_calls"] = calls
    if message.get("tool_call_id"):
        out["tool_call_id"] = message["tool_call_id"]
    if message.get("name"):
        out["name"] = message["name"]
    return out


def _messages(span: SpanRecord, d: Draft) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(input, output) messages from the JSON attributes, the flattened ones or the events."""
    attrs = span.attributes
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    system = json_value(attrs.get(n.SYSTEM_INSTRUCTIONS))
    if system:
        parts = system if isinstance(system, list) else [system]
        inputs.append({"role": "system", "content": "\n".join(
            _text(p.get("content")) or "" if isinstance(p, dict) else str(p) for p in parts)})
    raw_in, raw_out = json_value(attrs.get(n.INPUT_MESSAGES)), json_value(attrs.get(n.OUTPUT_MESSAGES))
    if raw_in is not None and not isinstance(raw_in, list):
        d.warn(f"{n.INPUT_MESSAGES} is not a JSON list")
    if raw_out is not None and not isinstance(raw_out, list):
        d.warn(f"{n.OUTPUT_MESSAGES} is not a JSON list")
    inputs += [_genai_message(m) for m in raw_in] if isinstance(raw_in, list) else []
    outputs += [_genai_message(m) for m in raw_out] if isinstance(raw_out, list) else []
    if not raw_in:
        inputs += [_oi_message(m) for m in flattened(attrs, n.OI_INPUT_MESSAGES)]
    if not raw_out:
        outputs += [_oi_message(m) for m in flattened(attrs, n.OI_OUTPUT_MESSAGES)]
    for name, event in span.events:   # the per-message events of the older conventions
        if name in n.MESSAGE_EVENTS:
            message = {"role": event.get("role") or n.MESSAGE_EVENTS[name],
                       "content": _text(json_value(event.get("content")))}
            if event.get("id"):
                message["tool_call_id"] = event["id"]
            inputs.append(message)
        elif name == n.CHOICE_EVENT:
            body = json_value(event.get("message"))
            outputs.append(_genai_message({"role": "assistant", **body}) if isinstance(body, dict)
                           else {"role": "assistant", "content": _text(body if body is not None
                                                                        else event.get("content"))})
    return inputs, outputs


def _first(attrs: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return None


def _number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# -- the drafts -----------------------------------------------------------------------------------------------------


def _llm(span: SpanRecord, d: Draft, embedding: bool) -> None:
    attrs = span.attributes
    model = _first(attrs, (n.REQUEST_MODEL, n.RESPONSE_MODEL, n.OI_MODEL)) or span.name
    d.target = str(model)
    inputs, outputs = _messages(span, d)
    d.args = {"model": d.target, "messages": inputs}
    if embedding:
        d.args["input"] = json_value(attrs.get(n.OI_INPUT_VALUE))
    reply = outputs[-1] if outputs else None
    if reply is not None:
        d.content = reply.get("content")
        d.result = {k: v for k, v in reply.items() if v is not None} | {"role": "assistant"}
        d.requests = [str(c["id"]) for c in reply.get("tool_calls") or [] if c.get("id")]
    d.answers = [str(m["tool_call_id"]) for m in inputs if m.get("tool_call_id")]
    prompt = _number(_first(attrs, (*n.INPUT_TOKENS, n.OI_PROMPT_TOKENS)))
    completion = _number(_first(attrs, (*n.OUTPUT_TOKENS, n.OI_COMPLETION_TOKENS)))
    tokens = {"prompt": prompt, "completion": completion,
              "total": _number(attrs.get(n.OI_TOTAL_TOKENS)) or prompt + completion}
    cache_read = _first(attrs, (*n.CACHE_READ_TOKENS, n.OI_CACHE_READ_TOKENS))
    cache_created = _first(attrs, n.CACHE_CREATION_TOKENS)
    if cache_read is not None:
        tokens["cache_read"] = _number(cache_read)
    if cache_created is not None:
        tokens["cache_creation"] = _number(cache_created)
    if any(tokens.values()):
        d.attrs["tokens"] = tokens
    provider = _first(attrs, (n.PROVIDER, n.SYSTEM, n.OI_PROVIDER, n.OI_SYSTEM))
    if provider:
        d.attrs["provider"] = str(provider)
    d.attrs["model"] = d.target
    if embedding:
        d.attrs["operation"] = "embeddings"


def _tool(span: SpanRecord, d: Draft, trust: Trust, side_effects: Callable[[str], bool]) -> None:
    attrs = span.attributes
    name = _first(attrs, (n.TOOL_NAME, n.OI_TOOL_NAME))
    if name is None:
        name = span.name.removeprefix("execute_tool ").removeprefix("running tool").strip() or span.name
        d.warn(f"no {n.TOOL_NAME}: the tool is named after the span")
    d.target = str(name)
    raw = _first(attrs, (n.TOOL_CALL_ARGUMENTS, n.OI_INPUT_VALUE, n.OI_TOOL_PARAMETERS))
    args = json_value(raw)
    d.args = args if isinstance(args, dict) else ({} if args is None else {"input": args})
    d.bare_input = args is not None and not isinstance(args, dict)
    call_id = _first(attrs, (n.TOOL_CALL_ID, n.OI_TOOL_CALL_ID))
    output = json_value(_first(attrs, (n.TOOL_CALL_RESULT, n.OI_OUTPUT_VALUE)))
    message = output.get("data") if isinstance(output, dict) and output.get("type") == "tool" else None
    if isinstance(message, dict):   # a serialized LangChain ToolMessage: the output, its call id, its status
        call_id = call_id or message.get("tool_call_id")
        output = json_value(message.get("content"))
        if message.get("status") == "error":
            d.error = StepError(type="ToolError", message=_text(output) or "error")
    d.result = output
    if call_id is not None:
        d.answers = [str(call_id)]
    d.side_effect = side_effects(d.target)
    # what a side effect returns ("sent") is not content anyone acts on; what a lookup returns is
    trusted = True if d.side_effect else trust("tool", d.target)
    d.sources.append(Source(kind="tool", ref=d.target, trusted=_label(attrs, trusted)))


def _label(attrs: dict[str, Any], configured: bool) -> bool:
    """The span's own trust label (``mattrace.trusted``), which wins over what the processor was configured
    with: the code that made the span knows where its output came from."""
    label = attrs.get(n.TRUSTED)
    return label if isinstance(label, bool) else configured


def _documents(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    docs = json_value(attrs.get(n.RETRIEVAL_DOCUMENTS))
    if isinstance(docs, list):
        return [d if isinstance(d, dict) else {"content": d} for d in docs]
    found = []
    for item in flattened(attrs, n.OI_DOCUMENTS):
        doc = item.get("document", item)
        if isinstance(doc, dict):
            found.append(doc)
    return found


def _retrieval(span: SpanRecord, d: Draft, trust: Trust) -> None:
    attrs = span.attributes
    d.target = str(attrs.get(n.DATA_SOURCE_ID) or span.name.removeprefix("retrieval ").strip() or span.name)
    query = _first(attrs, (n.RETRIEVAL_QUERY, n.OI_INPUT_VALUE))
    d.args = {"query": json_value(query)} if query is not None else {}
    trusted = _label(attrs, trust("retrieval", d.target))
    docs = []
    for i, doc in enumerate(_documents(attrs)):
        doc_id = str(doc.get("id") or f"{d.target}#{i}")
        text = doc.get("content", doc.get("text"))
        docs.append({"id": doc_id, "text": _text(json_value(text)), **({"score": doc["score"]} if "score" in doc
                                                                         else {})})
        label = doc.get("trusted")   # one document's own label wins over its retriever's
        d.sources.append(Source(kind="retrieval", ref=doc_id, trusted=label if isinstance(label, bool) else trusted))
    d.result = docs
    if not docs:
        d.sources.append(Source(kind="retrieval", ref=d.target, trusted=trusted))


def _agent(span: SpanRecord, d: Draft) -> None:
    """The task an agent was given (content) and what it answered (result)."""
    attrs = span.attributes
    d.agent_name = agent_name(span)
    d.target = d.agent_name
    inputs, outputs = _messages(span, d)
    history = json_value(attrs.get(n.PYDANTIC_AI_MESSAGES))
    if not any(m.get("role") == "user" for m in inputs) and isinstance(history, list):
        # pydantic-ai keeps the run's conversation here
        start = _number(attrs.get(n.PYDANTIC_AI_NEW_MESSAGES))
        inputs = [_genai_message(m) for m in history[start:]]
    task = next((m.get("content") for m in inputs if m.get("role") == "user" and m.get("content")), None)
    d.content = task or _text(json_value(attrs.get(n.OI_INPUT_VALUE)))
    answer = attrs.get(n.FINAL_RESULT, attrs.get(n.OI_OUTPUT_VALUE))
    if answer is None and outputs:
        answer = outputs[-1].get("content")
    d.result = json_value(answer)


def _other(span: SpanRecord, d: Draft) -> None:
    attrs = span.attributes
    d.target = span.name
    output = json_value(attrs.get(n.OI_OUTPUT_VALUE))
    d.content = _text(output) if output is not None else None
    d.attrs["span_attributes"] = {k: v for k, v in attrs.items() if not k.startswith(n.OI_INPUT_MESSAGES)}


_KINDS = {"llm": StepKind.LLM, "embedding": StepKind.LLM, "agent": StepKind.DELEGATE, "tool": StepKind.TOOL,
          "retrieval": StepKind.RETRIEVAL, "memory_read": StepKind.MEMORY_READ, "memory_write": StepKind.MEMORY_WRITE}


def draft(span: SpanRecord, trust: Trust, side_effects: Callable[[str], bool]) -> Draft:
    """The step a span stands for (never raises: what cannot be read becomes a warning)."""
    run = json_value(span.attributes.get(n.TRACE))
    if isinstance(run, dict):
        return Draft(span, StepKind.MESSAGE, run=run)
    exact = json_value(span.attributes.get(n.STEP))
    if isinstance(exact, dict):
        return Draft(span, StepKind(exact["kind"]), exact=exact)
    role = span_role(span)
    d = Draft(span, _KINDS.get(role, StepKind.MESSAGE))
    d.attrs["span"] = span.name
    metadata = json_value(span.attributes.get(n.OI_METADATA))
    if isinstance(metadata, dict) and isinstance(metadata.get(n.LANGGRAPH_NODE), str):
        d.node = metadata[n.LANGGRAPH_NODE]
    try:
        if role in ("llm", "embedding"):
            _llm(span, d, role == "embedding")
        elif role == "tool":
            _tool(span, d, trust, side_effects)
        elif role == "retrieval":
            _retrieval(span, d, trust)
        elif role == "agent":
            _agent(span, d)
        elif role in ("memory_read", "memory_write"):
            d.target = span.name
            d.args = {k: v for k, v in span.attributes.items() if not k.startswith("gen_ai.operation")}
        else:
            _other(span, d)
            if role == "other":
                d.attrs["span_role"] = "unknown"
    except Exception as exc:   # a malformed span still becomes a step, with what could be read
        d.warn(f"could not read the span's {role} attributes: {type(exc).__name__}: {exc}")
    if span.error is not None:
        d.error = StepError(type=span.error_type or "SpanError", message=span.error)
    if span.open:
        d.warn("the span was still open when the run ended")
    return d


def glob_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """``name`` matches one of the glob patterns."""
    pats = list(patterns)
    return lambda name: any(fnmatch.fnmatchcase(name, p) for p in pats)
