"""A naive reference semantics for contracts, written for clarity and sharing no code with the monitors.

Contracts here are a small AST of frozen dataclasses (the random-contract strategies build
these and translate them to the mattrace DSL with ``contract_strategies.to_contract``).
:class:`Reference` evaluates them on a list of steps straight from the definitions:

* a state formula (a step predicate, past-time operators included) is evaluated at position
  *i* by recursion on its definition, reading only ``steps[0..i]``;
* a contract's three-valued verdict on the prefix ``steps[0..n-1]`` is decided by looking at
  the positions ``< n`` afresh for every ``n`` — no state is carried from one prefix to the
  next, so nothing an online monitor might get wrong is shared.

Because a past-time formula's value at *i* only reads ``steps[0..i]``, it is the same in
every prefix that contains *i*; :class:`Reference` memoises it by ``(formula, i)`` purely to
keep the property tests fast (the memo is keyed on values, never on monitor state).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mattrace.provenance import fragments, haystack
from mattrace.trace import Step, StepKind

__all__ = [
    "FAIL",
    "HISTORY_CHECKS",
    "PASS",
    "PENDING",
    "Agent",
    "AnyStep",
    "And",
    "ArgEq",
    "Always",
    "AtMost",
    "Content",
    "ContractAst",
    "Each",
    "EachCall",
    "Error",
    "Eventually",
    "Flows",
    "Implies",
    "Kind",
    "Message",
    "NameSpec",
    "Never",
    "Not",
    "Once",
    "Or",
    "PredAst",
    "Precedes",
    "Reference",
    "Responds",
    "SideEffect",
    "Since",
    "Target",
    "Tool",
    "Untrusted",
    "Within",
    "is_stateful",
    "step_holds",
]

PASS, FAIL, PENDING = "pass", "fail", "pending"

NameSpec = str | tuple[str, ...]
"""An exact name, a glob (contains ``*``, ``?`` or ``[``), or a tuple of names."""


# -- predicate AST -------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class Agent:
    spec: NameSpec


@dataclass(frozen=True)
class Target:
    spec: NameSpec


@dataclass(frozen=True)
class Tool:
    spec: NameSpec


@dataclass(frozen=True)
class Message:
    agent: NameSpec | None = None
    matches: str | None = None


@dataclass(frozen=True)
class Content:
    pattern: str


@dataclass(frozen=True)
class ArgEq:
    name: str
    value: Any


@dataclass(frozen=True)
class Untrusted:
    pass


@dataclass(frozen=True)
class SideEffect:
    pass


@dataclass(frozen=True)
class Error:
    pass


@dataclass(frozen=True)
class AnyStep:
    pass


@dataclass(frozen=True)
class And:
    left: PredAst
    right: PredAst


@dataclass(frozen=True)
class Or:
    left: PredAst
    right: PredAst


@dataclass(frozen=True)
class Implies:
    left: PredAst
    right: PredAst


@dataclass(frozen=True)
class Not:
    inner: PredAst


@dataclass(frozen=True)
class Once:
    inner: PredAst


@dataclass(frozen=True)
class Since:
    a: PredAst
    b: PredAst


@dataclass(frozen=True)
class Flows:
    src: PredAst
    dst: PredAst


PredAst = (Kind | Agent | Target | Tool | Message | Content | ArgEq | Untrusted | SideEffect | Error | AnyStep
           | And | Or | Implies | Not | Once | Since | Flows)


def is_stateful(p: PredAst) -> bool:
    """True when the formula mentions a past-time operator (its value depends on history)."""
    if isinstance(p, Once | Since | Flows):
        return True
    if isinstance(p, And | Or | Implies):
        return is_stateful(p.left) or is_stateful(p.right)
    if isinstance(p, Not):
        return is_stateful(p.inner)
    return False


# -- contract AST --------------------------------------------------------------------------


@dataclass(frozen=True)
class Always:
    pred: PredAst


@dataclass(frozen=True)
class Never:
    pred: PredAst


@dataclass(frozen=True)
class Eventually:
    pred: PredAst


@dataclass(frozen=True)
class Precedes:
    a: PredAst
    b: PredAst


@dataclass(frozen=True)
class Responds:
    a: PredAst
    b: PredAst


@dataclass(frozen=True)
class AtMost:
    n: int
    pred: PredAst


@dataclass(frozen=True)
class Within:
    steps: int | None = None
    tokens: int | None = None
    cost: float | None = None


@dataclass(frozen=True)
class Each:
    pred: PredAst
    must: PredAst


def _after_user_yes(s: Step, history: Sequence[Step]) -> bool:
    return any(h.kind == StepKind.MESSAGE and h.agent == "user" and re.search(r"\byes\b", h.content or "")
               for h in history)


def _first_by_agent(s: Step, history: Sequence[Step]) -> bool:
    return all(h.agent != s.agent for h in history)


def _no_error_before(s: Step, history: Sequence[Step]) -> bool:
    return not any(h.error is not None for h in history)


HISTORY_CHECKS: dict[str, Callable[[Step, Sequence[Step]], bool]] = {
    "after_user_yes": _after_user_yes,
    "first_by_agent": _first_by_agent,
    "no_error_before": _no_error_before,
}
"""Obligations written as user code ``(step, history) -> bool`` for ``each(p).must(fn)``."""


@dataclass(frozen=True)
class EachCall:
    pred: PredAst
    check: str   # a key of HISTORY_CHECKS


ContractAst = Always | Never | Eventually | Precedes | Responds | AtMost | Within | Each | EachCall


# -- leaf semantics ------------------------------------------------------------------------


def _name_ok(spec: NameSpec, value: str | None) -> bool:
    if value is None:
        return False
    if isinstance(spec, tuple):
        return value in spec
    if any(c in spec for c in "*?["):
        return fnmatch.fnmatchcase(value, spec)
    return value == spec


def _leaf(p: PredAst, s: Step) -> bool:
    if isinstance(p, Kind):
        return s.kind.value in p.kinds
    if isinstance(p, Agent):
        return _name_ok(p.spec, s.agent)
    if isinstance(p, Target):
        return _name_ok(p.spec, s.target)
    if isinstance(p, Tool):
        return s.kind == StepKind.TOOL and _name_ok(p.spec, s.target)
    if isinstance(p, Message):
        return (s.kind == StepKind.MESSAGE
                and (p.agent is None or _name_ok(p.agent, s.agent))
                and (p.matches is None or (s.content is not None and re.search(p.matches, s.content) is not None)))
    if isinstance(p, Content):
        return s.content is not None and re.search(p.pattern, s.content) is not None
    if isinstance(p, ArgEq):
        return s.args is not None and p.name in s.args and s.args[p.name] == p.value
    if isinstance(p, Untrusted):
        return any(src.trusted is False for src in s.sources)
    if isinstance(p, SideEffect):
        return s.side_effect
    if isinstance(p, Error):
        return s.error is not None
    if isinstance(p, AnyStep):
        return True
    raise TypeError(f"not a leaf predicate: {p!r}")


def step_holds(p: PredAst, s: Step) -> bool:
    """A state formula without past-time operators, on one step alone."""
    if isinstance(p, And):
        return step_holds(p.left, s) and step_holds(p.right, s)
    if isinstance(p, Or):
        return step_holds(p.left, s) or step_holds(p.right, s)
    if isinstance(p, Implies):
        return (not step_holds(p.left, s)) or step_holds(p.right, s)
    if isinstance(p, Not):
        return not step_holds(p.inner, s)
    if isinstance(p, Once | Since | Flows):
        raise TypeError(f"{p!r} needs the history, not one step")
    return _leaf(p, s)


# -- the reference ---------------------------------------------------------------------------


def _tokens(s: Step) -> int:
    t = s.attrs.get("tokens")
    if isinstance(t, dict):
        t = t.get("total")
    return t if isinstance(t, int) and not isinstance(t, bool) else 0


def _cost(s: Step) -> float:
    c = s.attrs.get("cost_usd")
    return c if isinstance(c, int | float) and not isinstance(c, bool) else 0


class Reference:
    """The naive semantics of formulas and contracts over one list of steps."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)
        # the context flow by its definition: recorded reads, and every earlier step one of
        # whose output strings occurs in the step's input text (pairwise, no index)
        self.reads = [set(s.reads) | {i for i in range(j) if any(f in haystack(s) for f in fragments(self.steps[i]))}
                      for j, s in enumerate(self.steps)]
        self._memo: dict[tuple[PredAst, int], bool] = {}

    # state formulas ----------------------------------------------------------------------

    def holds(self, p: PredAst, i: int) -> bool:
        """The formula ``p`` at position ``i``, reading ``steps[0..i]`` only."""
        key = (p, i)
        if key not in self._memo:
            self._memo[key] = self._holds(p, i)
        return self._memo[key]

    def _holds(self, p: PredAst, i: int) -> bool:
        if isinstance(p, And):
            return self.holds(p.left, i) and self.holds(p.right, i)
        if isinstance(p, Or):
            return self.holds(p.left, i) or self.holds(p.right, i)
        if isinstance(p, Implies):
            return (not self.holds(p.left, i)) or self.holds(p.right, i)
        if isinstance(p, Not):
            return not self.holds(p.inner, i)
        if isinstance(p, Once):
            return any(self.holds(p.inner, j) for j in range(i + 1))
        if isinstance(p, Since):
            return any(self.holds(p.b, j) and all(self.holds(p.a, k) for k in range(j + 1, i + 1))
                       for j in range(i + 1))
        if isinstance(p, Flows):
            return self.holds(p.dst, i) and any(self.holds(p.src, j) for j in self.upstream(i))
        return _leaf(p, self.steps[i])

    def upstream(self, i: int) -> set[int]:
        """Every step from which a path of one or more ``reads`` edges leads to step ``i``."""
        seen: set[int] = set()
        todo = list(self.reads[i])
        while todo:
            j = todo.pop()
            if j not in seen:
                seen.add(j)
                todo.extend(self.reads[j])
        return seen

    def is_path(self, path: Sequence[int]) -> bool:
        """True when each element after the first reads the one before it."""
        return all(path[k] in self.reads[path[k + 1]] for k in range(len(path) - 1))

    # contracts on a prefix ---------------------------------------------------------------

    def verdict(self, c: ContractAst, n: int) -> str:
        """The three-valued verdict of ``c`` on the prefix ``steps[0..n-1]``."""
        positions = range(n)
        prefix = self.steps[:n]
        if isinstance(c, Always):
            return FAIL if any(not self.holds(c.pred, i) for i in positions) else PENDING
        if isinstance(c, Never):
            return FAIL if any(self.holds(c.pred, i) for i in positions) else PENDING
        if isinstance(c, Eventually):
            return PASS if any(self.holds(c.pred, i) for i in positions) else PENDING
        if isinstance(c, Precedes):
            # a violating b has no a strictly before it (an a at its own position does not count);
            # "not already settled as PASS" needs no separate test: that would take an earlier a
            bad = [i for i in positions
                   if self.holds(c.b, i) and not any(self.holds(c.a, j) for j in range(i))]
            if bad:
                return FAIL
            # an `a` with no violating `b` at or before it: every later `b` has an earlier `a`
            return PASS if any(self.holds(c.a, i) for i in positions) else PENDING
        if isinstance(c, Responds):
            return PENDING
        if isinstance(c, Within):
            over = ((c.steps is not None and sum(s.kind != StepKind.END for s in prefix) > c.steps)
                    or (c.tokens is not None and sum(_tokens(s) for s in prefix) > c.tokens)
                    or (c.cost is not None and sum(_cost(s) for s in prefix) > c.cost))
            return FAIL if over else PENDING
        if isinstance(c, AtMost):
            return FAIL if sum(self.holds(c.pred, i) for i in positions) > c.n else PENDING
        if isinstance(c, Each):
            bad = any(self.holds(c.pred, i) and not self.holds(c.must, i) for i in positions)
            return FAIL if bad else PENDING
        if isinstance(c, EachCall):
            fn = HISTORY_CHECKS[c.check]
            bad = any(self.holds(c.pred, i) and not fn(self.steps[i], self.steps[:i]) for i in positions)
            return FAIL if bad else PENDING
        raise TypeError(f"not a contract: {c!r}")

    def final(self, c: ContractAst) -> str:
        """The two-valued verdict once the run is over."""
        n = len(self.steps)
        v = self.verdict(c, n)
        if v != PENDING:
            return v
        if isinstance(c, Eventually):
            return FAIL
        if isinstance(c, Responds):
            unanswered = self.unanswered(c)
            return FAIL if unanswered else PASS
        return PASS

    def unanswered(self, c: Responds) -> list[int]:
        """The ``a`` steps with no later ``b`` step."""
        n = len(self.steps)
        return [i for i in range(n)
                if self.holds(c.a, i) and not any(self.holds(c.b, j) for j in range(i + 1, n))]

    def settled_at(self, c: ContractAst) -> int | None:
        """The smallest ``i`` whose prefix ``steps[0..i]`` is not PENDING (None if none is)."""
        for i in range(len(self.steps)):
            if self.verdict(c, i + 1) != PENDING:
                return i
        return None

    def first_violation(self, c: ContractAst) -> int | None:
        """The first violating step; for failures only visible at the end, the last step."""
        if self.final(c) != FAIL:
            raise ValueError(f"{c!r} does not fail on this trace")
        at = self.settled_at(c)
        if at is not None:
            return at
        return len(self.steps) - 1 if self.steps else None
