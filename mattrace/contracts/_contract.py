"""The contract and monitor base classes every operator and stock contract builds on.

A :class:`Contract` is an immutable description (it prints, it has a name and a severity);
:meth:`Contract.monitor` makes a fresh :class:`Monitor`, the stateful object that sees one
run step by step. Keeping the two apart lets the same contract list check many traces, in
many threads, without sharing state.

Both are abstract base classes, so an incomplete subclass fails when it is instantiated
(``TypeError`` naming the missing methods) and under mypy, not halfway through a check:

- a :class:`Contract` must define :meth:`~Contract.describe` and :meth:`~Contract.monitor`;
- a :class:`Monitor` must define :meth:`~Monitor._step` (judge one step); :meth:`~Monitor._finish`
  (judge the end of the run) is an optional hook whose default passes.

Two optional hooks keep verdicts honest (docs/contracts.md, "Vacuous and incomplete
verdicts"): :meth:`Contract.names` lists the tool and agent names a contract is about, and
:meth:`Monitor.untriggered` says when its ``if`` part never fired; a monitor that overrides
``_finish`` (or sets :attr:`Monitor.needs_end`) decides at the end of the run, so on a
trace without its end it is ``INCOMPLETE``.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any, Self, get_args

from mattrace.contracts._predicates import NameRef
from mattrace.contracts._verdict import Severity, Status, Verdict, Violation
from mattrace.errors import ContractError
from mattrace.trace import Step, StepKind

__all__ = ["Contract", "Monitor", "describe_step"]

_SEVERITIES: tuple[str, ...] = get_args(Severity)


def describe_step(s: Step) -> str:
    """A short phrase for a step in a reason sentence: ``tool send_email by writer``."""
    kind = s.kind.value
    if s.kind is StepKind.MESSAGE:
        to = f" to {s.target}" if s.target else ""
        return f"message from {s.agent}{to}"
    if s.kind is StepKind.END:
        return "end of run"
    what = f"{kind} {s.target}" if s.target else kind
    if s.kind is StepKind.LLM and "model" in s.attrs and not s.target:
        what = f"llm {s.attrs['model']}"
    return f"{what} by {s.agent}"


class Contract(ABC):
    """A property of a whole run; compile it with :meth:`monitor`, check it with ``mattrace.check``.

    Subclasses must define :meth:`describe` and :meth:`monitor`; naming, severity, ``repr``
    and ``str`` come from here. A contract is immutable once built: :meth:`named` and
    :meth:`severity` return shallow copies.
    """

    _name: str | None = None
    _severity: Severity = "safety"
    _origin: str | None = None

    @abstractmethod
    def describe(self) -> str:
        """The contract as readable text (the default name)."""

    @abstractmethod
    def monitor(self) -> Monitor:
        """A fresh online monitor for one run."""

    def names(self) -> tuple[NameRef, ...]:
        """The tool, agent and target names the contract is about (``()`` by default).

        A contract that passes on a trace in which one of these names appears nowhere is
        reported vacuous: it most likely names a tool or agent that was misspelt or renamed.
        """
        return ()

    @property
    def origin(self) -> str | None:
        """Where the contract was written (``file:line`` for a contract file entry), or None."""
        return self._origin

    @property
    def name(self) -> str:
        """The name given with :meth:`named`, else the contract's text."""
        return self._name if self._name is not None else self.describe()

    @property
    def level(self) -> Severity:
        """``"safety"`` (fails a test) or ``"quality"`` (reported, fails only in strict mode)."""
        return self._severity

    def named(self, name: str) -> Self:
        """A copy with ``name``: how verdicts, reports and the store refer to it."""
        if not isinstance(name, str) or not name.strip():
            raise ContractError(f"a contract name must be non-empty text, got {name!r}")
        clone = copy.copy(self)
        clone._name = name
        return clone

    def severity(self, level: Severity) -> Self:
        """A copy with severity ``level``: ``"safety"`` or ``"quality"``."""
        if level not in _SEVERITIES:
            raise ContractError(f"{self.name}: severity must be one of {', '.join(_SEVERITIES)}, got {level!r}")
        clone = copy.copy(self)
        clone._severity = level
        return clone

    def __repr__(self) -> str:
        text = self.describe()
        label = f"{self._name!r}: " if self._name is not None and self._name != text else ""
        return f"<contract {label}{text} [{self._severity}]>"

    def __str__(self) -> str:
        return self.name


class Monitor(ABC):
    """Sees one run a step at a time; settles to ``PASS`` or ``FAIL`` as early as it can.

    ``observe(step)`` returns None while the verdict is still pending on the prefix seen so
    far, and the settled :class:`Verdict` once it is definite (and on every call after).
    ``finish()`` turns a pending verdict into a final one. Steps must arrive in index order.
    Not thread-safe: one monitor per run.

    Subclasses must define :meth:`_step`, and may override :meth:`_finish` (by default a
    run that never settled passes). They settle with :meth:`passed` and :meth:`failed`.
    ``observe`` and ``finish`` are the callers' side and are not meant to be overridden:
    ``check`` calls ``_step`` directly on monitors that have not settled.
    """

    __slots__ = ("_verdict", "kinds", "last", "name", "severity")

    def __init__(self, contract: Contract) -> None:
        self.name = contract.name
        self.severity: Severity = contract.level
        self.last: int | None = None     # index of the last step observed: where end-only failures land
        self._verdict: Verdict | None = None
        self.kinds: frozenset[StepKind] | None = None
        """The kinds of step that can change this monitor's state or verdict (None: any kind).

        A step of another kind leaves it as it was, so ``check`` and the guard do not feed
        it one (``last`` alone then lags, and ``check`` sets it at the end). A monitor of
        one's own leaves it None unless it is sure.
        """

    @property
    def status(self) -> Status:
        """``PASS``/``FAIL`` once settled, else ``PENDING``."""
        return self._verdict.status if self._verdict is not None else Status.PENDING

    @property
    def verdict(self) -> Verdict:
        """The verdict on the prefix observed so far."""
        if self._verdict is not None:
            return self._verdict
        return Verdict(self.name, Status.PENDING, self.severity)

    def observe(self, s: Step) -> Verdict | None:
        """Feed the next step; the settled verdict, or None while pending."""
        if self._verdict is not None:
            return self._verdict
        self.last = s.index
        return self._step(s)

    @abstractmethod
    def _step(self, s: Step) -> Verdict | None:
        """Judge the next step of an unsettled run: a verdict from :meth:`passed`/:meth:`failed`, or None."""

    def judge(self, s: Step) -> Violation | None:
        """Feed the next step and return the violation that step commits, if any, also when an
        earlier step has already failed the contract.

        ``observe`` settles at the first failure, because a check reports the first violating
        step. A run-time guard needs more: after an unmediated step (a message) has violated a
        contract, every later action must still be judged on its own, or the first violation
        would let all the others through. A monitor fed with ``judge`` keeps judging past a
        failure; its :attr:`verdict` stays the first one. A contract that has passed stays
        passed (nothing a later step does can violate it).
        """
        settled = self._verdict
        if settled is None:
            self.last = s.index
            verdict = self._step(s)
        else:
            if settled.status is Status.PASS:
                return None
            self.last = s.index
            self._verdict = None
            try:
                verdict = self._step(s)
            finally:
                self._verdict = settled
        return verdict.violation if verdict is not None and verdict.status is Status.FAIL else None

    def peek(self, s: Step) -> Violation | None:
        """What :meth:`judge` would return for ``s``, leaving the monitor as it was.

        How a run-time guard asks "would this action violate the contract?" before the
        action runs: the action may be blocked, so the monitor must not have seen it. A
        monitor that can :meth:`_save` its state (every stock one) is fed ``s`` and put
        back, which costs a few attribute reads however long the run; any other monitor
        judges a deep copy of itself, as guards always did.
        """
        settled = self._verdict
        if settled is not None and settled.status is Status.PASS:
            return None   # nothing a later step does can violate it (as judge says)
        state = self._save()
        if state is None:
            return copy.deepcopy(self).judge(s)
        last = self.last
        self.last = s.index
        self._verdict = None   # judged on its own, also after an earlier failure (as judge does)
        try:
            verdict = self._step(s)
        finally:
            self.last, self._verdict = last, settled
            self._restore(state)
        return verdict.violation if verdict is not None and verdict.status is Status.FAIL else None

    def _save(self) -> Any:
        """This monitor's own state (not ``last`` and the verdict: :meth:`peek` keeps those),
        for :meth:`_restore`; None when it cannot be saved cheaply (:meth:`peek` then judges a
        deep copy). Monitors with state override both; the default says it cannot."""
        return None

    def _restore(self, state: Any) -> None:  # noqa: B027 - optional hook: a monitor without state has nothing to put back
        """Put back the state :meth:`_save` returned."""

    def finish(self, *, incomplete: str | None = None) -> Verdict:
        """The final verdict of the run observed: ``PASS`` or ``FAIL``.

        Args:
            incomplete: why the steps observed may not be the whole run (an unsealed or
                torn trace file, a run still going), or None when they are. A monitor that
                has not settled and :attr:`needs_end` is then ``INCOMPLETE``: the rest of
                the run could have gone either way.
        """
        if self._verdict is None:
            if incomplete is not None and self.needs_end:
                self._verdict = Verdict(self.name, Status.INCOMPLETE, self.severity,
                                        reason=f"it needs the end of the run, which the trace does not hold: "
                                               f"{incomplete}")
            else:
                self._verdict = self._finish()
        return self._verdict

    def _finish(self) -> Verdict:
        """Judge the end of a run that never settled; the default passes it."""
        return Verdict(self.name, Status.PASS, self.severity)

    @property
    def needs_end(self) -> bool:
        """Whether an unsettled verdict is decided by the end of the run (liveness, run budgets).

        True for monitors that override :meth:`_finish` (``eventually``, ``responds``,
        ``terminates``); ``within`` says so itself. A safety monitor that saw no violation
        passes on whatever prefix it was shown.
        """
        return type(self)._finish is not Monitor._finish

    def untriggered(self) -> str | None:
        """Why a pass was vacuous because the contract's trigger never fired, or None.

        Asked only of a monitor that passed. The default (None) suits contracts without an
        ``if`` part (``never``, ``always(p)``, budgets); implications, ``each``,
        ``responds`` and ``precedes`` say which trigger no step matched.
        """
        return None

    def passed(self, at: int | None) -> Verdict:
        """Settle as passed at step ``at``."""
        self._verdict = Verdict(self.name, Status.PASS, self.severity, step=at)
        return self._verdict

    def failed(self, at: int | None, reason: str, witness: tuple[int, ...] | list[int] = ()) -> Verdict:
        """Settle as failed with the first violating step ``at``."""
        ordered = tuple(sorted(set(witness)))
        violation = Violation(self.name, at, reason, ordered, self.severity)
        self._verdict = Verdict(self.name, Status.FAIL, self.severity, violation, step=at)
        return self._verdict

    def at_end(self) -> str:
        """How reasons refer to the end of the run."""
        return "the run ended" if self.last is None else f"the run ended at step {self.last}"
