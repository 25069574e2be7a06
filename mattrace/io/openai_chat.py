"""Import agent runs logged in OpenAI chat format as Message-Action Traces.

Most agent frameworks and benchmarks (tau-bench, SWE-agent style logs, AutoGen/OpenAI
Agents exports) store a run as the chat-completion message list the model saw. This
module turns such a list into a :class:`~mattrace.trace.Trace`, so contracts, reports and
``mattrace show`` work on runs that were never recorded live.

Accepted files (:func:`import_openai`): a JSON list of messages, an object with a
``messages`` list, or JSONL of either (:mod:`mattrace.io._chat_file` says how each is read).

Mapping, per message (position ``i`` is kept in every step's ``attrs["source_index"]``):

* ``system``/``developer`` -> ``message`` step by agent ``system``;
* ``user`` -> ``message`` step by ``user`` to ``assistant`` (source ``user``);
* ``assistant`` text -> ``message`` step by ``assistant`` to ``user`` (source ``agent``); an
  assistant message with tool calls and no text makes no message step;
* a ``user`` or ``assistant`` message with a ``name`` (a group chat's speaker: AG2/AutoGen,
  Magentic-One) is that participant's: agent ``name``, no target (the log does not say
  whom a group message is for), source ``agent:<name>`` (``user`` when the name is ``user``);
* each assistant tool call (and a legacy ``function_call``) -> one ``tool`` step by the
  assistant, target the function name, ``args`` the parsed arguments (arguments that
  are not a JSON object: ``{"_raw": text}`` plus ``attrs["args_error"]``). Its result is
  the content of the ``tool``/``function`` message answering it, joined by
  ``tool_call_id``; without an id, by name (first unanswered call of that name); without
  either, by position (the next unanswered call of the last assistant message, which
  answers each call once; ``attrs["result_matched_by"] = "position"``). The result is
  parsed as JSON when it is JSON; ``attrs["result_source_index"]`` is that message's
  position. A call never answered has ``result=None`` and ``attrs["no_result"]``; a tool
  message answering no call is its own ``tool`` step with ``attrs["orphan_result"]``,
  untrusted when the log does not name its tool (``attrs["no_tool_name"]``).
* Content given as a list of parts is its text parts joined by newlines: a text part holds
  its text in ``text`` (OpenAI) or ``content`` (AgentDojo). The types of other parts
  (images, audio, reasoning) are kept in ``attrs["non_text_parts"]``.
* AgentDojo's own message shape reads too: a call ``{"function": name, "args": {...},
  "id": ...}`` and a result naming its call in ``tool_call``.

What could not be mapped exactly (results matched by position, results answering no
call) is listed by :func:`chat_gaps` and warned about (:class:`~mattrace.errors.ImportGapWarning`,
naming the file, line and message positions).

``reads`` are filled from conversation order, since a log says nothing else about what
each output consumed:

* all steps of one assistant message (its text and its parallel tool calls) read the same
  set, never each other: every step since the previous assistant message (user, system
  and orphan steps, and tool steps whose results came back in between) plus the last
  step of the previous assistant message;
* a user message reads the steps of the assistant message before it;
* system messages and orphan tool results read nothing.

Nothing is invented: no ``end`` step and no outcome (a log does not say how the run ended),
and no trust or side effects beyond what the caller names (``untrusted_tools``,
``side_effect_tools``; ``"*"`` names every tool). Bad input raises
:class:`~mattrace.errors.TraceFormatError` naming the file, the JSONL line and the
message position.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mattrace.errors import TraceFormatError
from mattrace.io._chat_file import (
    JSONL_SUFFIXES,
    NOT_MESSAGES,
    json_or_text,
    jsonl_runs,
    loads,
    looks_like_jsonl,
    type_name,
    unpack,
)
from mattrace.io.gaps import ImportGap, collect, warn_gaps
from mattrace.recording.options import DEFAULT_DIR
from mattrace.recording.recorder import slug
from mattrace.recording.redact import Redactor
from mattrace.trace import Source, Step, StepKind, Trace, validation_summary
from mattrace.tracefile import TraceWriter

__all__ = [
    "CHAT_ROLES",
    "chat_gaps",
    "import_openai",
    "trace_from_messages",
    "write_trace",
]

CHAT_ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant", "tool", "function")
_TEXT_PARTS = ("text", "input_text", "output_text", "refusal")


def import_openai(source: str | os.PathLike[str], *, name: str | None = None,
                  untrusted_tools: Iterable[str] = (),
                  side_effect_tools: Iterable[str] = ()) -> list[Trace]:
    """Read a file of OpenAI chat-format runs; one trace per run (one per line for JSONL).

    Args:
        source: a ``.json`` file (a message list, or an object with ``messages``) or a
            JSONL file of those, one run per line.
        name: the trace name (default: the file's stem); JSONL traces get ``#<line>``.
        untrusted_tools: tools whose results are untrusted (``"*"``: all tools).
        side_effect_tools: tools that change the outside world (``"*"``: all tools).

    Raises:
        TraceFormatError: the file is unreadable, empty, not JSON, or holds something
            that is not a chat log; the message names the file, line and message.

    Warns:
        ImportGapWarning: once per run that could not be mapped exactly (see
            :func:`chat_gaps`), naming the file, line and message positions.
    """
    path = Path(source)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise TraceFormatError(path, None, f"cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise TraceFormatError(path, None, f"file is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if not text.strip():
        raise TraceFormatError(path, None, "file is empty; expected a JSON chat log")
    base = name if name is not None else path.stem
    untrusted, side_effects = frozenset(untrusted_tools), frozenset(side_effect_tools)
    runs: list[tuple[int | None, Any]]
    if path.suffix.lower() in JSONL_SUFFIXES:
        runs = jsonl_runs(path, text)
    else:
        try:
            runs = [(None, loads(text))]
        except json.JSONDecodeError as exc:
            if not looks_like_jsonl(text):
                raise TraceFormatError(path, exc.lineno, f"not valid JSON ({exc.msg}, column {exc.colno})") from None
            runs = jsonl_runs(path, text)
    traces = []
    for line, data in runs:
        messages, labels, config = unpack(path, line, data)
        config["import"] = {"format": "openai", "file": path.name} | ({"line": line} if line else {})
        trace = _build(messages, name=base if line is None else f"{base}#{line}", labels=labels,
                       config=config, untrusted=untrusted, side_effects=side_effects, origin=path, line=line)
        warn_gaps(f"{path}:{line}" if line is not None else str(path), chat_gaps(trace))
        traces.append(trace)
    return traces


def trace_from_messages(messages: Sequence[Mapping[str, Any]], *, name: str,
                        labels: Mapping[str, str] | None = None,
                        config: Mapping[str, Any] | None = None,
                        untrusted_tools: Iterable[str] = (),
                        side_effect_tools: Iterable[str] = (),
                        origin: str | os.PathLike[str] | None = None,
                        line: int | None = None) -> Trace:
    """Turn one already-parsed OpenAI chat message list into a trace (mapping: module doc).

    Args:
        messages: the chat messages, in order.
        name: the trace name.
        labels: the trace's labels; config: its config.
        untrusted_tools: tools whose results are untrusted (``"*"``: all tools).
        side_effect_tools: tools that change the outside world (``"*"``: all tools).
        origin, line: where the messages came from, for error and warning messages (default:
            the trace's name); with ``line``, also each step's ``attrs["source_line"]``.

    Raises:
        TraceFormatError: a message is malformed (named by its position).

    Warns:
        ImportGapWarning: the messages could not be mapped exactly (see :func:`chat_gaps`).
    """
    where = name if origin is None else os.fspath(origin)
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise TraceFormatError(where, line, NOT_MESSAGES)
    trace = _build(messages, name=name, labels=dict(labels or {}), config=dict(config or {}),
                   untrusted=frozenset(untrusted_tools), side_effects=frozenset(side_effect_tools),
                   origin=where, line=line)
    warn_gaps(f"{where}:{line}" if line is not None else where, chat_gaps(trace))
    return trace


def chat_gaps(trace: Trace) -> tuple[ImportGap, ...]:
    """What the import of a chat log could not map exactly, with message positions.

    ``by_position``: tool results with neither id nor tool name, joined to their call by
    position; ``no_call``: tool results naming a tool (or id) that no call matches, kept as
    their own step; ``no_tool_name``: tool results that name no tool and answer no call,
    kept as their own untrusted step. Empty for a log that maps exactly. Calls never
    answered and arguments that are not JSON are kept as the log has them, so they are
    not gaps.
    """
    found: dict[str, list[int]] = {}
    for s in trace.steps:
        if s.attrs.get("result_matched_by") == "position":
            found.setdefault("by_position", []).append(s.attrs["result_source_index"])
        elif s.attrs.get("orphan_result"):
            kind = "no_tool_name" if s.attrs.get("no_tool_name") else "no_call"
            found.setdefault(kind, []).append(s.attrs["source_index"])
    return collect(found)


def write_trace(trace: Trace, dir: str | os.PathLike[str] = DEFAULT_DIR) -> Path:
    """Write ``trace`` as a sealed trace file in ``dir`` and return its path.

    The file is named like a recorded one (``<name>-<trace id prefix>.jsonl``) and is never
    overwritten; a file that could not be written whole is removed again. Secrets are
    redacted first, in every field, as in a recorded run (an imported chat log holds the
    same keys and tokens a live run would).
    """
    trace = Redactor.default().trace(trace)
    path = Path(dir) / f"{slug(trace.name)}-{trace.trace_id[:8]}.jsonl"
    writer = TraceWriter(path, trace)
    try:
        for step in trace.steps:
            writer.write_step(step)
        writer.seal(trace.outcome)
    except BaseException:
        writer.close()
        path.unlink(missing_ok=True)
        raise
    return path


# -- building the trace ------------------------------------------------------------------------

@dataclass
class _Call:
    """A tool step being built; its result arrives with a later message."""

    index: int
    name: str
    call_id: str | None
    answered: bool = False


@dataclass
class _Builder:
    origin: str
    line: int | None
    untrusted: frozenset[str]
    side_effects: frozenset[str]
    steps: list[dict[str, Any]] = field(default_factory=list)
    calls: list[_Call] = field(default_factory=list)
    round: list[_Call] = field(default_factory=list)  # the calls of the last assistant message, in order
    speaker: str = "assistant"  # the agent of the last assistant message
    since_assistant: list[int] = field(default_factory=list)  # steps the next assistant message reads
    last_assistant: list[int] = field(default_factory=list)  # steps of the last assistant message

    def fail(self, position: int, reason: str) -> TraceFormatError:
        return TraceFormatError(self.origin, self.line, f"message {position}: {reason}")

    def add(self, position: int, kind: StepKind, agent: str, *, reads: Iterable[int] = (),
            attrs: dict[str, Any] | None = None, **fields: Any) -> int:
        index = len(self.steps)
        base: dict[str, Any] = {"source_index": position}
        if self.line is not None:
            base["source_line"] = self.line
        self.steps.append(dict(index=index, kind=kind, agent=agent, reads=tuple(sorted(set(reads))),
                               attrs=base | (attrs or {}), **fields))
        return index

    def tool_source(self, name: str | None) -> Source:
        """A tool's output is trusted unless named untrusted; a tool the log does not name is not."""
        trusted = name is not None and "*" not in self.untrusted and name not in self.untrusted
        return Source(kind="tool", ref=name, trusted=trusted)

    def side_effect(self, name: str | None) -> bool:
        return "*" in self.side_effects or name in self.side_effects


def _build(messages: Sequence[Any], *, name: str, labels: dict[str, str], config: dict[str, Any],
           untrusted: frozenset[str], side_effects: frozenset[str],
           origin: str | os.PathLike[str], line: int | None) -> Trace:
    b = _Builder(os.fspath(origin), line, untrusted, side_effects)
    for position, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            raise b.fail(position, f"not a JSON object (got {type_name(msg)})")
        role = msg.get("role")
        if role is None:
            hint = " (it looks like a whole run: put one run per JSONL line)" if "messages" in msg else ""
            raise b.fail(position, f"has no 'role'{hint}")
        if role not in CHAT_ROLES:
            raise b.fail(position, f"role {role!r} is not a chat role (expected one of: {', '.join(CHAT_ROLES)})")
        text, extra = _content(b, position, msg.get("content"))
        if role in ("system", "developer"):
            b.since_assistant.append(b.add(
                position, StepKind.MESSAGE, "system", content=text,
                sources=(Source(kind="agent", ref="system"),), attrs=extra | _role_attrs(role, msg)))
        elif role == "user":
            speaker = _speaker(b, position, msg)
            b.since_assistant.append(b.add(
                position, StepKind.MESSAGE, speaker or "user", target=None if speaker else "assistant",
                content=text, sources=(_speaker_source(speaker or "user"),), reads=b.last_assistant,
                attrs=extra | _role_attrs(role, msg, named=speaker is not None)))
        elif role == "assistant":
            _assistant(b, position, msg, text, extra)
        else:
            _tool_result(b, position, msg, role, text, extra)
    for call in b.calls:
        if not call.answered:
            b.steps[call.index]["attrs"]["no_result"] = True
            b.steps[call.index]["sources"] = ()
    try:
        steps = [Step(**s) for s in b.steps]
        return Trace(trace_id=uuid.uuid4().hex, name=name, config=config, labels=labels, steps=steps)
    except ValidationError as exc:  # e.g. a name that is not text
        raise TraceFormatError(b.origin, line, f"cannot make a trace: {validation_summary(exc)}") from None


def _assistant(b: _Builder, position: int, msg: Mapping[str, Any], text: str | None,
               extra: dict[str, Any]) -> None:
    speaker = _speaker(b, position, msg)
    calls = _tool_calls(b, position, msg)
    reads = set(b.since_assistant)
    if b.last_assistant:
        reads.add(b.last_assistant[-1])
    made: list[int] = []
    agent = speaker or "assistant"
    attrs = extra | _role_attrs("assistant", msg, named=speaker is not None)
    if text or not calls:  # an answer without text or calls is still an answer: kept
        made.append(b.add(position, StepKind.MESSAGE, agent, target=None if speaker else "user", content=text,
                          sources=(_speaker_source(agent),), reads=reads, attrs=attrs))
        attrs = {}
    b.round = []
    for call_id, fname, args, args_error in calls:
        call_attrs: dict[str, Any] = dict(attrs)
        if call_id is not None:
            call_attrs["tool_call_id"] = call_id
        if args_error is not None:
            call_attrs["args_error"] = args_error
        index = b.add(position, StepKind.TOOL, agent, target=fname, args=args,
                      side_effect=b.side_effect(fname), sources=(b.tool_source(fname),), reads=reads,
                      attrs=call_attrs)
        b.calls.append(_Call(index, fname, call_id))
        b.round.append(b.calls[-1])
        made.append(index)
    b.speaker = agent
    b.last_assistant = made
    b.since_assistant = []


def _tool_calls(b: _Builder, position: int,
                msg: Mapping[str, Any]) -> list[tuple[str | None, str, dict[str, Any], str | None]]:
    """(id, name, args, args error) of each call an assistant message makes."""
    raw_calls = msg.get("tool_calls")
    if raw_calls is None:
        raw_calls = []
    if not isinstance(raw_calls, list):
        raise b.fail(position, f"'tool_calls' is not a list (got {type_name(raw_calls)})")
    entries: list[tuple[str, Any]] = [(f"tool call {k}", c) for k, c in enumerate(raw_calls)]
    if msg.get("function_call") is not None:  # the pre-tools function-calling format
        entries.append(("function_call", {"type": "function", "function": msg["function_call"]}))
    calls = []
    for what, call in entries:
        if not isinstance(call, Mapping):
            raise b.fail(position, f"{what} is not a JSON object (got {type_name(call)})")
        fn = call.get("function")
        if isinstance(fn, str) and "args" in call:  # AgentDojo: {"function": name, "args": {...}, "id": ...}
            fn = {"name": fn, "arguments": call["args"]}
        if not isinstance(fn, Mapping):
            kind = call.get("type")
            detail = f"of type {kind!r} " if kind not in (None, "function") else ""
            raise b.fail(position, f"{what} {detail}has no 'function' object")
        fname = fn.get("name")
        if not isinstance(fname, str) or not fname:
            raise b.fail(position, f"{what} has no function name")
        call_id = call.get("id")
        if call_id is not None and not isinstance(call_id, str):
            raise b.fail(position, f"{what} has an id that is not text ({call_id!r})")
        args, error = _arguments(fn.get("arguments"))
        calls.append((call_id or None, fname, args, error))
    return calls


def _arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Parsed call arguments, or ``{"_raw": raw}`` and why they could not be parsed."""
    if raw is None:
        return {}, None
    if isinstance(raw, dict):  # some frameworks store arguments already parsed
        return raw, None
    if not isinstance(raw, str):
        return {"_raw": raw}, f"arguments are {type_name(raw)}, not a JSON object or its text"
    try:
        value = loads(raw)
    except json.JSONDecodeError as exc:
        return {"_raw": raw}, f"arguments are not valid JSON ({exc.msg}, column {exc.colno})"
    if not isinstance(value, dict):
        return {"_raw": raw}, f"arguments are a JSON {type_name(value)}, not an object"
    return value, None


def _tool_result(b: _Builder, position: int, msg: Mapping[str, Any], role: str, text: str | None,
                 extra: dict[str, Any]) -> None:
    call_id = msg.get("tool_call_id")
    if call_id is not None and not isinstance(call_id, str):
        raise b.fail(position, f"'tool_call_id' is not text ({call_id!r})")
    tname = msg.get("name")
    if tname is not None and not isinstance(tname, str):
        raise b.fail(position, f"'name' is not text ({tname!r})")
    answered = msg.get("tool_call")  # AgentDojo names the call a result answers here
    if isinstance(answered, Mapping):
        if tname is None and isinstance(answered.get("function"), str):
            tname = answered["function"]
        if call_id is None and isinstance(answered.get("id"), str):
            call_id = answered["id"]
    result = json_or_text(text)
    call = _answered_call(b, call_id or None, tname or None)
    by_position = call is None and not call_id and not tname
    if by_position:  # the log allows it: the next call of the last assistant message not yet answered
        call = next((c for c in b.round if not c.answered), None)
    if call is None:
        attrs: dict[str, Any] = {"orphan_result": True, "result_source_index": position}
        if call_id:
            attrs["tool_call_id"] = call_id
        if not tname:
            attrs["no_tool_name"] = True
        if role == "function":
            attrs["role"] = role
        index = b.add(position, StepKind.TOOL, b.speaker, target=tname or None, result=result,
                      side_effect=b.side_effect(tname or None), sources=(b.tool_source(tname or None),),
                      attrs=attrs | extra)
        b.since_assistant.append(index)
        return
    call.answered = True
    step = b.steps[call.index]
    step["result"] = result
    step["attrs"] |= {"result_source_index": position} | {f"result_{k}": v for k, v in extra.items()}
    if by_position:
        step["attrs"]["result_matched_by"] = "position"
    rest = {k: v for k, v in msg.items() if k not in ("role", "content", "tool_call_id", "name")}
    if rest:
        step["attrs"]["result_message_fields"] = rest
    if tname is not None and tname != call.name:
        step["attrs"]["result_name"] = tname
    b.since_assistant.append(call.index)


def _answered_call(b: _Builder, call_id: str | None, tname: str | None) -> _Call | None:
    """The call a tool message answers: by id, else the first unanswered call of that name."""
    if call_id is not None:
        return next((c for c in b.calls if c.call_id == call_id and not c.answered), None)
    if tname is None:
        return None
    return next((c for c in b.calls if c.name == tname and not c.answered), None)


def _content(b: _Builder, position: int, content: Any) -> tuple[str | None, dict[str, Any]]:
    """A message's text (parts joined by newlines), and attrs for what is not text."""
    if content is None or isinstance(content, str):
        return content, {}
    if not isinstance(content, list):
        raise b.fail(position, f"content is {type_name(content)}, not text, null or a list of parts")
    texts: list[str] = []
    other: list[str] = []
    for k, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, Mapping):
            raise b.fail(position, f"content part {k} is not a JSON object (got {type_name(part)})")
        kind = part.get("type")
        if kind in _TEXT_PARTS:  # the text is in "text" (OpenAI), in the type's key, or in "content" (AgentDojo)
            value = next((part[key] for key in ("text", kind, "content") if isinstance(part.get(key), str)), None)
            if value is None:
                raise b.fail(position, f"content part {k} of type {kind!r} has no text ('text' or 'content')")
            texts.append(value)
        elif isinstance(kind, str):
            other.append(kind)
        else:
            raise b.fail(position, f"content part {k} has no 'type'")
    return "\n".join(texts), ({"non_text_parts": other} if other else {})


def _speaker(b: _Builder, position: int, msg: Mapping[str, Any]) -> str | None:
    """The participant a user or assistant message names (group chats), or None."""
    name = msg.get("name")
    if name is None or name == "":
        return None
    if not isinstance(name, str):
        raise b.fail(position, f"'name' is not text ({name!r})")
    return name


def _speaker_source(agent: str) -> Source:
    """Where a message's text comes from: the user, or the agent (any named participant but ``user``)."""
    return Source(kind="user", ref="user") if agent == "user" else Source(kind="agent", ref=agent)


def _role_attrs(role: str, msg: Mapping[str, Any], *, named: bool = False) -> dict[str, Any]:
    """Keep what a message says beyond the fields mapped to the step (a system message's name, ...)."""
    mapped = {"role", "content", "tool_calls", "function_call"} | ({"name"} if named else set())
    attrs: dict[str, Any] = {"role": role} if role == "developer" else {}
    rest = {k: v for k, v in msg.items() if k not in mapped}
    if rest:
        attrs["message_fields"] = rest
    return attrs
