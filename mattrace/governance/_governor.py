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

Concurrency: the agents of one run may act from many threads. Following the run, judging
an action, recording the decision and counting it against the budgets happen under one
per-run lock, so a budget of one lets exactly one call through however many threads race
for it, and the decisions are recorded in the order they were made. Other runs of the same
governor do not wait for it.

Fail-closed, also when things break: a rule that raises while judging an action blocks it;
a rule that raises while following the run (a guard's monitor on a recorded step) blocks
that action and every later one it would judge, since its view of the run has a hole; an
error anywhere else in the governor blocks the action. Each of these is recorded with its
reason like any other decision. Calls made where no run's context is active (a thread that
did not inherit it) are handled by :mod:`mattrace.recording.unattributed`, per the
governor's ``unattributed`` policy.
"""

from __future__ import annotations

import fnmatch
import threading
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from mattrace.errors import ActionBlocked, GovernanceError, TraceWriteWarning, UnattributedAction
from mattrace.governance._audit import audit_path, open_audit_log
from mattrace.governance._rules import Decision, Rule, Ruling
from mattrace.recording.context import active_recorder
from mattrace.recording.interceptors import GOVERNANCE_ORDER, Answer, Call, CallOutcome
from mattrace.recording.recorder import Recorder
from mattrace.recording.unattributed import POLICIES
from mattrace.trace import Step, StepKind
from mattrace.tracefile import RecordWriter

__all__ = ["ActionBlocked", "Capability", "GOVERNOR_AGENT", "Governor", "UnattributedAction"]

GOVERNOR_AGENT = "mattrace"
_ACTIONS = frozenset({StepKind.TOOL, StepKind.RETRIEVAL, StepKind.MEMORY_WRITE})
SideEffectClass = Literal["read", "propose", "write"]
UnattributedPolicy = Literal["refuse", "attribute"]


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
    broken: dict[int, str] = field(default_factory=dict)
    """Rules (by position) that raised while following the run, with the reason they block."""
    lock: threading.RLock = field(default_factory=threading.RLock)
    """Held from following the run to counting the decision: one atomic step per action
    (re-entrant: an approver may itself call a governed tool)."""


class Governor:
    """Mediates actions: per-agent capabilities, then ordered rules. Thread-safe; one per
    policy, usable by many runs (each run gets its own rule state).

    Args:
        rules: the rules, asked in order.
        capabilities: agent name -> :class:`Capability`; when given, an agent without one
            may do nothing.
        on_block: ``"refuse"`` answers a blocked action with ``{"blocked": True, ...}``,
            ``"raise"`` raises :class:`~mattrace.errors.ActionBlocked` to the agent.
        audit: write the run's decisions to an audit log next to its trace.
        unattributed: what happens to a call made outside any ``record()`` block (a thread
            that did not inherit the run's context) while this governor's run is open:
            ``"refuse"`` (default) refuses side effects with
            :class:`~mattrace.errors.UnattributedAction` and records the refusal;
            ``"attribute"`` governs and records such calls as part of this run, when it is the
            only governed run open (side effects are refused when there are several).
    """

    name = "governance"
    order = GOVERNANCE_ORDER

    def __init__(self, rules: Iterable[Rule] = (), *, capabilities: dict[str, Capability] | None = None,
                 on_block: Literal["refuse", "raise"] = "refuse", audit: bool = True,
                 unattributed: UnattributedPolicy = "refuse") -> None:
        self.rules = list(rules)
        bad = [r for r in self.rules if not isinstance(r, Rule)]
        if bad:
            raise GovernanceError(f"a governor takes rules (allow, block, rewrite, escalate, guard), got {bad[0]!r}")
        if on_block not in ("refuse", "raise"):
            raise GovernanceError(f"on_block must be 'refuse' or 'raise', got {on_block!r}")
        if unattributed not in POLICIES:
            raise GovernanceError(f"unattributed must be 'refuse' or 'attribute', got {unattributed!r}")
        self.capabilities = capabilities
        self.on_block = on_block
        self.audit = audit
        self.unattributed: UnattributedPolicy = unattributed
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
        for position, rule in enumerate(state.rules):
            broken = state.broken.get(position)
            if broken is not None:
                return Ruling(Decision.BLOCK, rule.rule_id, broken)
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

    def _follow(self, rec: Recorder, state: _RunState) -> None:
        """Feed the rules what was recorded since the last action (guards' monitors); a rule that
        raises is broken for the rest of the run."""
        recent = rec.steps_since(state.seen)
        for recorded in recent:
            for position, rule in enumerate(state.rules):
                if position in state.broken:
                    continue
                try:
                    rule.observe(recorded)
                except Exception as exc:
                    state.broken[position] = (
                        f"rule {rule.rule_id!r} raised {type(exc).__name__}: {exc} while following step "
                        f"{recorded.index}; it can no longer judge this run, so it blocks (fail-closed)")
        state.seen += len(recent)

    def _judge(self, rec: Recorder, state: _RunState, call: Call) -> Ruling:
        try:
            self._follow(rec, state)
            step = rec.preview(call.kind, agent=call.agent, target=call.target, args=call.args,
                               side_effect=call.side_effect, attrs=call.attrs)
            return self._rule(step, state)
        except Exception as exc:   # fail-closed: whatever broke, the action does not run unjudged
            return Ruling(Decision.BLOCK, "governor", f"the governor raised {type(exc).__name__}: {exc} "
                                                      "judging this action; blocked (fail-closed)")

    def _record(self, rec: Recorder, state: _RunState, call: Call, ruling: Ruling) -> Step:
        decision_step = rec.append(
            StepKind.GOVERNANCE, agent=GOVERNOR_AGENT, target=f"{call.kind.value}:{call.target}",
            content=ruling.reason,
            args={"decision": ruling.decision.value, "rule": ruling.rule, "reason": ruling.reason,
                  "agent": call.agent, "original": dict(call.args),
                  **({"rewritten": ruling.args} if ruling.args is not None else {}),
                  **({"escalated": True} if ruling.escalated else {}),
                  **({"unattributed": True} if call.unattributed else {})},
            attrs={"decision": ruling.decision.value})
        if state.audit is not None:
            try:
                state.audit.write_entry({"step": decision_step.index, **(decision_step.args or {})})
            except OSError as exc:
                warnings.warn(TraceWriteWarning(state.audit.path, state.audit.count, exc), stacklevel=4)
                state.audit = None
        return decision_step

    def before(self, call: Call) -> Answer | None:
        if call.kind not in _ACTIONS:
            return None
        rec = active_recorder()
        if rec is None:
            return None
        state = self._state(rec)
        with state.lock:   # judge, record and count as one step: budgets hold under threads
            ruling = self._judge(rec, state, call)
            decision_step = self._record(rec, state, call, ruling)
            if ruling.decision is not Decision.BLOCK:
                state.calls[call.agent] += 1
                state.tool_calls[(call.agent, call.target)] += 1
        call.reads.append(decision_step.index)
        call.attrs["governance"] = ruling.decision.value
        if ruling.decision is Decision.BLOCK:
            call.refused = True   # nothing happened: the governance step is the record of the attempt
            refusal = {"blocked": True, "rule": ruling.rule, "reason": ruling.reason}
            if self.on_block == "raise":
                return Answer(error=ActionBlocked(f"{call.target} blocked by {ruling.rule}: {ruling.reason}"))
            return Answer(result=refusal)
        if ruling.decision is Decision.REWRITE and ruling.args is not None:
            call.args = dict(ruling.args)
        return None

    def refuse_unattributed(self, rec: Recorder, call: Call, reason: str) -> None:
        """Record in ``rec`` (decision and audit log) that ``call``, made where no run's context
        was active, was refused; called by the recording layer, which raises the refusal."""
        state = self._state(rec)
        with state.lock:
            self._record(rec, state, call, Ruling(Decision.BLOCK, "unattributed", reason))

    def on_escape(self, call: Call) -> str | None:
        """A call that bypassed the chain: refused, since the rules follow the run step by step
        and a call recorded after the fact (by the client's callback, maybe after the action it
        caused) would reach them out of order (fail-closed)."""
        return (f"the run is governed, and the governor's rules judge each action on the steps before it; "
                f"an {call.kind.value} call recorded after the fact would reach them out of order")

    def after(self, call: Call, outcome: CallOutcome) -> CallOutcome:
        return outcome
