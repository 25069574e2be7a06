"""Which LLM step requested a tool call: the request edges the recorder records as facts.

An ``llm`` step lists the calls its answer requested (``attrs["tool_calls_requested"]``, with
``attrs["tool_call_ids"]``); a later step answering one of them reads the step that asked.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from mattrace.trace import Step, StepKind

__all__ = ["PendingRequests"]


@dataclass
class _Request:
    """One tool call an LLM step requested."""

    step: int
    agent: str
    call_id: str | None
    answered: bool = False


class PendingRequests:
    """The tool calls LLM steps requested and no step has answered yet. Not thread-safe: the
    recorder uses it under its lock."""

    def __init__(self) -> None:
        # tool name -> its requested calls, oldest first (one entry per call, so an answer
        # asking for the same tool twice links both calls)
        self._by_name: dict[str, deque[_Request]] = defaultdict(deque)
        # call id -> the pending calls with that id (one, unless two conversations reuse ids)
        self._by_id: dict[str, list[_Request]] = defaultdict(list)

    def add(self, step: Step) -> None:
        """Remember the calls the LLM step ``step`` requested (its ``attrs``)."""
        names = step.attrs.get("tool_calls_requested")
        if not isinstance(names, list):
            return
        ids = step.attrs.get("tool_call_ids")
        ids = ids if isinstance(ids, list) else []
        for i, name in enumerate(names):
            call_id = ids[i] if i < len(ids) and isinstance(ids[i], str) and ids[i] else None
            request = _Request(step.index, step.agent, call_id)
            self._by_name[str(name)].append(request)
            if call_id is not None:
                self._by_id[call_id].append(request)

    def requester(self, kind: StepKind, target: str | None, agent: str, attrs: dict[str, Any], *,
                  answer: bool) -> int | None:
        """The LLM step that requested this call: by its ``tool_call_id`` when that names a
        pending request (the requesting agent's first, should two share the id; a retriever
        the model called as a tool too), else, for a tool, the oldest pending request of the
        tool's name. ``answer`` marks it answered (an actual call); a preview leaves it pending."""
        call_id = attrs.get("tool_call_id")
        pending = self._by_id.get(call_id) if isinstance(call_id, str) and call_id in self._by_id else None
        if pending:
            request = next((r for r in pending if r.agent == agent), pending[0])
        elif kind is StepKind.TOOL and target:
            queue = self._by_name.get(target)
            while queue and queue[0].answered:
                queue.popleft()
            if not queue:
                return None
            request = queue[0]
        else:
            return None
        if answer:
            request.answered = True   # its entry in the name queue is skipped from now on
            if request.call_id is not None:
                same = self._by_id[request.call_id]
                same.remove(request)
                if not same:
                    del self._by_id[request.call_id]
        return request.step
