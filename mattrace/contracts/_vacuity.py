"""Vacuity: telling a contract that held from one that never had anything to look at.

``never(step.tool("book_fligth"))`` passes on every run, because no tool has that name;
``always(step.tool("issue_refund") >> ...)`` passes on a run that issued no refund. Both are
PASS and both say nothing. Model checkers report such passes as *vacuous*; so does
:func:`~mattrace.contracts.check`, for two reasons (docs/contracts.md has the table per
contract kind):

* **a name the trace does not know**: a tool, agent or target the contract names appears
  nowhere in the trace: not as a step's tool, agent, target or message recipient, and not
  among the tools offered to or requested by a model. That is what a typo or a renamed tool
  looks like, and the message says which known name is closest;
* **a trigger that never fired**: the ``if`` part of an implication, ``each``'s steps,
  ``responds``' stimulus, ``precedes``' guarded step (:meth:`Monitor.untriggered`).

A run that never called ``delete_all`` although a model was offered it is *not* vacuous for
``never(step.tool("delete_all"))``: the name is known to the trace, and not calling it is
the point of the contract.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from mattrace.contracts._contract import Contract, Monitor
from mattrace.contracts._predicates import NameField, NameRef
from mattrace.trace import Step, StepKind, Trace

__all__ = ["TraceNames", "unknown_names", "vacuity"]

_RECIPIENT_KINDS = frozenset({StepKind.MESSAGE, StepKind.DELEGATE})
_ABOUT_A_CALL = frozenset({StepKind.GOVERNANCE, StepKind.FAULT})


class TraceNames:
    """The tool, agent and target names a trace mentions, gathered a step at a time.

    Constant work per step (a few set insertions; an LLM step adds the tools it was offered
    and asked for). Not thread-safe: one per checked trace.
    """

    __slots__ = ("agents", "targets", "tools")

    def __init__(self) -> None:
        self.tools: set[str] = set()
        self.agents: set[str] = set()
        self.targets: set[str] = set()

    def add(self, s: Step) -> None:
        """Note the names step ``s`` mentions."""
        self.agents.add(s.agent)
        target = s.target
        if target:
            self.targets.add(target)
            if s.kind is StepKind.TOOL:
                self.tools.add(target)
            elif s.kind in _RECIPIENT_KINDS:
                self.agents.add(target)
            elif s.kind in _ABOUT_A_CALL and target.startswith("tool:"):
                self.tools.add(target[5:])   # a governance decision or a fault about a tool call
        if s.kind is StepKind.LLM:
            self._offered(s)

    def _offered(self, s: Step) -> None:
        """Tools an LLM step was offered (``args.tools``) or asked to call (its tool calls)."""
        found: list[Any] = []
        if s.args is not None and isinstance(s.args.get("tools"), list):
            found += s.args["tools"]
        requested = s.attrs.get("tool_calls_requested")
        if isinstance(requested, list):
            found += requested
        if isinstance(s.result, dict) and isinstance(s.result.get("tool_calls"), list):
            found += s.result["tool_calls"]
        for item in found:
            name = _tool_name(item)
            if name:
                self.tools.add(name)
                self.targets.add(name)

    def merge(self, other: TraceNames) -> None:
        """Add the names ``other`` gathered (from another trace)."""
        self.tools |= other.tools
        self.agents |= other.agents
        self.targets |= other.targets

    def known(self, field: NameField) -> set[str]:
        """The names a reference to ``field`` is looked up among."""
        return self.tools if field == "tool" else self.agents if field == "agent" else self.targets

    def unknown(self, refs: Iterable[NameRef]) -> list[NameRef]:
        """The references that match no name of the trace, each once, in order."""
        out: list[NameRef] = []
        seen: set[tuple[str, str]] = set()
        for ref in refs:
            key = (ref.field, ref.text)
            if key in seen:
                continue
            seen.add(key)
            if not any(ref.match(name) for name in self.known(ref.field)):
                out.append(ref)
        return out

    def describe(self, ref: NameRef, where: str = "the trace") -> str:
        """``tool 'book_fligth' never appears in the trace; did you mean 'book_flight'?``"""
        text = (f"{ref.field} {ref.text} never appears in {where}" if ref.name is not None
                else f"{ref.text} matches no {ref.field} in {where}")
        if ref.name is not None:
            close = difflib.get_close_matches(ref.name, sorted(self.known(ref.field)), n=1)
            if close:
                return f"{text}; did you mean {close[0]!r}?"
        return text


def _tool_name(item: Any) -> str | None:
    """A tool's name from an offered tool or a tool call, whatever shape the client used."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        function = item.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return str(function["name"])
        if isinstance(item.get("name"), str):
            return str(item["name"])
    return None


def unknown_names(traces: Iterable[Trace | TraceNames], contracts: Iterable[Contract]) -> list[str]:
    """The names ``contracts`` mention that none of ``traces`` knows, one message each.

    A name missing from one trace may just not have come up in that run; a name missing
    from every trace checked is almost certainly misspelt or renamed, and the traces
    together offer the best did-you-mean. ``mattrace check`` prints these after checking
    several traces. Messages start with the contract's ``file:line`` when it has one. A
    trace may be given as the names a :class:`~mattrace.contracts.Checker` gathered from it
    (``checker.names``), for a trace that was read as a stream and not kept.
    """
    traces = list(traces)
    names = TraceNames()
    for trace in traces:
        if isinstance(trace, TraceNames):
            names.merge(trace)
        else:
            for s in trace.steps:
                names.add(s)
    where = "any of the traces checked" if len(traces) != 1 else "the trace"
    out: list[str] = []
    seen: set[tuple[str | None, str, str]] = set()
    for contract in contracts:
        for ref in names.unknown(contract.names()):
            key = (contract.origin, ref.field, ref.text)
            if key not in seen:
                seen.add(key)
                text = names.describe(ref, where)
                out.append(f"{contract.origin}: {text}" if contract.origin else f"{contract.name}: {text}")
    return out


def vacuity(contract: Contract, monitor: Monitor, names: TraceNames) -> str | None:
    """Why ``contract``'s pass on the trace ``names`` came from was vacuous, or None.

    Unknown names come first (the likelier mistake, and the one with a fix to suggest);
    then a trigger that never fired. A contract from a file is named with its ``file:line``.
    """
    unknown = names.unknown(contract.names())
    reason = "; ".join(names.describe(ref) for ref in unknown) if unknown else monitor.untriggered()
    if reason is None:
        return None
    return f"{contract.origin}: {reason}" if contract.origin else reason
