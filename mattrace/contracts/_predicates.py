"""Step predicates: what one step must look like, composable and printable.

A predicate is a small immutable tree (``step.tool("send_email") & ~step.untrusted()``) that
prints as the text every error message and report uses. Checking compiles it once with
:meth:`Pred.bind` into a plain callable, so the per-step cost is a few attribute reads, not
a walk over the tree. Predicates that depend on history (``once``, ``since``, ``flows``)
keep their state in the bound evaluator: a fresh ``bind()`` is a fresh run.

A bound evaluator is called exactly once per step, in order. Combinators therefore never
short-circuit past a stateful operand: skipping it would leave its history one step behind.

:class:`Pred` is an abstract base class: a subclass must define :meth:`~Pred.bind` and
:meth:`~Pred.text`, or instantiating it raises ``TypeError`` naming what is missing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from mattrace.contracts._state import NO_SNAPSHOT, restore, restore_all, snapshot, snapshot_all
from mattrace.errors import ContractError
from mattrace.trace import Step, StepKind

__all__ = ["Evaluator", "NameRef", "Pred", "true_on", "witness_of"]

Evaluator = Callable[[Step], bool]
"""A bound predicate: called once per step in order; may carry ``witness()``."""


NameField = Literal["tool", "agent", "target"]


@dataclass(frozen=True)
class NameRef:
    """A name a predicate is about (``step.tool("book_flight")`` names the tool ``book_flight``).

    Vacuity is judged from these: a contract whose named tool or agent appears nowhere in a
    trace passes there only because it never had anything to look at, which is what a
    misspelt or renamed tool looks like. ``name`` is the exact name (None for a glob or a
    regex, which get no did-you-mean); ``text`` is how the message quotes it.
    """

    field: NameField
    text: str
    match: Callable[[str | None], bool]
    name: str | None = None


def true_on(*preds: Pred) -> frozenset[StepKind] | None:
    """The kinds of step on which one of ``preds`` can hold; None when that is any kind, or
    when one of them keeps history (it must see every step)."""
    out: frozenset[StepKind] = frozenset()
    for p in preds:
        kinds = None if p.stateful else p.kinds()
        if kinds is None:
            return None
        out |= kinds
    return out


def _library_only(p: Pred) -> bool:
    """Whether ``p`` is built only of the library's step predicates (no ``step.where``, no
    predicate class of one's own): evaluating it on a step has no effect but its answer."""
    if isinstance(p, _Where):
        return False
    if type(p) is _Leaf:
        return True
    if isinstance(p, _Binary):
        return _library_only(p.left) and _library_only(p.right)
    if isinstance(p, _Not):
        return _library_only(p.inner)
    return False


def witness_of(evaluator: Evaluator) -> tuple[int, ...]:
    """Indices of the steps that decided the evaluator's last answer (empty when none)."""
    explain = getattr(evaluator, "witness", None)
    return explain() if explain is not None else ()


class Pred(ABC):
    """A predicate over one step (and, for the past-time operators, its history).

    Subclasses must define :meth:`bind` and :meth:`text`. A predicate whose answer depends
    on earlier steps also overrides :attr:`stateful` to return True; ``compound`` (print in
    parentheses when nested) defaults to False. The operators ``& | ~ >>`` come from here.
    """

    __slots__ = ()
    compound: ClassVar[bool] = False

    @property
    def stateful(self) -> bool:
        """True when the answer at a step depends on earlier steps (once, since, flows)."""
        return False

    @abstractmethod
    def bind(self) -> Evaluator:
        """A fresh evaluator for one run over a trace."""

    @abstractmethod
    def text(self) -> str:
        """The predicate as readable text, used in every verdict and report."""

    def kinds(self) -> frozenset[StepKind] | None:
        """The kinds of step this predicate can hold on, or None (any kind, or it cannot say).

        ``step.tool(...)`` holds only on tool steps, so ``never(step.tool("x"))`` has nothing
        to do on a message: checking skips feeding a monitor the steps it cannot react to.
        Only asked of predicates that are not :attr:`stateful`.
        """
        return None

    def history_kinds(self) -> frozenset[StepKind] | None:
        """The kinds of step that can change what this predicate remembers (None: any kind).

        Empty for a predicate without history. ``once(step.tool("x"))`` remembers only tool
        steps; with it, a monitor need not be fed the other kinds. A stateful predicate of
        one's own says None: it must see every step.
        """
        return None if self.stateful else frozenset()

    def names(self) -> tuple[NameRef, ...]:
        """The tool, agent and target names this predicate mentions, for the vacuity check.

        Composite predicates return their operands' names; a predicate that names nothing
        (``step.side_effect()``, ``step.where(fn)``) returns ``()``, the default.
        """
        return ()

    def __call__(self, s: Step) -> bool:
        if self.stateful:
            raise ContractError(f"{self} depends on the steps before it; use it inside a trace "
                                "operator such as always(...) or never(...), not on a single step")
        return self.bind()(s)

    def __and__(self, other: Pred) -> Pred:
        return _And(self, _pred(other, "&"))

    def __or__(self, other: Pred) -> Pred:
        return _Or(self, _pred(other, "|"))

    def __invert__(self) -> Pred:
        return _Not(self)

    def __rshift__(self, other: Pred) -> Pred:
        return _Implies(self, _pred(other, ">>"))

    def __bool__(self) -> bool:
        # `a and b` instead of `a & b` would silently drop `a`; refuse loudly instead.
        raise ContractError(f"{self}: combine predicates with &, |, ~ and >>, not and/or/not")

    def __repr__(self) -> str:
        return self.text()

    def __str__(self) -> str:
        return self.text()


def _pred(value: object, op: str) -> Pred:
    if not isinstance(value, Pred):
        raise ContractError(f"cannot combine a step predicate with {value!r} using {op}; "
                            "both sides must be step predicates (step.tool(...), step.kind(...), ...)")
    return value


def _paren(p: Pred) -> str:
    return f"({p.text()})" if p.compound or isinstance(p, _Not) else p.text()


# -- leaves --------------------------------------------------------------------------------


class _Leaf(Pred):
    __slots__ = ("_fn", "_kinds", "_refs", "_text")

    def __init__(self, fn: Callable[[Step], bool], text: str, refs: tuple[NameRef, ...] = (),
                 kinds: frozenset[StepKind] | None = None) -> None:
        self._fn = fn
        self._text = text
        self._refs = refs
        self._kinds = kinds

    def kinds(self) -> frozenset[StepKind] | None:
        return self._kinds

    def bind(self) -> Evaluator:
        return self._fn

    def text(self) -> str:
        return self._text

    def names(self) -> tuple[NameRef, ...]:
        return self._refs

    def __call__(self, s: Step) -> bool:
        return self._fn(s)


class _Where(_Leaf):
    """A user callable: errors it raises name the predicate and the step."""

    __slots__ = ()

    def bind(self) -> Evaluator:
        fn, text = self._fn, self._text

        def where(s: Step) -> bool:
            try:
                return bool(fn(s))
            except Exception as exc:
                raise ContractError(f"{text} raised {type(exc).__name__}: {exc} at step {s.index}") from exc

        return where

    def __call__(self, s: Step) -> bool:
        return self.bind()(s)


# -- combinators ---------------------------------------------------------------------------


class _Binary(Pred):
    """Two operands joined by a connective; subclasses give ``symbol``, ``combine`` and ``short_circuit``."""

    __slots__ = ("left", "right")
    compound = True
    symbol: ClassVar[str] = ""

    def __init__(self, left: Pred, right: Pred) -> None:
        self.left = left
        self.right = right

    @property
    def stateful(self) -> bool:
        return self.left.stateful or self.right.stateful

    def text(self) -> str:
        return f"{_paren(self.left)} {self.symbol} {_paren(self.right)}"

    def names(self) -> tuple[NameRef, ...]:
        return self.left.names() + self.right.names()

    def bind(self) -> Evaluator:
        if not self.stateful:
            # no history on either side, so no witness and nothing to save: a plain function,
            # one call a step instead of a walk through the connective's object
            return self.bind_plain(self.left.bind(), self.right.bind())
        return self.bind_tracked()

    def bind_tracked(self) -> _BoundBinary:
        """An evaluator that also records whether the left operand ever held (``left_held``):
        what an ``always(a >> b)`` asks to tell a vacuous pass."""
        return _BoundBinary(self.left.bind(), self.right.bind(), self.combine, eager=self.stateful,
                            short=self.short_circuit)

    def history_kinds(self) -> frozenset[StepKind] | None:
        # both operands of a connective over history run on every step it is fed: a step
        # may be left out only if neither side is code of one's own (that could raise on it)
        if not self.stateful:
            return frozenset()
        a, b = self.left.history_kinds(), self.right.history_kinds()
        if a is None or b is None or not (_library_only(self.left) or self.left.stateful) \
                or not (_library_only(self.right) or self.right.stateful):
            return None
        return a | b

    @staticmethod
    @abstractmethod
    def bind_plain(a: Evaluator, b: Evaluator) -> Evaluator:
        """The connective over two stateless evaluators, as a plain function (short-circuit)."""

    @staticmethod
    @abstractmethod
    def combine(a: bool, b: bool) -> bool:
        """The result from both operands' answers."""

    @staticmethod
    @abstractmethod
    def short_circuit(a: bool) -> bool | None:
        """The result when ``a`` alone decides it, else None."""


class _BoundBinary:
    __slots__ = ("_used_b", "a", "b", "combine", "eager", "left_held", "short")

    def __init__(self, a: Evaluator, b: Evaluator, combine: Callable[[bool, bool], bool], *, eager: bool,
                 short: Callable[[bool], bool | None]) -> None:
        self.a, self.b, self.combine, self.eager, self.short = a, b, combine, eager, short
        self._used_b = True
        self.left_held = False
        """Whether the left operand held at some step: for ``a >> b``, whether the implication ever fired."""

    def __call__(self, s: Step) -> bool:
        va = self.a(s)
        if va:
            self.left_held = True
        if not self.eager:
            decided = self.short(va)
            if decided is not None:
                self._used_b = False
                return decided
        self._used_b = True
        return self.combine(va, self.b(s))

    def snapshot(self) -> Any:
        states = snapshot_all(self.a, self.b)
        return NO_SNAPSHOT if states is None else (self._used_b, self.left_held, states)

    def restore(self, state: Any) -> None:
        self._used_b, self.left_held, states = state
        restore_all((self.a, self.b), states)

    def witness(self) -> tuple[int, ...]:
        left = witness_of(self.a)
        right = witness_of(self.b) if self._used_b else ()
        return tuple(sorted(set(left) | set(right)))


class _And(_Binary):
    __slots__ = ()
    symbol = "and"

    @staticmethod
    def bind_plain(a: Evaluator, b: Evaluator) -> Evaluator:
        return lambda s: a(s) and b(s)

    def kinds(self) -> frozenset[StepKind] | None:
        # the left operand runs on every step (the right only where the left held): where it
        # says nothing of kinds, the right narrows them only if the left is the library's own
        # code, which cannot raise or keep anything from the steps it would no longer see
        a, b = self.left.kinds(), self.right.kinds()
        if a is None:
            return b if _library_only(self.left) else None
        return a if b is None else a & b

    @staticmethod
    def combine(a: bool, b: bool) -> bool:
        return a and b

    @staticmethod
    def short_circuit(a: bool) -> bool | None:
        return False if not a else None


class _Or(_Binary):
    __slots__ = ()
    symbol = "or"

    @staticmethod
    def bind_plain(a: Evaluator, b: Evaluator) -> Evaluator:
        return lambda s: a(s) or b(s)

    def kinds(self) -> frozenset[StepKind] | None:
        a, b = self.left.kinds(), self.right.kinds()
        return None if a is None or b is None else a | b

    @staticmethod
    def combine(a: bool, b: bool) -> bool:
        return a or b

    @staticmethod
    def short_circuit(a: bool) -> bool | None:
        return True if a else None


class _Implies(_Binary):
    __slots__ = ()
    symbol = "implies"

    @staticmethod
    def bind_plain(a: Evaluator, b: Evaluator) -> Evaluator:
        return lambda s: (not a(s)) or b(s)

    @staticmethod
    def combine(a: bool, b: bool) -> bool:
        return (not a) or b

    @staticmethod
    def short_circuit(a: bool) -> bool | None:
        return True if not a else None


class _Not(Pred):
    __slots__ = ("inner",)

    def __init__(self, inner: Pred) -> None:
        self.inner = inner

    @property
    def stateful(self) -> bool:
        return self.inner.stateful

    def text(self) -> str:
        return f"not {_paren(self.inner)}"

    def names(self) -> tuple[NameRef, ...]:
        return self.inner.names()

    def history_kinds(self) -> frozenset[StepKind] | None:
        return self.inner.history_kinds()

    def bind(self) -> Evaluator:
        inner = self.inner.bind()
        if not hasattr(inner, "witness"):
            return lambda s: not inner(s)
        return _BoundNot(inner)

    def __invert__(self) -> Pred:
        return self.inner


class _BoundNot:
    __slots__ = ("inner",)

    def __init__(self, inner: Evaluator) -> None:
        self.inner = inner

    def __call__(self, s: Step) -> bool:
        return not self.inner(s)

    def snapshot(self) -> Any:
        return snapshot(self.inner)

    def restore(self, state: Any) -> None:
        restore(self.inner, state)

    def witness(self) -> tuple[int, ...]:
        return witness_of(self.inner)
