"""Hypothesis strategies for contract tests: small random traces and random contracts.

Traces draw every field from a few values, so that predicates over them are true often
enough and false often enough to exercise every verdict. Contracts are drawn as the AST of
``contract_reference`` and translated to the mattrace DSL by :func:`to_contract`; the
reference evaluates the same AST by its own definitions.
"""

from __future__ import annotations

import functools

from hypothesis import strategies as st

from mattrace import contracts as mc
from mattrace.contracts import Contract, Pred
from mattrace.trace import Source, Step, StepError, StepKind, Trace
from tests import contract_reference as r

__all__ = [
    "AGENTS",
    "EMAILS",
    "OPERATORS",
    "TOOLS",
    "contract_asts",
    "guarded_past_asts",
    "operator_asts",
    "pred_asts",
    "stateful_pred_asts",
    "stateless_pred_asts",
    "step_lists",
    "to_contract",
    "to_pred",
    "to_trace",
]

AGENTS = ("user", "assistant", "writer")
TOOLS = ("send_email", "search", "refund")
EMAILS = ("a@ourco.com", "x@evil.example")
_KINDS = tuple(k.value for k in StepKind if k is not StepKind.END)
_PATTERNS = (r"\byes\b", "no", "ref", r"^ok")


# -- traces --------------------------------------------------------------------------------


# Each field is drawn from a short list of prepared values: one cheap draw per field keeps a
# 40-step trace fast to generate, and shrinking moves every field towards its first value.
_CONTENTS = (None, "yes", "no", "ok", "refund please", "Yes ok", "ok yes", "no refund", "please yes no")
_ARGS = (None, {}, {"to": EMAILS[0]}, {"to": EMAILS[1]}, {"amount": 1}, {"to": EMAILS[1], "amount": 2})
_TRUSTED, _UNTRUSTED = Source(kind="user", ref="user"), Source(kind="retrieval", ref="web-1", trusted=False)
_SOURCES = ((), (_TRUSTED,), (_UNTRUSTED,), (_TRUSTED, _UNTRUSTED), (Source(kind="tool", trusted=False),))
_ATTRS = ({}, {"tokens": 10}, {"tokens": {"total": 25}}, {"cost_usd": 0.25}, {"tokens": 40, "cost_usd": 1.0},
          {"tokens": {"total": 3}, "cost_usd": 0.5})
_ERROR = StepError(type="TimeoutError", message="timed out")

_targets_tool = st.sampled_from(TOOLS)
_targets_any = st.sampled_from((None, *TOOLS, *AGENTS))
_fields = st.tuples(
    st.sampled_from(AGENTS),
    st.sampled_from(_CONTENTS),
    st.sampled_from(_ARGS),
    st.sampled_from(_SOURCES),
    st.sampled_from(_ATTRS),
    st.sampled_from((None, _ERROR)),
    st.booleans(),
)


@functools.cache
def _reads(index: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, index - 1), unique=True, max_size=2).map(sorted)


def _step(draw: st.DrawFn, index: int, kind: str) -> Step:
    tool_like = kind in ("tool", "retrieval")
    target = draw(_targets_tool if tool_like and draw(st.booleans()) else _targets_any)
    agent, content, args, sources, attrs, error, side_effect = draw(_fields)
    return Step(index=index, kind=StepKind(kind), agent=agent, target=target, content=content,
                args=None if args is None else dict(args),
                error=error, sources=sources, reads=tuple(draw(_reads(index))) if index else (),
                side_effect=side_effect, attrs=dict(attrs))


# hypothesis keeps most lists short; a third of the traces take a uniform length up to 40
_kind_lists = st.one_of(
    st.lists(st.sampled_from(_KINDS), max_size=40),
    st.lists(st.sampled_from(_KINDS), max_size=40),
    st.integers(0, 40).flatmap(lambda n: st.lists(st.sampled_from(_KINDS), min_size=n, max_size=n)),
)


@st.composite
def step_lists(draw: st.DrawFn, max_steps: int = 40) -> list[Step]:
    """0..max_steps steps with consecutive indices, ``reads`` to earlier steps, maybe a final ``end``."""
    kinds = draw(_kind_lists)[:max_steps]
    if draw(st.booleans()):
        kinds = [*kinds[: max_steps - 1], "end"]
    return [_step(draw, i, k) for i, k in enumerate(kinds)]


def to_trace(steps: list[Step], name: str = "prop") -> Trace:
    """The steps as a Trace, for ``check``."""
    return Trace(trace_id="0", name=name, steps=steps)


# -- predicates and contracts ----------------------------------------------------------------

_name_specs = {
    "agent": st.sampled_from(AGENTS) | st.just("w*") | st.just(("user", "writer")),
    "tool": st.sampled_from(TOOLS) | st.just("s*") | st.just(("refund", "search")),
}

_leaves: st.SearchStrategy[r.PredAst] = st.one_of(
    st.lists(st.sampled_from((*_KINDS, "end")), min_size=1, max_size=2, unique=True).map(
        lambda ks: r.Kind(tuple(ks))),
    _name_specs["agent"].map(r.Agent),
    _name_specs["tool"].map(r.Tool),
    st.sampled_from((*TOOLS, *AGENTS)).map(r.Target),
    st.builds(r.Message, agent=st.none() | _name_specs["agent"], matches=st.none() | st.sampled_from(_PATTERNS)),
    st.sampled_from(_PATTERNS).map(r.Content),
    st.builds(r.ArgEq, name=st.just("to"), value=st.sampled_from(EMAILS))
    | st.builds(r.ArgEq, name=st.just("amount"), value=st.integers(1, 3)),
    st.just(r.Untrusted()),
    st.just(r.SideEffect()),
    st.just(r.Error()),
    st.just(r.AnyStep()),
)


_BOOLEAN_OPS = ("leaf", "and", "or", "implies", "not", "leaf")
_OPS = {False: st.sampled_from(_BOOLEAN_OPS), True: st.sampled_from((*_BOOLEAN_OPS, "once", "since", "flows"))}


@st.composite
def _pred_tree(draw: st.DrawFn, depth: int, past: bool) -> r.PredAst:
    # the operator is drawn first, so leaves do not crowd out the combinators (a one_of over
    # the eleven leaf strategies and eight operators would be mostly leaves); "leaf" comes
    # first so that shrinking simplifies trees
    op = "leaf" if depth == 0 else draw(_OPS[past])
    if op == "leaf":
        return draw(_leaves)
    sub = pred_asts(depth - 1, past)
    if op == "not":
        return r.Not(draw(sub))
    if op == "once":
        return r.Once(draw(sub))
    node = {"and": r.And, "or": r.Or, "implies": r.Implies, "since": r.Since, "flows": r.Flows}[op]
    return node(draw(sub), draw(sub))


@functools.cache
def pred_asts(depth: int = 3, past: bool = True) -> st.SearchStrategy[r.PredAst]:
    """Predicate ASTs nested up to ``depth`` operators deep (past-time ones only if ``past``)."""
    return _pred_tree(depth, past)


def stateless_pred_asts(depth: int = 3) -> st.SearchStrategy[r.PredAst]:
    """Predicate ASTs without past-time operators."""
    return pred_asts(depth, past=False)


def guarded_past_asts() -> st.SearchStrategy[r.PredAst]:
    """``leaf op past(leaves)`` for op in and/or/implies.

    The step-local left side alone decides many steps; the past-time right side must still
    see every one of them, or its history falls behind.
    """
    past = st.one_of(st.builds(r.Once, _leaves), st.builds(r.Since, _leaves, _leaves),
                     st.builds(r.Flows, _leaves, _leaves))
    return st.builds(lambda op, left, right: op(left, right), st.sampled_from([r.And, r.Or, r.Implies]),
                     _leaves, past)


def stateful_pred_asts(depth: int = 2) -> st.SearchStrategy[r.PredAst]:
    """Predicate ASTs with at least one past-time operator, possibly under a combinator."""
    sub = pred_asts(depth)
    past = st.one_of(st.builds(r.Once, sub), st.builds(r.Since, sub, sub), st.builds(r.Flows, sub, sub))
    return st.one_of(past, st.builds(r.Not, past), st.builds(r.And, sub, past), st.builds(r.Implies, past, sub))


def _budgets(around: int | None) -> st.SearchStrategy[int]:
    """Small budgets, and (given a trace length) budgets at the length, where off-by-ones show."""
    small = st.integers(0, 12)
    if around is None:
        return small
    return small | st.sampled_from(sorted({max(around + d, 0) for d in (-2, -1, 0, 1)}))


def operator_asts(op: str, depth: int = 3, around: int | None = None) -> st.SearchStrategy[r.ContractAst]:
    """Contracts of one operator (a name in :data:`OPERATORS`), predicates nested up to ``depth``.

    ``around`` (the length of the trace they will be checked on) adds step and count budgets
    right at that length.
    """
    p = pred_asts(depth)
    budget = _budgets(around)
    if op == "always":
        return st.builds(r.Always, p)
    if op == "never":
        return st.builds(r.Never, p)
    if op == "eventually":
        return st.builds(r.Eventually, p)
    if op == "precedes":
        return st.builds(r.Precedes, p, p)
    if op == "responds":
        return st.builds(r.Responds, p, p)
    if op == "at_most":
        return st.builds(r.AtMost, st.integers(0, 4) | budget, p)
    if op == "within":
        return st.builds(r.Within, steps=budget) | st.builds(
            r.Within, steps=st.none() | budget, tokens=st.integers(0, 150),
            cost=st.none() | st.sampled_from([0.0, 1.0, 2.5]))
    if op == "each":
        return st.builds(r.Each, p, p) | st.builds(r.EachCall, p, st.sampled_from(sorted(r.HISTORY_CHECKS)))
    raise ValueError(f"unknown operator {op!r}")


OPERATORS = ("always", "never", "eventually", "precedes", "responds", "at_most", "within", "each")


def contract_asts(depth: int = 3) -> st.SearchStrategy[r.ContractAst]:
    """Contracts of every operator, predicates nested up to ``depth``."""
    return st.one_of(*(operator_asts(op, depth) for op in OPERATORS))


def _spec(spec: r.NameSpec) -> str | frozenset[str]:
    return frozenset(spec) if isinstance(spec, tuple) else spec


def to_pred(p: r.PredAst) -> Pred:
    """The DSL predicate for an AST node."""
    s = mc.step
    match p:
        case r.Kind(kinds):
            return s.kind(*kinds)
        case r.Agent(spec):
            return s.agent(_spec(spec))
        case r.Target(spec):
            return s.target(_spec(spec))
        case r.Tool(spec):
            return s.tool(_spec(spec))
        case r.Message(agent, matches):
            return s.message(agent=None if agent is None else _spec(agent), matches=matches)
        case r.Content(pattern):
            return s.content.matches(pattern)
        case r.ArgEq(name, value):
            return s.arg(name).eq(value)
        case r.Untrusted():
            return s.untrusted()
        case r.SideEffect():
            return s.side_effect()
        case r.Error():
            return s.error()
        case r.AnyStep():
            return s.any()
        case r.And(a, b):
            return to_pred(a) & to_pred(b)
        case r.Or(a, b):
            return to_pred(a) | to_pred(b)
        case r.Implies(a, b):
            return to_pred(a) >> to_pred(b)
        case r.Not(a):
            return ~to_pred(a)
        case r.Once(a):
            return mc.once(to_pred(a))
        case r.Since(a, b):
            return mc.since(to_pred(a), to_pred(b))
        case r.Flows(a, b):
            return mc.flows(to_pred(a), into=to_pred(b))
    raise TypeError(f"not a predicate AST: {p!r}")


def to_contract(c: r.ContractAst) -> Contract:
    """The DSL contract for an AST node."""
    match c:
        case r.Always(p):
            return mc.always(to_pred(p))
        case r.Never(p):
            return mc.never(to_pred(p))
        case r.Eventually(p):
            return mc.eventually(to_pred(p))
        case r.Precedes(a, b):
            return mc.precedes(to_pred(a), to_pred(b))
        case r.Responds(a, b):
            return mc.responds(to_pred(a), to_pred(b))
        case r.AtMost(n, p):
            return mc.at_most(n, to_pred(p))
        case r.Within(steps, tokens, cost):
            return mc.within(steps=steps, tokens=tokens, cost=cost)
        case r.Each(p, q):
            return mc.each(to_pred(p)).must(to_pred(q))
        case r.EachCall(p, name):
            return mc.each(to_pred(p)).must(r.HISTORY_CHECKS[name])
    raise TypeError(f"not a contract AST: {c!r}")
