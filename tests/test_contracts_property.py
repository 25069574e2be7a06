"""Contract monitors agree with a naive reference semantics on random traces and random contracts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mattrace.contracts import Status, check, check_steps
from mattrace.errors import ContractError
from mattrace.trace import Step
from tests import contract_reference as r
from tests.contract_strategies import (
    OPERATORS,
    contract_asts,
    guarded_past_asts,
    operator_asts,
    pred_asts,
    stateful_pred_asts,
    stateless_pred_asts,
    step_lists,
    to_contract,
    to_pred,
    to_trace,
)

# sized so the file runs in about 10 s of CPU (a 40-step trace takes a few ms to generate)
FAST = settings(max_examples=150, deadline=None)
MAIN = settings(max_examples=250, deadline=None)
PER_OPERATOR = settings(max_examples=60, deadline=None)

_STATUS = {r.PASS: Status.PASS, r.FAIL: Status.FAIL, r.PENDING: Status.PENDING}


def _expected_step(ref: r.Reference, c: r.ContractAst) -> int | None:
    """Where the reference says the verdict is settled: the prefix step, the last step, or None."""
    at = ref.settled_at(c)
    if at is not None:
        return at
    if ref.final(c) == r.FAIL:
        return ref.first_violation(c)
    return None


# -- the reference itself ------------------------------------------------------------------


@FAST
@given(step_lists(), contract_asts())
def test_reference_verdicts_settle_and_stay_settled(steps: list[Step], c: r.ContractAst) -> None:
    """Once the reference says PASS or FAIL on a prefix, every longer prefix and the end agree."""
    ref = r.Reference(steps)
    settled: str | None = None
    for n in range(1, len(steps) + 1):
        v = ref.verdict(c, n)
        if settled is not None:
            assert v == settled, f"prefix {n} is {v} after settling as {settled}"
        elif v != r.PENDING:
            settled = v
    assert settled is None or ref.final(c) == settled


# -- monitors against the reference ----------------------------------------------------------


@MAIN
@given(step_lists(), pred_asts())
def test_bound_predicates_agree_with_the_reference_at_every_step(steps: list[Step], p: r.PredAst) -> None:
    """A bound predicate fed the steps in order answers, at each step, what the reference says."""
    ref = r.Reference(steps)
    evaluate = to_pred(p).bind()
    for i, s in enumerate(steps):
        assert evaluate(s) is ref.holds(p, i), f"at step {i}"


@MAIN
@given(step_lists(), guarded_past_asts())
def test_combinators_feed_past_time_operands_every_step(steps: list[Step], p: r.PredAst) -> None:
    """`a & once(b)` and the like: when `a` alone decides a step, the past-time side still sees it."""
    ref = r.Reference(steps)
    evaluate = to_pred(p).bind()
    assert [evaluate(s) for s in steps] == [ref.holds(p, i) for i in range(len(steps))]


@FAST
@given(step_lists(), pred_asts(depth=1), pred_asts(depth=1))
def test_bound_flows_explains_each_hit_with_a_path(steps: list[Step], src: r.PredAst, dst: r.PredAst) -> None:
    """Whenever flows(src, into=dst) holds at a step, its witness is a reads path from a src step to it."""
    ref = r.Reference(steps)
    evaluate = to_pred(r.Flows(src, dst)).bind()
    for i, s in enumerate(steps):
        if evaluate(s):
            path = evaluate.witness()  # type: ignore[attr-defined]
            assert path[-1] == i and len(path) >= 2 and ref.is_path(path) and ref.holds(src, path[0])


@pytest.mark.parametrize("op", OPERATORS)
@PER_OPERATOR
@given(data=st.data())
def test_monitor_agrees_with_the_reference_on_every_prefix(op: str, data: st.DataObject) -> None:
    """After each step the monitor's status is the reference's prefix verdict; finish() is the final one."""
    steps = data.draw(step_lists(), label="steps")
    c = data.draw(operator_asts(op, around=len(steps)), label="contract")
    ref = r.Reference(steps)
    monitor = to_contract(c).monitor()
    for n, s in enumerate(steps, start=1):
        monitor.observe(s)
        assert monitor.status is _STATUS[ref.verdict(c, n)], f"after step {s.index}"
    final = monitor.finish()
    assert final.status is _STATUS[ref.final(c)]
    assert final.step == _expected_step(ref, c)
    if final.status is Status.FAIL:
        v = final.violation
        assert v is not None and v.step == ref.first_violation(c)
        assert all(0 <= w <= (v.step or 0) for w in v.witness), "witness steps come no later than the violation"
        if ref.settled_at(c) is not None:
            assert v.step in v.witness, "a violation on a prefix names its violating step in the witness"
        if isinstance(c, r.Responds):
            assert v.witness == (min(ref.unanswered(c)),), "the oldest unanswered step is the witness"
    else:
        assert final.violation is None


@MAIN
@given(step_lists(), st.lists(contract_asts(depth=2), min_size=1, max_size=4))
def test_check_of_many_contracts_equals_checking_each_alone(steps: list[Step], cs: list[r.ContractAst]) -> None:
    """check() over several contracts gives each the verdict it gets alone, and first_violation is the earliest."""
    trace = to_trace(steps)
    contracts = [to_contract(c).named(f"c{k}") for k, c in enumerate(cs)]
    together = check(trace, contracts)
    ref = r.Reference(steps)
    assert [v.contract for v in together] == [c.name for c in contracts]
    for c_ast, contract, verdict in zip(cs, contracts, together, strict=True):
        alone = check(trace, contract).verdicts[0]
        assert verdict == alone
        assert verdict.status is _STATUS[ref.final(c_ast)]
        assert verdict.step == _expected_step(ref, c_ast)
    failing = [(v.violation.step, k) for k, v in enumerate(together) if v.violation is not None]
    first = together.first_violation
    if not failing:
        assert first is None and together.ok
    else:
        step, k = min(failing, key=lambda f: (float("inf") if f[0] is None else f[0], f[1]))
        assert first is not None and first.step == step and first.contract == f"c{k}"
        assert not together.ok


@FAST
@given(step_lists(), st.lists(contract_asts(depth=2), min_size=1, max_size=3))
def test_check_steps_over_a_generator_equals_check(steps: list[Step], cs: list[r.ContractAst]) -> None:
    """Checking a one-shot iterator of steps gives the same verdicts as checking the trace."""
    contracts = [to_contract(c).named(f"c{k}") for k, c in enumerate(cs)]
    assert check_steps(iter(steps), contracts).verdicts == check(to_trace(steps), contracts).verdicts


@MAIN
@given(step_lists(), pred_asts(depth=1), pred_asts(depth=1))
def test_never_flows_witness_is_a_reads_path_from_a_source(steps: list[Step], src: r.PredAst,
                                                           dst: r.PredAst) -> None:
    """A never(flows(src, into=dst)) violation's witness is a reads path from a src step to the violating step."""
    c = r.Never(r.Flows(src, dst))
    ref = r.Reference(steps)
    verdict = check(to_trace(steps), to_contract(c)).verdicts[0]
    assert verdict.status is _STATUS[ref.final(c)]
    if verdict.violation is None:
        return
    path = verdict.violation.witness
    assert len(path) >= 2 and path[-1] == verdict.violation.step == ref.first_violation(c)
    assert ref.is_path(path), f"{path} is not joined by reads edges"
    assert ref.holds(src, path[0]), f"step {path[0]} does not satisfy the source predicate"
    assert ref.holds(dst, path[-1])


# -- predicates as values --------------------------------------------------------------------


@FAST
@given(step_lists(max_steps=6).filter(bool), stateless_pred_asts())
def test_stateless_predicates_on_one_step_agree_with_the_reference(steps: list[Step], p: r.PredAst) -> None:
    """A predicate without past-time operators may be called on a single step, with the reference's answer."""
    pred = to_pred(p)
    for s in steps:
        assert pred(s) is r.step_holds(p, s)


@FAST
@given(step_lists(max_steps=3).filter(bool), stateful_pred_asts())
def test_stateful_predicates_refuse_a_single_step(steps: list[Step], p: r.PredAst) -> None:
    """once/since/flows anywhere in a predicate make calling it on one step a ContractError."""
    with pytest.raises(ContractError, match="depends on the steps before it"):
        to_pred(p)(steps[0])


@FAST
@given(pred_asts(), pred_asts())
def test_predicates_refuse_to_be_truth_values(p: r.PredAst, q: r.PredAst) -> None:
    """`a and b` on predicates is refused: Pred.__bool__ raises ContractError."""
    a, b = to_pred(p), to_pred(q)
    with pytest.raises(ContractError, match="combine predicates with &"):
        _ = a and b
    with pytest.raises(ContractError):
        bool(a)


@FAST
@given(pred_asts())
def test_a_bare_predicate_is_not_a_contract(p: r.PredAst) -> None:
    """check() refuses a step predicate where a contract is expected, alone or in a list."""
    pred = to_pred(p)
    trace = to_trace([])
    with pytest.raises(ContractError, match="is a step predicate, not a contract"):
        check(trace, pred)  # type: ignore[arg-type]
    with pytest.raises(ContractError, match=r"contract 1: .* is a step predicate"):
        check(trace, [to_contract(r.Always(p)), pred])  # type: ignore[list-item]
