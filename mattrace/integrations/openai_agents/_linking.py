"""The converted spans of one SDK trace linked into step drafts.

The SDK's spans leave out what links them: a function span does not carry its tool call
id, an agent span neither the task it was given nor its answer, and a handoff and the agent
span it starts are two spans for one delegation. These are recovered here from the whole
trace, then each span becomes a :class:`~mattrace.integrations.otel.drafts.Draft`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mattrace.integrations.openai_agents._spans import _Converted
from mattrace.integrations.otel import names
from mattrace.integrations.otel.drafts import Draft, Trust, draft


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
