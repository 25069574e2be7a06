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

import fnmatch
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from types import BuiltinFunctionType, FunctionType
from typing import Any, ClassVar, Literal

from mattrace.contracts._regex import LinearPattern, Regex, compile_linear
from mattrace.errors import ContractError
from mattrace.trace import Step, StepKind

__all__ = ["Evaluator", "NameRef", "Pred", "restore", "restore_all", "snapshot", "snapshot_all", "StepNamespace",
           "step", "true_on", "witness_of"]

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


NO_SNAPSHOT: Any = None
"""What :func:`snapshot` returns for an evaluator that cannot be put back cheaply."""


def snapshot(evaluator: Evaluator) -> Any:
    """The state a bound evaluator needs to be put back as it is now, for :func:`restore`.

    A guard judges an action on the run so far without committing it: it snapshots the
    monitors, feeds them the action, and restores them. That must cost a few attribute
    reads, not a copy of the run, so the stateful evaluators (``once``, ``since``,
    ``flows``, the combinators over them) define ``snapshot()`` and ``restore(state)``
    over their small state, and the analyses they hold undo what one step added.

    A plain function is stateless here (``()``), as ``copy.deepcopy`` also takes it to be.
    Any other callable without ``snapshot`` gives :data:`NO_SNAPSHOT` (None): the caller
    then judges a deep copy instead, as before.
    """
    if type(evaluator) is FunctionType:   # the common case, a leaf or a connective of leaves
        return ()
    save = getattr(evaluator, "snapshot", None)
    if save is not None:
        return save()
    if isinstance(evaluator, FunctionType | BuiltinFunctionType):
        return ()
    return NO_SNAPSHOT


def restore(evaluator: Evaluator, state: Any) -> None:
    """Put a bound evaluator back to what :func:`snapshot` returned (a function: nothing to do)."""
    if state != ():
        evaluator.restore(state)  # type: ignore[attr-defined]


def snapshot_all(*evaluators: Evaluator) -> tuple[Any, ...] | None:
    """The snapshots of several evaluators, or None when one of them cannot be snapshot.

    A snapshot may open an undo journal; when a later operand fails, the ones already
    taken are restored, so a failed attempt leaves every evaluator as it was.
    """
    states: list[Any] = []
    for ev in evaluators:
        state = snapshot(ev)
        if state is None:
            for done, taken in zip(reversed(evaluators[:len(states)]), reversed(states), strict=True):
                restore(done, taken)
            return None
        states.append(state)
    return tuple(states)


def restore_all(evaluators: tuple[Evaluator, ...], states: tuple[Any, ...]) -> None:
    """Put several evaluators back from :func:`snapshot_all` (in reverse: undo is last-in first-out)."""
    for ev, state in zip(reversed(evaluators), reversed(states), strict=True):
        restore(ev, state)


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


NameSpec = str | Collection[str] | re.Pattern[str]


def _compile_regex(pattern: str | Regex, what: str) -> Regex:
    """A pattern given as text compiled for linear-time matching (RE2); a compiled one as given."""
    if isinstance(pattern, re.Pattern | LinearPattern):
        return pattern
    if not isinstance(pattern, str):
        raise ContractError(f"{what}: expected a regular expression, got {pattern!r}")
    try:
        return compile_linear(pattern)
    except ContractError as exc:
        raise ContractError(f"{what}: {exc}") from None


def _name_matcher(spec: NameSpec, what: str) -> tuple[Callable[[str | None], bool], str]:
    """Match a name exactly, by glob (``send_*``), from a set, or by regex (re.search)."""
    if isinstance(spec, re.Pattern):
        rx = spec
        return (lambda v: v is not None and rx.search(v) is not None), f"{what} matching /{rx.pattern}/"
    if isinstance(spec, str):
        if any(c in spec for c in "*?["):
            rx = re.compile(fnmatch.translate(spec))
            return (lambda v: v is not None and rx.match(v) is not None), f"{what} {spec}"
        name = spec
        return (lambda v: v == name), f"{what} {name}"
    if isinstance(spec, Collection) and all(isinstance(x, str) for x in spec) and spec:
        names = frozenset(spec)
        return (lambda v: v in names), f"{what} in {{{', '.join(sorted(names))}}}"
    raise ContractError(f"step.{what}(...) takes a name, a non-empty set of names or a compiled regex; got {spec!r}")


def _name_refs(spec: NameSpec, field: NameField) -> tuple[NameRef, ...]:
    """The names ``spec`` mentions, one :class:`NameRef` each (a set's members one by one:
    a typo in one of them is still a typo). ``spec`` has passed :func:`_name_matcher`."""
    if isinstance(spec, re.Pattern):
        rx = spec
        return (NameRef(field, f"/{rx.pattern}/", lambda v: v is not None and rx.search(v) is not None),)
    if isinstance(spec, str):
        match, _ = _name_matcher(spec, field)
        exact = not any(c in spec for c in "*?[")
        return (NameRef(field, repr(spec), match, spec if exact else None),)
    return tuple(ref for name in sorted(spec) for ref in _name_refs(name, field))


_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False, default=str)


def _text_of(value: Any) -> str:
    """An argument as text: strings as they are, anything else as (non-ASCII-escaping) JSON."""
    return value if isinstance(value, str) else _JSON.encode(value)


def _search_leaves(rx: Regex, value: Any) -> bool:
    """True when some text inside ``value`` (a string, number, or one nested in lists and dicts) matches.

    Searching the leaves rather than a JSON dump is faster and matches what people mean by
    "the tool output says …": no JSON escaping of quotes, newlines or non-ASCII text.
    """
    if isinstance(value, str):
        return rx.search(value) is not None
    if isinstance(value, dict):
        return any(_search_leaves(rx, v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_search_leaves(rx, v) for v in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return rx.search(str(value)) is not None
    return False


class _Arg:
    """``step.arg(name)``: constraints on one argument of a call."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ContractError(f"step.arg(...) takes an argument name, got {name!r}")
        self._name = name

    def _leaf(self, test: Callable[[Any], bool], text: str, missing: bool = False) -> Pred:
        name = self._name

        def check(s: Step) -> bool:
            args = s.args
            if args is None or name not in args:
                return missing
            return test(args[name])

        return _Leaf(check, f"arg {name} {text}")

    def eq(self, value: Any) -> Pred:
        """The argument equals ``value``."""
        return self._leaf(lambda v: bool(v == value), f"== {value!r}")

    def matches(self, pattern: str | Regex) -> Pred:
        """The argument's text (JSON for non-strings) contains a match of ``pattern``."""
        rx = _compile_regex(pattern, f"step.arg({self._name!r}).matches")
        return self._leaf(lambda v: rx.search(_text_of(v)) is not None, f"matching /{rx.pattern}/")

    def not_matches(self, pattern: str | Regex) -> Pred:
        """The argument is absent or its text has no match of ``pattern``."""
        rx = _compile_regex(pattern, f"step.arg({self._name!r}).not_matches")
        return self._leaf(lambda v: rx.search(_text_of(v)) is None, f"not matching /{rx.pattern}/", missing=True)

    def in_(self, values: Iterable[Any]) -> Pred:
        """The argument is one of ``values``."""
        allowed = list(values)
        return self._leaf(lambda v: v in allowed, f"in {allowed!r}")


class _Text:
    """``step.content`` / ``step.result``: regex over a step's text."""

    __slots__ = ("_field",)

    def __init__(self, field: str) -> None:
        self._field = field

    def matches(self, pattern: str | Regex) -> Pred:
        """Some text of the field (for structured results: any string or number in it) matches ``pattern``."""
        rx = _compile_regex(pattern, f"step.{self._field}.matches")
        field = self._field

        def check(s: Step) -> bool:
            return _search_leaves(rx, getattr(s, field))

        return _Leaf(check, f"{field} matching /{rx.pattern}/")


def _kinds(kinds: Iterable[str | StepKind]) -> frozenset[StepKind]:
    out = set()
    for k in kinds:
        try:
            out.add(StepKind(k))
        except ValueError:
            known = ", ".join(m.value for m in StepKind)
            raise ContractError(f"unknown step kind {k!r}; known kinds: {known}") from None
    if not out:
        raise ContractError("step.kind(...) needs at least one kind")
    return frozenset(out)


class StepNamespace:
    """The ``step`` object: builds predicates over one step."""

    __slots__ = ()

    content = _Text("content")
    result = _Text("result")

    def kind(self, *kinds: str | StepKind) -> Pred:
        """The step is of one of ``kinds`` (``"tool"``, ``StepKind.MESSAGE``, ...)."""
        wanted = _kinds(kinds)
        names = sorted(k.value for k in wanted)
        text = f"kind {names[0]}" if len(names) == 1 else f"kind in {{{', '.join(names)}}}"
        return _Leaf(lambda s: s.kind in wanted, text, kinds=wanted)

    def agent(self, spec: NameSpec) -> Pred:
        """The step was taken by an agent matching ``spec`` (name, glob, set or regex)."""
        match, text = _name_matcher(spec, "agent")
        return _Leaf(lambda s: match(s.agent), text, _name_refs(spec, "agent"))

    def target(self, spec: NameSpec) -> Pred:
        """The step's target (tool, index, memory key, recipient) matches ``spec``."""
        match, text = _name_matcher(spec, "target")
        return _Leaf(lambda s: match(s.target), text, _name_refs(spec, "target"))

    def tool(self, spec: NameSpec) -> Pred:
        """A tool call whose tool name matches ``spec``."""
        match, text = _name_matcher(spec, "tool")
        tool_kind = StepKind.TOOL
        return _Leaf(lambda s: s.kind == tool_kind and match(s.target), text, _name_refs(spec, "tool"),
                     kinds=frozenset((tool_kind,)))

    def arg(self, name: str) -> _Arg:
        """Constraints on the call argument ``name``: ``.eq``, ``.matches``, ``.in_``, ``.not_matches``."""
        return _Arg(name)

    def untrusted(self) -> Pred:
        """The step's content has an untrusted source (a web page, an untrusted tool)."""
        return _Leaf(lambda s: any(not src.trusted for src in s.sources), "untrusted content")

    def side_effect(self) -> Pred:
        """The step changes the outside world (send, write, pay, delete)."""
        return _Leaf(lambda s: s.side_effect, "side effect")

    def error(self) -> Pred:
        """The boundary call of this step failed."""
        return _Leaf(lambda s: s.error is not None, "failed call")

    def message(self, agent: NameSpec | None = None, matches: str | Regex | None = None,
                to: NameSpec | None = None) -> Pred:
        """A message step, optionally from ``agent``, to ``to``, with content matching ``matches``."""
        tests: list[Callable[[Step], bool]] = []
        refs: tuple[NameRef, ...] = ()
        text = "message"
        if agent is not None:
            by, by_text = _name_matcher(agent, "agent")
            tests.append(lambda s: by(s.agent))
            text += " from " + by_text.removeprefix("agent ")
            refs += _name_refs(agent, "agent")
        if to is not None:
            rcpt, to_text = _name_matcher(to, "to")
            tests.append(lambda s: rcpt(s.target))
            text += " " + to_text
            refs += _name_refs(to, "agent")
        if matches is not None:
            rx = _compile_regex(matches, "step.message(matches=...)")
            tests.append(lambda s: s.content is not None and rx.search(s.content) is not None)
            text += f" matching /{rx.pattern}/"
        message_kind = StepKind.MESSAGE
        checks = tuple(tests)

        def check(s: Step) -> bool:
            if s.kind != message_kind:
                return False
            for t in checks:
                if not t(s):
                    return False
            return True

        return _Leaf(check, text, refs, kinds=frozenset((message_kind,)))

    def where(self, fn: Callable[[Step], bool], description: str | None = None) -> Pred:
        """Anything else: ``fn(step) -> bool``; ``description`` is how it prints."""
        if not callable(fn):
            raise ContractError(f"step.where(...) takes a callable, got {fn!r}")
        name = description or getattr(fn, "__name__", None) or repr(fn)
        return _Where(fn, f"where({name})")

    def any(self) -> Pred:
        """Every step."""
        return _Leaf(lambda s: True, "any step")


step = StepNamespace()
"""Builds step predicates: ``step.tool("send_email") & step.arg("to").not_matches(r"@ourco\\.com$")``."""


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
