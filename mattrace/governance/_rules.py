"""Governance rules: what to do with an action about to run, decided in order.

A rule sees the action as the step it would become (``Recorder.preview``) and returns a
:class:`Ruling` or None (no opinion: the next rule decides). ``allow``, ``block``,
``rewrite`` and ``escalate`` match with step predicates from the contract DSL
(``step.tool("send_email") & step.arg("to").not_matches(...)``); ``guard`` asks contract
monitors fed with the run so far whether the action would violate a ``safety`` contract
(also one an unmediated step has already violated: each action is judged on its own).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mattrace.contracts import Contract, Monitor, Pred, Status, contract_list
from mattrace.errors import GovernanceError
from mattrace.trace import Step, StepKind

__all__ = ["allow", "block", "Decision", "escalate", "guard", "rewrite", "Rule", "Ruling", "terminal_approver"]


class Decision(StrEnum):
    """What happens to an action."""

    ALLOW = "allow"
    REWRITE = "rewrite"
    BLOCK = "block"


@dataclass(frozen=True)
class Ruling:
    """A rule's decision on one action, with its reason and, for a rewrite, the new arguments."""

    decision: Decision
    rule: str
    reason: str
    args: dict[str, Any] | None = None
    escalated: bool = False


class Rule:
    """Base of the rules; ``rule_id`` names it in every decision it makes."""

    rule_id: str = "rule"

    def decide(self, step: Step) -> Ruling | None:
        raise NotImplementedError

    def observe(self, step: Step) -> None:
        """See a recorded step (guards keep their monitors up to date)."""

    def fresh(self) -> Rule:
        """A copy with no run state, for a new run."""
        return self


def _matcher(pred: Pred, what: str) -> Callable[[Step], bool]:
    if not isinstance(pred, Pred):
        raise GovernanceError(f"{what}() takes a step predicate (e.g. step.tool('send_email')), got {pred!r}")
    return pred.bind()


@dataclass
class _Allow(Rule):
    pred: Pred
    rule_id: str = "allow"

    def __post_init__(self) -> None:
        self._match = _matcher(self.pred, "allow")

    def decide(self, step: Step) -> Ruling | None:
        return Ruling(Decision.ALLOW, self.rule_id, f"allowed: {self.pred}") if self._match(step) else None


@dataclass
class _Block(Rule):
    pred: Pred
    reason: str
    rule_id: str = "block"

    def __post_init__(self) -> None:
        self._match = _matcher(self.pred, "block")

    def decide(self, step: Step) -> Ruling | None:
        return Ruling(Decision.BLOCK, self.rule_id, self.reason) if self._match(step) else None


@dataclass
class _Rewrite(Rule):
    pred: Pred
    fn: Callable[[dict[str, Any]], dict[str, Any]]
    reason: str
    rule_id: str = "rewrite"

    def __post_init__(self) -> None:
        self._match = _matcher(self.pred, "rewrite")
        if not callable(self.fn):
            raise GovernanceError(f"rewrite(): fn must be a callable(args) -> new args, got {self.fn!r}")

    def decide(self, step: Step) -> Ruling | None:
        if not self._match(step):
            return None
        new = self.fn(dict(step.args or {}))
        if not isinstance(new, dict):
            raise GovernanceError(f"rule {self.rule_id!r}: the rewrite returned {new!r}, not an arguments dict")
        if new == (step.args or {}):
            return None   # nothing to change: later rules decide
        return Ruling(Decision.REWRITE, self.rule_id, self.reason, args=new)


@dataclass
class _Escalate(Rule):
    pred: Pred
    approver: Callable[[Step], bool]
    rule_id: str = "escalate"

    def __post_init__(self) -> None:
        self._match = _matcher(self.pred, "escalate")
        if not callable(self.approver):
            raise GovernanceError(f"escalate(): approver must be a callable(step) -> bool, got {self.approver!r}")

    def decide(self, step: Step) -> Ruling | None:
        if not self._match(step):
            return None
        approved = self.approver(step)
        if not isinstance(approved, bool):
            raise GovernanceError(f"rule {self.rule_id!r}: the approver returned {approved!r}, not True/False")
        if approved:
            return Ruling(Decision.ALLOW, self.rule_id, "approved on escalation", escalated=True)
        return Ruling(Decision.BLOCK, self.rule_id, "refused on escalation", escalated=True)


@dataclass
class _Guard(Rule):
    contracts: tuple[Contract, ...]
    rule_id: str = "guard"
    _monitors: list[Monitor] = field(default_factory=list, repr=False)
    _by_kind: dict[StepKind, list[Monitor]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._monitors = [c.monitor() for c in self.contracts if c.level == "safety"]
        # per kind of step, the monitors that can react to it: a step of another kind changes nothing
        self._by_kind = {kind: [m for m in self._monitors if m.kinds is None or kind in m.kinds]
                         for kind in StepKind}

    def fresh(self) -> Rule:
        return _Guard(self.contracts, self.rule_id)

    def observe(self, step: Step) -> None:
        for monitor in self._by_kind[step.kind]:
            monitor.judge(step)   # keeps following the run after a failure (an unmediated step)

    def decide(self, step: Step) -> Ruling | None:
        # "would this action violate the contract?", not "is the contract still undecided?":
        # after an unmediated step already violated it, each later action is judged on its own
        index = step.index
        for monitor in self._by_kind[step.kind]:
            if monitor.status is Status.PASS:
                continue   # satisfied for good: no action can violate it
            violation = monitor.peek(step)   # judged on the run so far, not committed
            if violation is not None and violation.step == index:
                return Ruling(Decision.BLOCK, self.rule_id,
                              f"would violate {monitor.name!r}: {violation.reason}")
        return None


def allow(pred: Pred, *, rule_id: str = "allow") -> Rule:
    """Allow actions matching ``pred`` (later rules are not consulted)."""
    return _Allow(pred, rule_id)


def block(pred: Pred, reason: str, *, rule_id: str = "block") -> Rule:
    """Block actions matching ``pred``, telling the agent ``reason``."""
    return _Block(pred, reason, rule_id)


def rewrite(pred: Pred, fn: Callable[[dict[str, Any]], dict[str, Any]], *, reason: str = "rewritten by policy",
            rule_id: str = "rewrite") -> Rule:
    """Run actions matching ``pred`` with ``fn(args)`` instead of their arguments (the trace keeps both)."""
    return _Rewrite(pred, fn, reason, rule_id)


def escalate(pred: Pred, approver: Callable[[Step], bool], *, rule_id: str = "escalate") -> Rule:
    """Ask ``approver(step)`` whether an action matching ``pred`` may run."""
    return _Escalate(pred, approver, rule_id)


def guard(contracts: Contract | Sequence[Contract], *, rule_id: str = "guard") -> Rule:
    """Block an action exactly when it would violate a ``safety`` contract.

    Each action is judged on its own: a contract an earlier, unmediated step (a message)
    already violated still blocks every action that would violate it again.
    """
    return _Guard(tuple(contract_list(contracts)), rule_id)


def terminal_approver(ask: Callable[[str], str] | None = None, *, interactive: bool | None = None
                      ) -> Callable[[Step], bool]:
    """An approver for :func:`escalate` that asks a person at the terminal (``y`` allows).

    Without an interactive terminal (CI, a pipe) nobody can answer, so it refuses:
    fail-closed, and the refusal is recorded like any other.

    Args:
        ask: how to ask (default ``input``); tests pass their own.
        interactive: whether someone can answer (default: stdin is a terminal).
    """
    import sys

    def approve(step: Step) -> bool:
        can_ask = interactive if interactive is not None else sys.stdin.isatty()
        if not can_ask:
            return False
        args = ", ".join(f"{k}={v!r}" for k, v in (step.args or {}).items())
        answer = (ask or input)(f"mattrace: allow {step.agent} to call {step.target}({args})? [y/N] ")
        return answer.strip().lower() in ("y", "yes")
    return approve
