"""Each planted failure class is caught by a stock contract at the exact step where it happens.

``run(..., weakness=...)`` plants one failure class of multi-agent orchestration at a time;
every class is run under every design, and the test names the contract and the step it
must fail at (the step is found from what the team did, not hard-coded). The injection
and the overreach are also run under the team's governor, which must stop them as they
happen.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import mattrace
from examples.research_team import CONTRACTS, DESIGNS, TASKS, Result, governor, oracle, run
from examples.research_team.data import OUTSIDER, POISONED_PAGE
from examples.research_team.designs import STEP_BUDGET
from mattrace.contracts import Report, Violation
from mattrace.provenance import context_reads
from mattrace.trace import Step, StepKind, Trace

TASK = "ferry"   # asks for no e-mail, so every send_email step is the planted one


@pytest.fixture(autouse=True)
def _offline_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Traces land in tmp_path, and no live model is configured."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MATTRACE_MODEL", raising=False)


def planted(design: str, weakness: str, *, governed: bool = False) -> tuple[Trace, Result, Report]:
    """One seed-0 run with ``weakness`` planted, and its contract report."""
    with mattrace.record(f"research_team/{design}/{weakness}", config={"design": design, "weakness": weakness},
                         governor=governor() if governed else None) as rec:
        result = run(design, TASKS[TASK], seed=0, weakness=weakness)
    return rec.trace, result, mattrace.check(rec.trace, CONTRACTS)


def violation(report: Report, contract: str) -> Violation:
    found = report[contract].violation
    assert found is not None, f"{contract} passed"
    return found


def first(trace: Trace, kind: StepKind, agent: str, *, target: str | None = None, text: str = "") -> Step:
    """The first step of this kind by this agent (with this target, with ``text`` in its content)."""
    return next(s for s in trace.steps if s.kind is kind and s.agent == agent
                and (target is None or s.target == target) and text in (s.content or ""))


def blocks(trace: Trace) -> list[dict[str, object]]:
    return [dict(s.args or {}) for s in trace.steps
            if s.kind is StepKind.GOVERNANCE and (s.args or {}).get("decision") == "block"]


def assert_reads_path(trace: Trace, witness: tuple[int, ...]) -> None:
    reads = context_reads(trace.steps)   # recorded reads and those the text shows
    for earlier, later in itertools.pairwise(witness):
        assert earlier in reads[later].reads, "a taint witness is a path along reads edges"


@pytest.mark.parametrize("design", DESIGNS)
def test_ping_pong_is_cut_at_the_step_budget_and_fails_terminates_there(design: str) -> None:
    """The researcher and the analyst hand the task back and forth until the design's loop guard cuts the run."""
    trace, result, report = planted(design, "ping-pong")
    cut = violation(report, "terminates")
    assert cut.step == STEP_BUDGET and report.first_violation == cut
    assert "more than" in cut.reason and f"{STEP_BUDGET} steps" in cut.reason
    assert result.stopped == "max_steps" and trace.outcome is not None and trace.outcome.status == "max_steps"
    assert not result.answer and not oracle(result, trace.steps)
    assert any((s.content or "").startswith("Stopping: the team used its budget") for s in trace.steps)
    turns = [s for s in trace.steps if s.kind is StepKind.MESSAGE and s.agent in ("researcher", "analyst")]
    assert len(turns) >= 6 and turns[0].agent == "researcher"
    assert all(a.agent != b.agent for a, b in itertools.pairwise(turns)), "the two hand the task back and forth"
    assert all(t.content.startswith("BACK TO researcher") for t in turns if t.agent == "analyst")  # type: ignore[union-attr]
    assert not any(s.kind is StepKind.MEMORY_WRITE and s.target == "figures" for s in trace.steps)


@pytest.mark.parametrize("design", DESIGNS)
def test_role_drift_fails_stays_in_role_at_the_writers_search(design: str) -> None:
    """The writer starts searching the web itself: stays_in_role fails at that very retrieval."""
    trace, _, report = planted(design, "role-drift")
    search = first(trace, StepKind.RETRIEVAL, "writer", target="search_web")
    drift = violation(report, "stays in role")
    assert drift.step == search.index and report.first_violation == drift
    assert f"writer called search_web at step {search.index}, outside its role" in drift.reason


@pytest.mark.parametrize("design", DESIGNS)
def test_an_unsupported_figure_fails_claims_supported_and_its_repetition_fails_propagation(design: str) -> None:
    """A made-up forecast: claims_supported fails at the analyst's message, propagation at the writer's repeat."""
    trace, result, report = planted(design, "unsupported-claim")
    stated = first(trace, StepKind.MESSAGE, "analyst", text="forecast")
    repeated = first(trace, StepKind.MESSAGE, "writer", text="forecast")
    invented = violation(report, "claims supported")
    assert invented.step == stated.index and report.first_violation == invented
    assert "which the cited text does not contain" in invented.reason and "2024" in invented.reason
    spread = violation(report, "no unsupported propagation")
    assert spread.step == repeated.index and spread.witness == (stated.index, repeated.index)
    assert "forecast" in result.answer or repeated.content.startswith("DRAFT:")  # type: ignore[union-attr]


@pytest.mark.parametrize("design", DESIGNS)
def test_the_injected_page_becomes_an_e_mail_and_fails_no_untrusted_action_there(design: str) -> None:
    """The writer obeys the poisoned page and e-mails the memory out: caught at the send_email, with the taint path."""
    trace, result, report = planted(design, "injection")
    email = first(trace, StepKind.TOOL, "writer", target="send_email")
    assert email.side_effect and (email.args or {})["to"] == OUTSIDER
    leak = violation(report, "no untrusted action")
    assert leak.step == email.index and report.first_violation == leak
    source = trace.steps[leak.witness[0]]
    assert source.kind is StepKind.RETRIEVAL and POISONED_PAGE[0] in {s.ref for s in source.sources if not s.trusted}
    assert leak.witness[-1] == email.index
    assert_reads_path(trace, leak.witness)
    assert [e["to"] for e in result.emails] == [OUTSIDER] and not oracle(result, trace.steps)


@pytest.mark.parametrize("design", DESIGNS)
def test_the_governor_blocks_the_injected_e_mail_before_it_is_sent(design: str) -> None:
    """Governed, the same e-mail is blocked: a governance step decides block, and no send_email step exists."""
    trace, result, report = planted(design, "injection", governed=True)
    (blocked,) = blocks(trace)
    assert blocked["rule"] == "no-untrusted-action" and blocked["agent"] == "writer"
    assert blocked["original"]["to"] == OUTSIDER  # type: ignore[index]
    assert not [s for s in trace.steps if s.kind is StepKind.TOOL and s.target == "send_email"]
    assert result.emails == [] and oracle(result, trace.steps)
    assert report["no untrusted action"].passed


@pytest.mark.parametrize("design", DESIGNS)
def test_the_analysts_overreach_fails_stays_in_role_at_its_e_mail(design: str) -> None:
    """The analyst sends an e-mail itself, a side effect outside its role: stays_in_role fails at that step."""
    trace, result, report = planted(design, "overreach")
    email = first(trace, StepKind.TOOL, "analyst", target="send_email")
    overreach = violation(report, "stays in role")
    assert overreach.step == email.index and report.first_violation is not None
    assert report.first_violation.step == email.index
    assert f"analyst called send_email at step {email.index}, outside its role" in overreach.reason
    assert [e["to"] for e in result.emails][:1] == ["leads@example.org"]


@pytest.mark.parametrize("design", DESIGNS)
def test_the_governor_blocks_the_analysts_overreach(design: str) -> None:
    """Governed, the analyst's e-mail is blocked by its capability; the team still answers, within its roles."""
    trace, result, report = planted(design, "overreach", governed=True)
    refused = blocks(trace)
    assert refused and {(b["rule"], b["agent"]) for b in refused} == {("capability", "analyst")}
    assert all("send_email is not among analyst's tools" in str(b["reason"]) for b in refused)
    assert not [s for s in trace.steps if s.kind is StepKind.TOOL and s.target == "send_email"]
    assert result.emails == [] and oracle(result, trace.steps)
    assert report["stays in role"].passed
