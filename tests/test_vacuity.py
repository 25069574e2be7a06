"""Vacuous passes: a contract that never applied to a trace passes, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from mattrace.contracts import (
    Report,
    Status,
    always,
    at_most,
    check,
    confirmed_before,
    each,
    eventually,
    load_contracts,
    max_calls,
    never,
    no_untrusted_action,
    once,
    precedes,
    responds,
    stays_in_role,
    step,
    terminates,
    within,
)
from mattrace.testing import end, llm, message, tool_call, trace, user

# the user asks, the booker is offered three tools and books a flight
BOOKING = trace(
    user("book me a flight to Oslo, yes"),                                       # 0
    llm("booker", prompt="book", tool_calls=["book_flight"]),                    # 1
    tool_call("book_flight", {"to": "OSL"}, agent="booker", side_effect=True),   # 2
    message("booker", "booked", to="user"),                                      # 3
    end())


def _verdict(t: object, contract: object) -> tuple[Status, str | None]:
    report = check(t, [contract])  # type: ignore[arg-type]
    (v,) = report.verdicts
    return v.status, v.vacuous


def test_a_misspelt_tool_passes_vacuously_and_suggests_the_tool_the_trace_has() -> None:
    """never(step.tool("book_fligth")) passes, vacuously, and names the closest known tool."""
    status, why = _verdict(BOOKING, never(step.tool("book_fligth")))
    assert status is Status.PASS
    assert why == "tool 'book_fligth' never appears in the trace; did you mean 'book_flight'?"


def test_a_tool_the_trace_knows_but_never_called_is_not_vacuous() -> None:
    """A tool offered to the model but never called: not calling it is what never() asks."""
    offered = BOOKING.model_copy(update={"steps": [
        s.model_copy(update={"args": {**(s.args or {}), "tools": ["book_flight", "delete_all"]}})
        if s.kind == "llm" else s for s in BOOKING.steps]})
    assert _verdict(offered, never(step.tool("delete_all"))) == (Status.PASS, None)
    # the same contract on a trace that never heard of delete_all: the name is unknown there
    assert _verdict(BOOKING, never(step.tool("delete_all")))[1] == "tool 'delete_all' never appears in the trace"


def test_a_tool_named_by_a_governance_or_fault_step_is_known() -> None:
    """A call the governor blocked never became a tool step, yet the trace names its tool."""
    blocked = trace(user("hi"), message("governor", "blocked", to="booker"), end())
    steps = list(blocked.steps)
    steps[1] = steps[1].model_copy(update={"kind": "governance", "target": "tool:delete_all"})
    governed = blocked.model_copy(update={"steps": steps})
    assert _verdict(governed, never(step.tool("delete_all"))) == (Status.PASS, None)


def test_an_agent_that_never_acts_makes_a_contract_vacuous() -> None:
    """An agent name that appears nowhere (not as actor, not as recipient) is a likely typo."""
    status, why = _verdict(BOOKING, always(step.agent("boker") >> step.kind("llm", "tool", "message")))
    assert status is Status.PASS and why == "agent 'boker' never appears in the trace; did you mean 'booker'?"
    assert _verdict(BOOKING, stays_in_role({"bokker": ["book_flight"]}))[1] == (
        "agent 'bokker' never appears in the trace; did you mean 'booker'?")
    assert _verdict(BOOKING, stays_in_role({"booker": ["book_flight"]})) == (Status.PASS, None)


def test_a_glob_and_a_regex_that_match_nothing_are_vacuous_without_a_suggestion() -> None:
    """Patterns get no did-you-mean; they are reported as matching no name of the trace."""
    assert _verdict(BOOKING, at_most(1, step.tool("cancel_*")))[1] == "'cancel_*' matches no tool in the trace"
    assert _verdict(BOOKING, at_most(5, step.tool("book_*")))[1] is None


def test_one_misspelt_member_of_a_set_of_names_is_reported() -> None:
    """A set of tools with one typo: the typo is named, the good member is not."""
    why = _verdict(BOOKING, never(step.tool({"book_flight", "cancel_fligth"}) & step.arg("to").eq("XXX")))[1]
    assert why == "tool 'cancel_fligth' never appears in the trace"


def test_an_implication_whose_if_part_never_fired_is_vacuous() -> None:
    """always(a >> b) with no step matching a passes vacuously; with one, it is a real pass."""
    contract = always(step.tool("book_flight") >> step.arg("to").eq("OSL"))
    assert _verdict(BOOKING, contract) == (Status.PASS, None)
    no_booking = trace(user("hi"), llm("booker", prompt="x", tool_calls=["book_flight"]), end())
    assert _verdict(no_booking, contract) == (
        Status.PASS, "no step matched `tool book_flight`, so the implication never applied")
    # confirmed_before is such an implication: no call of the tool, nothing to confirm
    assert _verdict(no_booking, confirmed_before("book_flight"))[1] == (
        "no step matched `tool book_flight`, so the implication never applied")
    assert _verdict(BOOKING, confirmed_before("book_flight")) == (Status.PASS, None)


def test_responds_whose_trigger_never_fires_is_vacuous() -> None:
    """responds(a, b) is about the a steps: none, vacuous; one answered, a real pass."""
    contract = responds(step.tool("book_flight"), step.message(agent="booker"))
    assert _verdict(BOOKING, contract) == (Status.PASS, None)
    quiet = trace(user("hi"), llm("booker", prompt="x", tool_calls=["book_flight"]), end())
    assert _verdict(quiet, contract) == (
        Status.PASS, "no step matched `tool book_flight`, so nothing needed a response")


def test_each_and_precedes_are_vacuous_when_their_step_never_happens() -> None:
    """each(p) with no p step, and precedes(a, b) with neither a nor b, never applied."""
    quiet = trace(user("hi"), llm("booker", prompt="x", tool_calls=["book_flight"]), end())
    assert _verdict(quiet, each(step.tool("book_flight")).must(once(step.kind("llm"))))[1] == (
        "no step matched `tool book_flight`, so nothing had to meet it")
    assert _verdict(quiet, precedes(step.message(agent="user"), step.tool("book_flight")))[0] is Status.PASS
    nobody = trace(llm("booker", prompt="x", tool_calls=["book_flight"]), end())
    assert _verdict(nobody, precedes(step.kind("message"), step.tool("book_flight")))[1] == (
        "no step matched `tool book_flight`, so nothing needed `kind message` first")
    # settled by its enabling step: armed, not vacuous
    assert _verdict(BOOKING, precedes(step.message(agent="user"), step.tool("book_flight"))) == (Status.PASS, None)


def test_contracts_without_names_or_triggers_are_never_vacuous() -> None:
    """Budgets, termination and the taint check say something about every run."""
    for contract in (terminates(), within(steps=10), no_untrusted_action(), never(step.side_effect() & step.error()),
                     eventually(step.tool("book_flight"))):
        assert _verdict(BOOKING, contract) == (Status.PASS, None), contract


def test_a_failure_is_a_failure_whatever_its_names() -> None:
    """Vacuity only qualifies a pass: a failed contract has no vacuous reason."""
    report = check(BOOKING, [max_calls("book_flight", 0), eventually(step.tool("book_fligth"))])
    assert [(v.status, v.vacuous) for v in report.verdicts] == [(Status.FAIL, None), (Status.FAIL, None)]


def test_strict_turns_a_vacuous_pass_into_a_failure_at_no_step() -> None:
    """Report.strict(): the vacuous pass fails with its reason; real passes stay passes."""
    report = check(BOOKING, [never(step.tool("book_fligth")), never(step.tool("book_flight") & step.error())])
    assert report.ok and [v.contract for v in report.vacuous] == ["never(tool book_fligth)"]
    strict = report.strict()
    assert isinstance(strict, Report) and not strict.ok
    (violation,) = strict.violations
    assert violation.step is None and violation.reason.startswith("vacuous: tool 'book_fligth' never appears")
    assert strict.verdicts[1].status is Status.PASS


def test_a_contract_file_entry_is_named_by_its_line_with_a_did_you_mean(tmp_path: Path) -> None:
    """tool = "book_fligth" in a contract file: the vacuous reason points at the entry."""
    path = tmp_path / "c.toml"
    path.write_text('# bookings\n\n[[contract]]\nuse = "never"\nname = "no free flights"\n'
                    'step = { tool = "book_fligth", args = { price = 0 } }\n\n'
                    '[[contract]]\nuse = "max_calls"\ntool = "book_flight"\nn = 2\n')
    report = check(BOOKING, load_contracts(path))
    assert report.verdicts[0].vacuous == (
        f"{path}:3: tool 'book_fligth' never appears in the trace; did you mean 'book_flight'?")
    assert report.verdicts[1].vacuous is None


def test_json_output_carries_the_vacuous_reason() -> None:
    """A verdict's JSON has its vacuous reason; the report lists the vacuous contracts."""
    data = check(BOOKING, [never(step.tool("book_fligth"))]).to_json_dict()
    assert data["vacuous"] == ["never(tool book_fligth)"] and data["ok"] is True
    assert data["verdicts"][0]["vacuous"].startswith("tool 'book_fligth' never appears")


def test_vacuity_sees_the_names_after_every_contract_settled() -> None:
    """A contract settled early still learns that the rest of the trace names its tool."""
    t = trace(user("yes"), *[message("booker", f"m{i}", to="user") for i in range(5)],
              tool_call("book_flight", {"to": "OSL"}, agent="booker"), end())
    report = check(t, [precedes(step.message(agent="user"), step.tool("book_flight"))])
    assert report.verdicts[0].step == 0 and report.verdicts[0].vacuous is None


@pytest.mark.parametrize("ticket", ["refund", "shipping"])
def test_the_support_desk_contracts_keep_their_verdicts(ticket: str, tmp_path: Path) -> None:
    """The desk's stock contracts pass on its runs as before; vacuity only annotates passes."""
    import mattrace
    from mattrace.apps.demo.support_desk import TICKETS, handle_ticket
    from mattrace.apps.demo.support_desk.contracts import CONTRACTS

    with mattrace.record(ticket, dir=tmp_path) as rec:
        handle_ticket(TICKETS[ticket])
    report = check(rec.trace, CONTRACTS)
    assert report.ok and report.complete
    # only the refund-amount implication can be vacuous, on a run that issued no refund
    assert {v.contract for v in report.vacuous} <= {"refunds under 1000"}
