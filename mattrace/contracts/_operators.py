"""Trace operators: how step predicates become properties of a whole run.

Each operator is a :class:`Contract` whose monitor does constant work per step (the
predicates it holds may keep a history summary, never the history). Prefix verdicts are
three-valued: ``FAIL`` as soon as a step makes the violation certain, ``PASS`` as soon as
a step makes satisfaction certain (the awaited step of ``eventually``, the enabling step of
``precedes``), ``PENDING`` otherwise; ``finish()`` decides the rest at the last step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from mattrace.contracts._contract import Contract, Monitor, describe_step
from mattrace.contracts._predicates import (
    Evaluator,
    NameRef,
    Pred,
    _BoundBinary,
    _Implies,
    _pred,
    true_on,
    witness_of,
)
from mattrace.contracts._state import restore, restore_all, snapshot, snapshot_all
from mattrace.contracts._verdict import Verdict
from mattrace.errors import ContractError
from mattrace.trace import Step, StepKind

__all__ = ["always", "at_most", "eventually", "never", "precedes", "responds", "within"]

ReasonFn = Callable[[Step, tuple[int, ...]], str]
WITNESS_LIMIT = 100
"""Most step indices an ``at_most`` witness lists (all of them when ``n`` is below it)."""


def _at(s: Step) -> str:
    return f"step {s.index} ({describe_step(s)})"


def _see(witness: tuple[int, ...], s: Step) -> str:
    others = [i for i in witness if i != s.index]
    return f" (see step{'s' if len(others) > 1 else ''} {', '.join(map(str, others))})" if others else ""


# -- always / never ------------------------------------------------------------------------


class Always(Contract):
    """``always(p)`` / ``never(p)``: every step satisfies p / no step does."""

    def __init__(self, pred: Pred, *, negate: bool = False, reason: ReasonFn | None = None) -> None:
        self.pred = _pred(pred, "always" if not negate else "never")
        self.negate = negate
        self.reason = reason

    def describe(self) -> str:
        return f"{'never' if self.negate else 'always'}({self.pred.text()})"

    def monitor(self) -> Monitor:
        return _AlwaysMonitor(self)

    def names(self) -> tuple[NameRef, ...]:
        return self.pred.names()

    def explain(self, s: Step, witness: tuple[int, ...]) -> str:
        if self.reason is not None:
            return self.reason(s, witness)
        if self.negate:
            return f"{_at(s)} matches `{self.pred.text()}`{_see(witness, s)}"
        if isinstance(self.pred, _Implies):
            return (f"{_at(s)} matches `{self.pred.left.text()}` but not `{self.pred.right.text()}`"
                    f"{_see(witness, s)}")
        return f"{_at(s)} does not satisfy `{self.pred.text()}`{_see(witness, s)}"


class _AlwaysMonitor(Monitor):
    __slots__ = ("bad_when", "contract", "ev")

    def __init__(self, contract: Always) -> None:
        super().__init__(contract)
        self.contract = contract
        # always(a >> b) binds the implication so that it says whether `a` ever held (untriggered)
        pred = contract.pred
        self.ev: Evaluator = pred.bind_tracked() if isinstance(pred, _Implies) and not contract.negate else pred.bind()
        self.bad_when = contract.negate
        # never(p) acts where p can hold; always(a >> b) where a can (also what `untriggered` asks)
        if contract.negate:
            self.kinds = true_on(pred)
        elif isinstance(pred, _Implies) and not pred.left.stateful:
            # it fails only where `a` holds; what `b` remembers must still be kept up to date
            acts, remembers = true_on(pred.left), pred.history_kinds()
            self.kinds = None if acts is None or remembers is None else acts | remembers

    def _save(self) -> Any:
        return snapshot(self.ev)

    def _restore(self, state: Any) -> None:
        restore(self.ev, state)

    def _step(self, s: Step) -> Verdict | None:
        if self.ev(s) is not self.bad_when:
            return None
        witness = tuple(dict.fromkeys((*witness_of(self.ev), s.index)))
        return self.failed(s.index, self.contract.explain(s, witness), witness)

    def untriggered(self) -> str | None:
        # always(a >> b) is about the steps matching a: vacuous when there were none
        pred = self.contract.pred
        if self.bad_when or not isinstance(pred, _Implies) or not isinstance(self.ev, _BoundBinary):
            return None
        return None if self.ev.left_held else f"no step matched `{pred.left.text()}`, so the implication never applied"


def always(p: Pred) -> Contract:
    """Every step satisfies ``p``; fails at the first step that does not."""
    return Always(p)


def never(p: Pred) -> Contract:
    """No step satisfies ``p``; fails at the first step that does."""
    return Always(p, negate=True)


# -- eventually / precedes / responds ------------------------------------------------------


class Eventually(Contract):
    """Some step satisfies p; can only fail when the run is over."""

    def __init__(self, pred: Pred) -> None:
        self.pred = _pred(pred, "eventually")

    def describe(self) -> str:
        return f"eventually({self.pred.text()})"

    def names(self) -> tuple[NameRef, ...]:
        return self.pred.names()

    def monitor(self) -> Monitor:
        return _EventuallyMonitor(self)


class _EventuallyMonitor(Monitor):
    __slots__ = ("ev", "text")

    def __init__(self, contract: Eventually) -> None:
        super().__init__(contract)
        self.ev = contract.pred.bind()
        self.text = contract.pred.text()
        self.kinds = true_on(contract.pred)

    def _save(self) -> Any:
        return snapshot(self.ev)

    def _restore(self, state: Any) -> None:
        restore(self.ev, state)

    def _step(self, s: Step) -> Verdict | None:
        return self.passed(s.index) if self.ev(s) else None

    def _finish(self) -> Verdict:
        return self.failed(self.last, f"no step matches `{self.text}`; {self.at_end()}")


class Precedes(Contract):
    """Every ``b`` step has an earlier ``a`` step."""

    def __init__(self, a: Pred, b: Pred) -> None:
        self.a = _pred(a, "precedes")
        self.b = _pred(b, "precedes")

    def describe(self) -> str:
        return f"precedes({self.a.text()}, {self.b.text()})"

    def names(self) -> tuple[NameRef, ...]:
        return self.a.names() + self.b.names()

    def monitor(self) -> Monitor:
        return _PrecedesMonitor(self)


class _PrecedesMonitor(Monitor):
    __slots__ = ("a", "b", "contract")

    def __init__(self, contract: Precedes) -> None:
        super().__init__(contract)
        self.contract = contract
        self.a, self.b = contract.a.bind(), contract.b.bind()
        self.kinds = true_on(contract.a, contract.b)

    def _save(self) -> Any:
        return snapshot_all(self.a, self.b)

    def _restore(self, state: Any) -> None:
        restore_all((self.a, self.b), state)

    def _step(self, s: Step) -> Verdict | None:
        va = self.a(s)
        if self.b(s):
            return self.failed(s.index, f"{_at(s)} matches `{self.contract.b.text()}` "
                                        f"with no earlier step matching `{self.contract.a.text()}`", (s.index,))
        # once an `a` happened, every later `b` has an earlier `a`: settled
        return self.passed(s.index) if va else None

    def untriggered(self) -> str | None:
        # settled by an `a`: the contract was armed. Unsettled at the end: no `a` and no `b` at all.
        if self._verdict is not None and self._verdict.step is not None:
            return None
        return f"no step matched `{self.contract.b.text()}`, so nothing needed `{self.contract.a.text()}` first"


class Responds(Contract):
    """Every ``a`` step is followed (later) by some ``b`` step."""

    def __init__(self, a: Pred, b: Pred) -> None:
        self.a = _pred(a, "responds")
        self.b = _pred(b, "responds")

    def describe(self) -> str:
        return f"responds({self.a.text()}, {self.b.text()})"

    def names(self) -> tuple[NameRef, ...]:
        return self.a.names() + self.b.names()

    def monitor(self) -> Monitor:
        return _RespondsMonitor(self)


class _RespondsMonitor(Monitor):
    __slots__ = ("a", "b", "contract", "fired", "waiting", "waiting_text")

    def __init__(self, contract: Responds) -> None:
        super().__init__(contract)
        self.contract = contract
        self.a, self.b = contract.a.bind(), contract.b.bind()
        self.waiting: int | None = None   # the oldest `a` still waiting for its `b`
        self.waiting_text = ""
        self.fired = False                # some step matched `a`
        self.kinds = true_on(contract.a, contract.b)

    def _save(self) -> Any:
        states = snapshot_all(self.a, self.b)
        return None if states is None else (states, self.waiting, self.waiting_text, self.fired)

    def _restore(self, state: Any) -> None:
        states, self.waiting, self.waiting_text, self.fired = state
        restore_all((self.a, self.b), states)

    def _step(self, s: Step) -> Verdict | None:
        va = self.a(s)
        if self.b(s):
            self.waiting = None
        if va:
            self.fired = True
            if self.waiting is None:
                self.waiting, self.waiting_text = s.index, _at(s)
        return None

    def untriggered(self) -> str | None:
        return None if self.fired else f"no step matched `{self.contract.a.text()}`, so nothing needed a response"

    def _finish(self) -> Verdict:
        if self.waiting is None:
            return super()._finish()
        return self.failed(self.last, f"{self.waiting_text} matches `{self.contract.a.text()}` but no later step "
                                      f"matches `{self.contract.b.text()}`; {self.at_end()}", (self.waiting,))


# -- budgets -------------------------------------------------------------------------------


class Within(Contract):
    """The run stays within a budget of steps, seconds, tokens and/or cost (USD)."""

    def __init__(self, steps: int | None, seconds: float | None, tokens: int | None, cost: float | None) -> None:
        limits = {"steps": steps, "seconds": seconds, "tokens": tokens, "cost": cost}
        for key, value in limits.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise ContractError(f"within({key}=...) takes a non-negative number, got {value!r}")
        if all(v is None for v in limits.values()):
            raise ContractError("within(...) needs at least one of steps=, seconds=, tokens=, cost=")
        self.limits = {k: v for k, v in limits.items() if v is not None}

    def describe(self) -> str:
        return "within(" + ", ".join(f"{k}={v}" for k, v in self.limits.items()) + ")"

    def monitor(self) -> Monitor:
        return _WithinMonitor(self)


def _tokens(s: Step) -> int:
    tokens = s.attrs.get("tokens")
    if isinstance(tokens, dict):
        total = tokens.get("total")
        return total if isinstance(total, int) else 0
    return tokens if isinstance(tokens, int) else 0


class _WithinMonitor(Monitor):
    __slots__ = ("cost", "count", "max_cost", "max_ns", "max_steps", "max_tokens", "t0", "tokens")

    def __init__(self, contract: Within) -> None:
        super().__init__(contract)
        lim = contract.limits
        self.max_steps = lim.get("steps")
        self.max_ns = None if lim.get("seconds") is None else lim["seconds"] * 1e9
        self.max_tokens = lim.get("tokens")
        self.max_cost = lim.get("cost")
        self.count = 0
        self.t0: int | None = None
        self.tokens = 0
        self.cost = 0.0

    def _save(self) -> Any:
        return (self.count, self.t0, self.tokens, self.cost)

    def _restore(self, state: Any) -> None:
        self.count, self.t0, self.tokens, self.cost = state

    @property
    def needs_end(self) -> bool:
        # "the run stays within its budget" is a claim about the whole run: a cut-off
        # trace under budget says nothing about the steps it lost
        return True

    def _step(self, s: Step) -> Verdict | None:
        if self.max_steps is not None and s.kind is not StepKind.END:
            self.count += 1
            if self.count > self.max_steps:
                return self.failed(s.index, f"{_at(s)} is step {self.count} of the run, "
                                            f"over the budget of {self.max_steps} steps", (s.index,))
        if self.max_ns is not None and (s.t_start is not None or s.t_end is not None):
            t = s.t_end if s.t_end is not None else s.t_start
            assert t is not None
            if self.t0 is None:
                self.t0 = s.t_start if s.t_start is not None else t
            if t - self.t0 > self.max_ns:
                return self.failed(s.index, f"{_at(s)} ends {(t - self.t0) / 1e9:.3f} s into the run, "
                                            f"over the budget of {self.max_ns / 1e9:g} s", (s.index,))
        if self.max_tokens is not None:
            self.tokens += _tokens(s)
            if self.tokens > self.max_tokens:
                return self.failed(s.index, f"{_at(s)} brings the run to {self.tokens} tokens, "
                                            f"over the budget of {self.max_tokens}", (s.index,))
        if self.max_cost is not None:
            cost = s.attrs.get("cost_usd")
            if isinstance(cost, int | float) and not isinstance(cost, bool):
                self.cost += cost
                if self.cost > self.max_cost:
                    return self.failed(s.index, f"{_at(s)} brings the run to ${self.cost:.4f}, "
                                                f"over the budget of ${self.max_cost:g}", (s.index,))
        return None


def within(*, steps: int | None = None, seconds: float | None = None, tokens: int | None = None,
           cost: float | None = None) -> Contract:
    """The run stays within every budget given (``end`` steps do not count as steps)."""
    return Within(steps, seconds, tokens, cost)


class AtMost(Contract):
    """At most ``n`` steps satisfy ``pred``: what ``at_most(n, p)`` and ``max_calls(tool, n)`` build.

    Its ``n`` and ``pred`` are read by the search's ``count`` margin (how close a run came
    to the limit).
    """

    def __init__(self, n: int, pred: Pred) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ContractError(f"at_most(n, ...) takes a non-negative whole number, got {n!r}")
        self.n = n
        self.pred = _pred(pred, "at_most")

    def describe(self) -> str:
        return f"at_most({self.n}, {self.pred.text()})"

    def names(self) -> tuple[NameRef, ...]:
        return self.pred.names()

    def monitor(self) -> Monitor:
        return _AtMostMonitor(self)


class _AtMostMonitor(Monitor):
    """Counts matches; keeps their indices as the witness, bounded for large ``n``.

    With ``n`` up to :data:`WITNESS_LIMIT` every match is kept (the witness is all n+1
    of them); beyond that the first and the latest half-limit are, so memory stays flat
    however long a run with a generous budget gets.
    """

    __slots__ = ("count", "ev", "first", "latest", "n", "text")

    def __init__(self, contract: AtMost) -> None:
        super().__init__(contract)
        self.ev = contract.pred.bind()
        self.n = contract.n
        self.kinds = true_on(contract.pred)
        self.text = contract.pred.text()
        self.count = 0
        self.first: list[int] = []
        self.latest: deque[int] = deque(maxlen=WITNESS_LIMIT // 2)

    def _save(self) -> Any:
        ev = snapshot(self.ev)
        if ev is None:
            return None
        latest = self.latest
        return (ev, self.count, len(self.first), len(latest), latest[0] if latest else None)

    def _restore(self, state: Any) -> None:
        ev, count, n_first, n_latest, oldest = state
        restore(self.ev, ev)
        if self.count != count:   # the step matched: its index went to `first` or `latest`
            self.count = count
            if len(self.first) > n_first:
                del self.first[n_first:]
            else:
                latest = self.latest
                latest.pop()
                if len(latest) < n_latest:   # it was full: the append pushed the oldest out
                    latest.appendleft(oldest)

    def _step(self, s: Step) -> Verdict | None:
        if not self.ev(s):
            return None
        self.count += 1
        if len(self.first) < (WITNESS_LIMIT if self.n < WITNESS_LIMIT else WITNESS_LIMIT // 2):
            self.first.append(s.index)
        else:
            self.latest.append(s.index)
        if self.count <= self.n:
            return None
        return self.failed(s.index, f"{_at(s)} is step number {self.count} matching `{self.text}`; "
                                    f"at most {self.n} allowed", (*self.first, *self.latest, s.index))


def at_most(n: int, p: Pred) -> Contract:
    """At most ``n`` steps satisfy ``p``; fails at the (n+1)-th."""
    return AtMost(n, p)


def eventually(p: Pred) -> Contract:
    """Some step satisfies ``p``; fails at the last step of a run where none did."""
    return Eventually(p)


def precedes(a: Pred, b: Pred) -> Contract:
    """Every ``b`` step has an earlier ``a`` step; fails at the first ``b`` without one."""
    return Precedes(a, b)


def responds(a: Pred, b: Pred) -> Contract:
    """Every ``a`` step is followed by a later ``b`` step; fails at the end if one is not."""
    return Responds(a, b)
