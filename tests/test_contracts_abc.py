"""Contract, Monitor and Pred are abstract: incomplete subclasses are refused, complete ones plug into check."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

import mattrace
from mattrace.contracts import Contract, Monitor, Pred, Status, Verdict, always, never, step, within
from mattrace.contracts._predicates import Evaluator
from mattrace.testing import message, tool_call, trace, user
from mattrace.trace import Step, StepKind

RUN = trace(user("hello"), message("assistant", "calling the tool"), tool_call("lookup", {"q": "x"}),
            message("assistant", "done"))


# -- incomplete subclasses ------------------------------------------------------------------


class _NoMonitor(Contract):
    def describe(self) -> str:
        return "no monitor"


class _NoDescribe(Contract):
    def monitor(self) -> Monitor:
        raise AssertionError("never called")


class _NoStep(Monitor):
    __slots__ = ()

    def _finish(self) -> Verdict:
        return self.passed(self.last)


class _NoBind(Pred):
    __slots__ = ()

    def text(self) -> str:
        return "no bind"


class _NoText(Pred):
    __slots__ = ()

    def bind(self) -> Evaluator:
        return lambda s: True


@pytest.mark.parametrize(("cls", "args", "missing"), [
    (_NoMonitor, (), "monitor"),
    (_NoDescribe, (), "describe"),
    (_NoBind, (), "bind"),
    (_NoText, (), "text"),
])
def test_an_incomplete_subclass_cannot_be_instantiated(cls: type, args: tuple[Any, ...], missing: str) -> None:
    """Instantiating a subclass that lacks a required method raises TypeError naming that method."""
    with pytest.raises(TypeError, match=rf"abstract .*\b{missing}\b"):
        cls(*args)


def test_a_monitor_without_step_cannot_be_instantiated() -> None:
    """A Monitor subclass that only overrides the optional _finish hook is refused, naming _step."""
    with pytest.raises(TypeError, match=r"abstract .*\b_step\b"):
        _NoStep(always(step.any()))  # type: ignore[abstract]


@pytest.mark.parametrize(("cls", "required"), [
    (Contract, {"describe", "monitor"}),
    (Monitor, {"_step"}),
    (Pred, {"bind", "text"}),
])
def test_the_bases_list_exactly_their_required_methods(cls: type, required: set[str]) -> None:
    """The base classes are abstract in exactly their required methods; the rest are hooks with defaults."""
    assert cls.__abstractmethods__ == frozenset(required)  # type: ignore[attr-defined]


# -- a complete user-defined contract, monitor and predicate ---------------------------------


class Calls(Pred):
    """A user predicate: a tool call to ``name``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def bind(self) -> Evaluator:
        name = self.name
        return lambda s: s.kind is StepKind.TOOL and s.target == name

    def text(self) -> str:
        return f"calls {self.name}"


class AtLeastMessages(Contract):
    """A user contract: the run has at least ``n`` messages (can only fail at the end)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def describe(self) -> str:
        return f"at least {self.n} messages"

    def monitor(self) -> Monitor:
        return _AtLeastMonitor(self)


class _AtLeastMonitor(Monitor):
    __slots__ = ("n", "seen")

    def __init__(self, contract: AtLeastMessages) -> None:
        super().__init__(contract)
        self.n = contract.n
        self.seen = 0

    def _step(self, s: Step) -> Verdict | None:
        if s.kind is StepKind.MESSAGE:
            self.seen += 1
        return self.passed(s.index) if self.seen >= self.n else None

    def _finish(self) -> Verdict:
        return self.failed(self.last, f"only {self.seen} messages; {self.at_end()}")


class NoToolCalls(Contract):
    """A user contract relying on the default _finish: fails at the first tool call."""

    def describe(self) -> str:
        return "no tool calls"

    def monitor(self) -> Monitor:
        return _NoToolMonitor(self)


class _NoToolMonitor(Monitor):
    __slots__ = ()

    def _step(self, s: Step) -> Verdict | None:
        return self.failed(s.index, f"step {s.index} calls a tool") if s.kind is StepKind.TOOL else None


def test_user_contracts_and_predicates_work_with_check() -> None:
    """Minimal complete subclasses are checked like the stock ones: verdicts, steps and names."""
    report = mattrace.check(RUN, [
        AtLeastMessages(2).named("chatty"),
        AtLeastMessages(5),
        NoToolCalls().severity("quality"),
        never(Calls("lookup")).named("no lookups"),
        always(~Calls("delete")),
    ])
    by_name = {v.contract: v for v in report.verdicts}
    assert by_name["chatty"].status is Status.PASS and by_name["chatty"].step == 1
    assert by_name["at least 5 messages"].status is Status.FAIL
    assert by_name["no tool calls"].status is Status.FAIL and by_name["no tool calls"].step == 2
    assert by_name["no tool calls"].severity == "quality"
    assert by_name["no lookups"].violation is not None and by_name["no lookups"].violation.step == 2
    assert by_name["always(not calls delete)"].status is Status.PASS
    assert str(Calls("x") & step.any()) == "calls x and any step"


def test_a_user_monitor_without_finish_passes_an_unsettled_run() -> None:
    """The default _finish passes a run the monitor never settled."""
    monitor = NoToolCalls().monitor()
    assert monitor.observe(RUN.steps[0]) is None
    assert monitor.finish().status is Status.PASS


def test_monitors_deep_copy_and_contracts_pickle() -> None:
    """A monitor copies independently mid-run (as the governance guard does) and a contract pickles."""
    monitor = AtLeastMessages(3).monitor()
    for s in RUN.steps[:2]:
        monitor.observe(s)
    trial = copy.deepcopy(monitor)
    assert trial.observe(RUN.steps[3]) is not None
    assert monitor.status is Status.PENDING
    stock = within(steps=3).named("short")
    for contract in (stock, AtLeastMessages(2)):
        restored = pickle.loads(pickle.dumps(contract))
        assert type(restored) is type(contract) and restored.name == contract.name
        assert mattrace.check(RUN, restored).verdicts[0].status is mattrace.check(RUN, contract).verdicts[0].status
