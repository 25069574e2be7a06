"""The governor: mediates every action at the language-to-action boundary, fail-closed.

It is an interceptor (order ``GOVERNANCE_ORDER``: first in the chain), so it decides
before faults, replay or the real call. For each action (a tool call, a retrieval, a
memory write) it builds the step the action would become, checks the acting agent's
:class:`Capability`, then asks the rules in order; the first ruling wins, and no ruling
allows. A rule that raises, or an action no capability covers, is blocked with the
reason. Every decision is recorded as a ``governance`` step just before the action's own
step, which reads it; a rewritten action's step keeps both argument sets; a blocked
action does not run and gets no step of its own (its governance step holds the attempted
arguments), and the agent gets a structured refusal (or ``ActionBlocked``).
"""

from __future__ import annotations

import fnmatch
import threading
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from mattrace.errors import GovernanceError, TraceWriteWarning
from mattrace.governance._audit import audit_path, open_audit_log
from mattrace.governance._rules import Decision, Rule, Ruling
from mattrace.recording.context import active_recorder
from mattrace.recording.interceptors import GOVERNANCE_ORDER, Answer, Call, CallOutcome
from mattrace.recording.recorder import Recorder
from mattrace.trace import Step, StepKind
from mattrace.tracefile import RecordWriter

__all__ = ["ActionBlocked", "Capability", "GOVERNOR_AGENT", "Governor"]

GOVERNOR_AGENT = "mattrace"
_ACTIONS = frozenset({StepKind.TOOL, StepKind.RETRIEVAL, StepKind.MEMORY_WRITE})
SideEffectClass = Literal["read", "propose", "write"]


class ActionBlocked(GovernanceError):
    """Raised to the agent for a blocked action when the governor is set to ``on_block="raise"``."""


@dataclass(frozen=True)
class Capability:
    """What one agent may do.

    Args:
        tools: names or glob patterns of the tools (and retrievers) it may call.
        max_calls: calls per run it may make in total (None: no limit).
        per_tool: calls per run per tool name.
        side_effects: ``read`` (no side effects), ``propose`` (side effects only after a
            rule allows them explicitly) or ``write``.
        memory: whether it may write shared memory.
    """

    tools: tuple[str, ...] = ()
    max_calls: int | None = None
    per_tool: dict[str, int] = field(default_factory=dict)
    side_effects: SideEffectClass = "write"
    memory: bool = True

    def __hash__(self) -> int:
        return hash((self.tools, self.max_calls, tuple(sorted(self.per_tool.items())), self.side_effects,
                     self.memory))

    def covers(self, step: Step, calls: int, tool_calls: int) -> str | None:
        """None when the action is within this capability, else why not."""
        if step.kind is StepKind.MEMORY_WRITE:
            return None if self.memory else f"{step.agent} may not write shared memory"
        name = step.target or ""
        if not any(fnmatch.fnmatchcase(name, p) for p in self.tools):
            return f"{name} is not among {step.agent}'s tools ({', '.join(self.tools) or 'none'})"
        if self.max_calls is not None and calls >= self.max_calls:
            return f"{step.agent} has used its {self.max_calls} calls for this run"
        limit = self.per_tool.get(name)
        if limit is not None and tool_calls >= limit:
            return f"{step.agent} has used its {limit} {name} calls for this run"
        if step.side_effect and self.side_effects == "read":
            return f"{name} changes the outside world and {step.agent} may only read"
        return None


@dataclass
class _RunState:
    rules: list[Rule]
    audit: RecordWriter | None = None
    seen: int = 0
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    tool_calls: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))


class Governor:
    """Mediates actions: per-agent capabilities, then ordered rules. Thread-safe; one per
    policy, usable by many runs (each run gets its own rule state)."""

    name = "governance"
    order = GOVERNANCE_ORDER

    def __init__(self, rules: Iterable[Rule] = (), *, capabilities: dict[str, Capability] | None = None,
                 on_block: Literal["refuse", "raise"] = "refuse", audit: bool = True) -> None:
        self.rules = list(rules)
        bad = [r for r in self.rules if not isinstance(r, Rule)]
        if bad:
            raise GovernanceError(f"a governor takes rules (allow, block, rewrite, escalate, guard), got {bad[0]!r}")
        if on_block not in ("refuse", "raise"):
            raise GovernanceError(f"on_block must be 'refuse' or 'raise', got {on_block!r}")
        self.capabilities = capabilities
        self.on_block = on_block
        self.audit = audit
        self._lock = threading.Lock()
        self._runs: dict[str, _RunState] = {}

    def _state(self, rec: Recorder) -> _RunState:
        with self._lock:
            state = self._runs.get(rec.trace_id)
            if state is None:
                audit = None
                if self.audit and rec.persistent:
                    try:
                        audit = open_audit_log(rec.path, rec.trace_id, rec.name)
                    except OSError as exc:   # like the trace: a disk problem never stops the run
                        warnings.warn(TraceWriteWarning(audit_path(rec.path), 0, exc), stacklevel=4)
                state = self._runs[rec.trace_id] = _RunState([r.fresh() for r in self.rules], audit)
            return state

    def close(self) -> None:
        """Seal the audit log of the run that is ending and forget its state (called by the recorder)."""
        rec = active_recorder()
        if rec is None:
            return
        with self._lock:
            state = self._runs.pop(rec.trace_id, None)
        if state is not None and state.audit is not None:
            try:
                state.audit.seal()
            except OSError as exc:
                warnings.warn(TraceWriteWarning(state.audit.path, state.audit.count, exc), stacklevel=3)

    def _rule(self, step: Step, state: _RunState) -> Ruling:
        if self.capabilities is not None and step.kind in _ACTIONS:
            capability = self.capabilities.get(step.agent)
            if capability is None:
                return Ruling(Decision.BLOCK, "capability", f"no capability covers agent {step.agent!r}")
            why = capability.covers(step, state.calls[step.agent], state.tool_calls[(step.agent, step.target or "")])
            if why is not None:
                return Ruling(Decision.BLOCK, "capability", why)
        for rule in state.rules:
            try:
                ruling = rule.decide(step)
            except Exception as exc:   # fail-closed: a broken rule blocks, and says so
                return Ruling(Decision.BLOCK, rule.rule_id, f"rule {rule.rule_id!r} raised "
                                                             f"{type(exc).__name__}: {exc}; blocked (fail-closed)")
            if ruling is not None:
                return ruling
        if self.capabilities is not None and step.side_effect and step.kind in _ACTIONS:
            capability = self.capabilities[step.agent]
            if capability.side_effects == "propose":
                return Ruling(Decision.BLOCK, "capability",
                              f"{step.target} is a side effect and {step.agent} may only propose it")
        return Ruling(Decision.ALLOW, "default", "no rule objected")

    def before(self, call: Call) -> Answer | None:
        if call.kind not in _ACTIONS:
            return None
        rec = active_recorder()
        if rec is None:
            return None
        state = self._state(rec)
        recent = rec.steps_since(state.seen)
        for recorded in recent:   # guards catch up with what was recorded since the last action
            for rule in state.rules:
                rule.observe(recorded)
        state.seen += len(recent)
        step = rec.preview(call.kind, agent=call.agent, target=call.target, args=call.args,
                           side_effect=call.side_effect, attrs=call.attrs)
        ruling = self._rule(step, state)
        original = dict(step.args or {})
        decision_step = rec.append(
            StepKind.GOVERNANCE, agent=GOVERNOR_AGENT, target=f"{call.kind.value}:{call.target}",
            content=ruling.reason,
            args={"decision": ruling.decision.value, "rule": ruling.rule, "reason": ruling.reason,
                  "agent": call.agent, "original": original,
                  **({"rewritten": ruling.args} if ruling.args is not None else {}),
                  **({"escalated": True} if ruling.escalated else {})},
            attrs={"decision": ruling.decision.value})
        if state.audit is not None:
            try:
                state.audit.write_entry({"step": decision_step.index, **(decision_step.args or {})})
            except OSError as exc:
                warnings.warn(TraceWriteWarning(state.audit.path, state.audit.count, exc), stacklevel=3)
                state.audit = None
        call.reads.append(decision_step.index)
        call.attrs["governance"] = ruling.decision.value
        if ruling.decision is Decision.BLOCK:
            call.refused = True   # nothing happened: the governance step is the record of the attempt
            refusal = {"blocked": True, "rule": ruling.rule, "reason": ruling.reason}
            if self.on_block == "raise":
                return Answer(error=ActionBlocked(f"{call.target} blocked by {ruling.rule}: {ruling.reason}"))
            return Answer(result=refusal)
        with self._lock:
            state.calls[call.agent] += 1
            state.tool_calls[(call.agent, call.target)] += 1
        if ruling.decision is Decision.REWRITE and ruling.args is not None:
            call.args = dict(ruling.args)
        return None

    def after(self, call: Call, outcome: CallOutcome) -> CallOutcome:
        return outcome
