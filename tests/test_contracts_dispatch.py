"""Monitors are not fed steps they cannot react to, and that changes no verdict.

``check`` and the governance guard dispatch each step only to the monitors whose
:attr:`Monitor.kinds` hold its kind (``never(step.tool("x"))`` has nothing to do on a
message). These tests feed one monitor every step and a twin only the steps of its kinds,
and hold their verdicts equal after every step, at the end, and in what makes a pass
vacuous; and they hold the guard's decisions equal to judging a deep copy of monitors fed
every step, as the guard used to.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mattrace.contracts import (
    Contract,
    Status,
    always,
    check_steps,
    never,
    once,
    precedes,
    since,
    stays_in_role,
    step,
)
from mattrace.errors import ContractError
from mattrace.governance import Decision, guard
from mattrace.trace import Step, StepKind
from tests.contract_strategies import contract_asts, step_lists, to_contract
from tests.test_contracts_peek import _rich_runs, _stock

SETTINGS = settings(max_examples=120, deadline=None)


def _history_contracts() -> list[Contract]:
    """Implications over history whose monitors need only some kinds of step."""
    yes = step.message(agent="user", matches=r"\byes\b")
    return [
        always(step.tool("send_email") >> since(~step.kind("message"), yes)).named("h0"),
        always(step.tool("refund") >> once(step.message(agent="user"))).named("h1"),
        always(step.tool({"search", "refund"}) >> ~once(step.tool("send_email") & step.error())).named("h2"),
        precedes(step.message(agent="user") & step.content.matches("ok"), step.tool("refund")).named("h3"),
        never(step.tool("send_email") & step.arg("to").eq("x@evil.example")).named("h4"),
        stays_in_role({"writer": ["send_email"], "assistant": ["search"]}).named("h5"),
        always(step.tool("send_email") >> since(~step.kind("retrieval"), step.message(agent="user"))).named("h6"),
    ]


def _same_when_skipping(contracts: list[Contract], steps: list[Step]) -> None:
    for contract in contracts:
        every, some = contract.monitor(), contract.monitor()
        for s in steps:
            every.observe(s)
            if some.kinds is None or s.kind in some.kinds:
                some.observe(s)
            assert some.verdict == every.verdict, (contract.name, s.index)
        some.last = every.last
        assert some.finish() == every.finish(), contract.name
        if every.status is Status.PASS:
            assert some.untriggered() == every.untriggered(), contract.name


@SETTINGS
@given(st.lists(contract_asts(), min_size=1, max_size=3), step_lists(max_steps=30))
def test_random_contracts_judge_the_same_fed_only_the_kinds_they_react_to(asts: list[Any],
                                                                          steps: list[Step]) -> None:
    _same_when_skipping([to_contract(a) for a in asts] + _history_contracts(), steps)


@SETTINGS
@given(_rich_runs(max_steps=30))
def test_stock_contracts_judge_the_same_fed_only_the_kinds_they_react_to(steps: list[Step]) -> None:
    _same_when_skipping(_stock() + _history_contracts(), steps)


def _reference_guard(contracts: list[Contract], steps: list[Step], actions: list[Step]) -> list[bool]:
    """The guard as it was: every monitor fed every step, each action judged on a deep copy."""
    monitors = [c.monitor() for c in contracts]
    blocked = []
    for s, action in zip(steps, actions, strict=True):
        would = False
        for m in monitors:
            if m.status is Status.PASS:
                continue
            violation = copy.deepcopy(m).judge(action)
            if violation is not None and violation.step == action.index:
                would = True
                break
        blocked.append(would)
        for m in monitors:
            m.judge(s)
    return blocked


@SETTINGS
@given(_rich_runs(max_steps=25), _rich_runs(max_steps=25))
def test_the_guard_blocks_exactly_what_judging_deep_copies_blocked(steps: list[Step], actions: list[Step]) -> None:
    contracts = _stock() + _history_contracts()
    actions = [actions[i % len(actions)].model_copy(update={"index": s.index}) for i, s in enumerate(steps)] \
        if actions else []
    steps = steps[:len(actions)]
    rule = guard(contracts).fresh()
    got = []
    for s, action in zip(steps, actions, strict=True):
        ruling = rule.decide(action)
        got.append(ruling is not None and ruling.decision is Decision.BLOCK)
        rule.observe(s)
    assert got == _reference_guard(contracts, steps, actions)


def test_a_predicate_of_ones_own_still_sees_every_step_it_saw_before() -> None:
    """``where(...) & step.tool(...)`` runs the callable on every step (it comes first): one
    that raises on a message still fails the check, as it always did."""
    def no_messages(s: Step) -> bool:
        if s.kind is StepKind.MESSAGE:
            raise ValueError("a message")
        return True

    contract = never(step.where(no_messages) & step.tool("send_email"))
    assert contract.monitor().kinds is None
    run = [Step(index=0, kind=StepKind.MESSAGE, agent="user", content="hi")]
    with pytest.raises(ContractError, match="a message"):
        check_steps(run, contract)
    later = never(step.tool("send_email") & step.where(no_messages))   # only tool steps reach it
    assert later.monitor().kinds == frozenset({StepKind.TOOL})
    assert check_steps(run, later).ok
