"""Past-time step predicates: conditions on the history up to the current step.

``once``, ``since`` and ``flows`` answer at step *i* from a constant-size summary of steps
``0..i`` (``flows`` keeps the set of tainted steps and the context-flow index of
:mod:`mattrace.provenance`), updated as each step arrives, so they nest inside
``always``/``never``/``>>`` without ever re-reading the trace. Each bound
evaluator also remembers *which* steps decided its last answer: that is the witness a
violation reports (the user's "yes", the untrusted document an e-mail came from).
"""

from __future__ import annotations

from typing import Any

from mattrace.contracts._predicates import (
    Evaluator,
    NameRef,
    Pred,
    _library_only,
    _Not,
    _paren,
    _pred,
    true_on,
)
from mattrace.contracts._state import NO_SNAPSHOT, restore, restore_all, snapshot, snapshot_all
from mattrace.errors import ContractError
from mattrace.provenance import ContextFlow
from mattrace.trace import Step, StepKind

__all__ = ["Earlier", "Flows", "once", "since", "flows"]


class _Unary(Pred):
    """A past-time operator over one operand; subclasses give ``text`` and ``bind``."""

    __slots__ = ("inner",)

    def __init__(self, inner: Pred) -> None:
        self.inner = _pred(inner, type(self).__name__.lower())

    @property
    def stateful(self) -> bool:
        return True

    def names(self) -> tuple[NameRef, ...]:
        return self.inner.names()


class Once(_Unary):
    """``once(p)``: p held at some step so far (this one included)."""

    __slots__ = ()

    def text(self) -> str:
        return f"once({self.inner.text()})"

    def history_kinds(self) -> frozenset[StepKind] | None:
        # it remembers the first step where its operand held
        return None if self.inner.stateful else true_on(self.inner)

    def bind(self) -> Evaluator:
        return _BoundOnce(self.inner.bind(), self.inner.stateful)


class _BoundOnce:
    __slots__ = ("inner", "keep_feeding", "seen")

    def __init__(self, inner: Evaluator, keep_feeding: bool) -> None:
        self.inner = inner
        self.keep_feeding = keep_feeding
        self.seen: int | None = None

    def __call__(self, s: Step) -> bool:
        if self.seen is not None and not self.keep_feeding:
            return True
        if self.inner(s) and self.seen is None:
            self.seen = s.index
        return self.seen is not None

    def snapshot(self) -> Any:
        inner = snapshot(self.inner)
        return NO_SNAPSHOT if inner is None else (self.seen, inner)

    def restore(self, state: Any) -> None:
        self.seen, inner = state
        restore(self.inner, inner)

    def witness(self) -> tuple[int, ...]:
        return () if self.seen is None else (self.seen,)


class Earlier(_Unary):
    """p held at some step strictly before this one (precedes, action-after-error)."""

    __slots__ = ()

    def text(self) -> str:
        return f"earlier({self.inner.text()})"

    def history_kinds(self) -> frozenset[StepKind] | None:
        return None if self.inner.stateful else true_on(self.inner)

    def bind(self) -> Evaluator:
        return _BoundEarlier(self.inner.bind())


class _BoundEarlier(_BoundOnce):
    __slots__ = ()

    def __init__(self, inner: Evaluator) -> None:
        super().__init__(inner, keep_feeding=True)

    def __call__(self, s: Step) -> bool:
        before = self.seen is not None
        if self.inner(s) and self.seen is None:
            self.seen = s.index
        return before


class Since(Pred):
    """``since(a, b)``: b held at some step j <= now and a held at every step after j."""

    __slots__ = ("a", "b")
    compound = True

    def __init__(self, a: Pred, b: Pred) -> None:
        self.a = _pred(a, "since")
        self.b = _pred(b, "since")

    @property
    def stateful(self) -> bool:
        return True

    def text(self) -> str:
        return f"{_paren(self.a)} since {_paren(self.b)}"

    def history_kinds(self) -> frozenset[StepKind] | None:
        # what it remembers changes where b holds or a fails; `a` is most often `not x`
        # (nobody else spoke since), which fails exactly where x holds
        a = self.a
        if self.b.stateful or a.stateful or not isinstance(a, _Not) or not _library_only(a):
            return None
        holds, fails = true_on(self.b), true_on(a.inner)
        return None if holds is None or fails is None else holds | fails

    def names(self) -> tuple[NameRef, ...]:
        return self.a.names() + self.b.names()

    def bind(self) -> Evaluator:
        return _BoundSince(self.a.bind(), self.b.bind())


class _BoundSince:
    __slots__ = ("a", "anchor", "b", "last_not_a")

    def __init__(self, a: Evaluator, b: Evaluator) -> None:
        self.a, self.b = a, b
        self.anchor: int | None = None       # the b-step the current run of a's hangs from
        self.last_not_a: int | None = None   # the latest step where a failed: what broke it

    def __call__(self, s: Step) -> bool:
        va = self.a(s)
        vb = self.b(s)
        if not va:
            self.last_not_a = s.index
        if vb:
            self.anchor = s.index
        elif not va:
            self.anchor = None
        return self.anchor is not None

    def snapshot(self) -> Any:
        states = snapshot_all(self.a, self.b)
        return NO_SNAPSHOT if states is None else (self.anchor, self.last_not_a, states)

    def restore(self, state: Any) -> None:
        self.anchor, self.last_not_a, states = state
        restore_all((self.a, self.b), states)

    def witness(self) -> tuple[int, ...]:
        if self.anchor is not None:
            return (self.anchor,)
        return () if self.last_not_a is None else (self.last_not_a,)


class Flows(Pred):
    """``flows(src, into=dst)``: a ``dst`` step reached along ``reads`` edges from a ``src`` step.

    The edges are the context flow: the ``reads`` the trace records and those its text
    shows (an earlier output held in a prompt or an argument), inferred as the steps
    arrive (:class:`mattrace.provenance.ContextFlow`). Taint is transitive and strict: the
    ``dst`` step must have read (directly or through other steps) the output of an earlier
    ``src`` step; a step is not tainted by itself.
    """

    __slots__ = ("dst", "src")
    compound = True

    def __init__(self, src: Pred, dst: Pred) -> None:
        self.src = _pred(src, "flows")
        self.dst = _pred(dst, "flows")

    @property
    def stateful(self) -> bool:
        return True

    def text(self) -> str:
        return f"{_paren(self.dst)} reached from {_paren(self.src)}"

    def names(self) -> tuple[NameRef, ...]:
        return self.src.names() + self.dst.names()

    def bind(self) -> Evaluator:
        return _BoundFlows(self.src.bind(), self.dst.bind())


class _BoundFlows:
    __slots__ = ("context", "dst", "parent", "path_end", "src")

    def __init__(self, src: Evaluator, dst: Evaluator) -> None:
        self.src, self.dst = src, dst
        self.context = ContextFlow()
        # tainted step -> the tainted step it read (-1 for a source): enough to rebuild a path.
        self.parent: dict[int, int] = {}
        self.path_end: int | None = None

    def __call__(self, s: Step) -> bool:
        is_src = self.src(s)
        is_dst = self.dst(s)
        reads = self.context.observe(s).reads
        parent = self.parent
        via = -1
        for r in reads:
            if r in parent:
                via = r
                break
        if via >= 0:
            parent[s.index] = via
        elif is_src:
            parent[s.index] = -1
        hit = is_dst and via >= 0
        self.path_end = s.index if hit else None
        return hit

    def snapshot(self) -> Any:
        # steps arrive in index order, so what a step adds to ``parent`` is its own new key,
        # the last one inserted: putting it back is dropping keys from the end
        states = snapshot_all(self.src, self.dst)
        if states is None:
            return NO_SNAPSHOT
        return (states, self.context.snapshot(), len(self.parent), self.path_end)

    def restore(self, state: Any) -> None:
        states, context, size, self.path_end = state
        self.context.restore(context)
        restore_all((self.src, self.dst), states)
        parent = self.parent
        while len(parent) > size:
            parent.popitem()

    def witness(self) -> tuple[int, ...]:
        """The path from the untrusted source to the last hit, oldest first."""
        if self.path_end is None:
            return ()
        path = [self.path_end]
        node = self.parent[self.path_end]
        while node >= 0:
            path.append(node)
            node = self.parent[node]
        return tuple(reversed(path))


def once(p: Pred) -> Pred:
    """p held at some step so far (the current one included)."""
    return Once(p)


def since(a: Pred, b: Pred) -> Pred:
    """*a S b*: b held at some step j <= now, and a at every step after j up to now."""
    return Since(a, b)


def flows(src: Pred, *, into: Pred, via: str = "context") -> Pred:
    """A step matching ``into`` that consumed output of a ``src`` step.

    Args:
        via: ``"context"`` (default): along ``reads`` edges, recorded or inferred from the
            text (:func:`mattrace.provenance.context_reads`), transitively (the step could
            have seen it); ``"data"``: an input value of the step was copied from the
            ``src`` step's output and from no user or trusted text (see
            :mod:`mattrace.provenance`); ``"any"``: either.
    """
    if via == "context":
        return Flows(src, into)
    from mattrace.contracts._dataflow import DataFlows

    if via == "data":
        return DataFlows(src, into)
    if via == "any":
        return Flows(src, into) | DataFlows(src, into)
    raise ContractError(f'flows(..., via={via!r}): expected "context", "data" or "any"')
