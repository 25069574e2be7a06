"""The research team runs offline under every design, keeps its contracts, varies by seed and replays.

A comparison of designs is only worth something if each design really solves the task
when nothing is planted, if the seed really changes what the team does (and nothing else
does), and if any run can be reproduced from its cassette; these tests hold the example
to that.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mattrace
from examples.research_team import CONTRACTS, DESIGNS, TASKS, Result, governor, oracle, run
from examples.research_team.app import run_recorded
from examples.research_team.designs import STEP_BUDGET
from examples.research_team.tools import close_workspace, open_workspace, send_email
from mattrace.replay import replay_trace
from mattrace.trace import StepKind, Trace

EXPECTED_AGENTS = {
    "central": {"user", "orchestrator", "researcher", "analyst", "writer"},
    "roundrobin": {"user", "moderator", "researcher", "analyst", "writer"},
    "hierarchical": {"user", "lead", "research_lead", "writing_lead", "researcher", "analyst", "writer"},
}


@pytest.fixture(autouse=True)
def _offline_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Traces land in tmp_path, and no live model is configured."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MATTRACE_MODEL", raising=False)


def record_run(design: str, task: str, seed: int = 0, **options: object) -> tuple[Trace, Result]:
    """One run of ``task`` under ``design``, recorded; the config leaves the seed out, so only ``run`` sees it."""
    with mattrace.record(f"research_team/{design}/{task}", config={"design": design, "task": task},
                         **options) as rec:  # type: ignore[arg-type]
        result = run(design, TASKS[task], seed=seed)
    return rec.trace, result


def sent(trace: Trace) -> list[str]:
    """Recipients of the e-mails the trace says were sent."""
    return [str((s.args or {})["to"]) for s in trace.steps if s.kind is StepKind.TOOL and s.target == "send_email"]


def behaviour(trace: Trace) -> tuple[tuple[str, str, str | None, str | None], ...]:
    """What the team did, leaving out the prompts (which carry the seed): every non-model step."""
    return tuple((s.kind.value, s.agent, s.target, s.content) for s in trace.steps if s.kind is not StepKind.LLM)


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("design", DESIGNS)
def test_each_design_answers_each_task_within_every_contract(design: str, task: str) -> None:
    """Seed 0, nothing planted: a cited answer, every contract kept, the oracle satisfied, the team's agents at work."""
    trace, result = record_run(design, task)
    report = mattrace.check(trace, CONTRACTS)
    assert report.ok, [v.reason for v in report.violations]
    assert oracle(result, trace.steps)
    assert {s.agent for s in trace.steps} >= EXPECTED_AGENTS[design]
    retrieved = {d["id"] for s in trace.steps if s.kind is StepKind.RETRIEVAL for d in s.result}
    assert result.citations and set(result.citations) <= retrieved
    assert result.stopped is None and trace.outcome is not None and trace.outcome.status == "success"
    assert len(trace.steps) <= STEP_BUDGET
    claims = [s for s in trace.steps if s.kind is StepKind.MESSAGE and s.attrs.get("claims")]
    assert {s.agent for s in claims} == {"analyst", "writer"}, "the figures and the answer carry marked claims"
    expected = ["lena@example.org"] if "E-mail" in TASKS[task] else []
    assert sent(trace) == expected and [e["to"] for e in result.emails] == expected
    memory_writes = {s.target for s in trace.steps if s.kind is StepKind.MEMORY_WRITE}
    assert memory_writes == {"findings", "figures", "answer"}


@pytest.mark.parametrize("design", DESIGNS)
def test_the_same_seed_repeats_a_run_and_other_seeds_change_what_the_team_does(design: str) -> None:
    """Same seed, same fingerprint; across seeds the team's actions (not only its prompts) differ."""
    first, _ = record_run(design, "heat-pumps", seed=3)
    again, _ = record_run(design, "heat-pumps", seed=3)
    assert first.fingerprint() == again.fingerprint()
    runs = [record_run(design, "heat-pumps", seed=seed)[0] for seed in range(6)]
    assert len({t.fingerprint() for t in runs}) == len(runs)
    assert len({behaviour(t) for t in runs}) > 1, "the seeds never changed a search, a source or an answer"


@pytest.mark.parametrize("design", DESIGNS)
def test_a_recorded_run_replays_identically_from_its_cassette(design: str, tmp_path: Path) -> None:
    """A run recorded with an entry point re-runs from its cassette alone, to the same fingerprint."""
    entry = {"target": "examples.research_team.app:run_recorded", "args": [design, "heat-pumps"],
             "kwargs": {"seed": 1}}
    with mattrace.record(f"research_team/{design}", config={"design": design, "seed": 1}, dir=tmp_path,
                         entrypoint=entry) as rec:
        run_recorded(design, "heat-pumps", seed=1)
    assert rec.trace.outcome is not None and rec.trace.outcome.status == "success"
    replayed = replay_trace(rec.path)
    assert replayed.error is None and replayed.mismatches == [] and replayed.unused == []
    assert replayed.identical, replayed.divergence and replayed.divergence.reason
    assert replayed.replayed.fingerprint() == rec.trace.fingerprint()


@pytest.mark.parametrize("design", DESIGNS)
def test_the_governor_lets_an_ordinary_run_through(design: str) -> None:
    """Governed, nothing is blocked: the requester's notice goes out and every contract holds."""
    trace, result = record_run(design, "heat-pumps", governor=governor())
    decisions = [s.args["decision"] for s in trace.steps if s.kind is StepKind.GOVERNANCE]  # type: ignore[index]
    assert decisions and set(decisions) == {"allow"}
    assert sent(trace) == ["lena@example.org"] and oracle(result, trace.steps)
    assert mattrace.check(trace, CONTRACTS).ok


@pytest.mark.parametrize(("agent", "to", "rule"), [
    ("writer", "someone@outside.example", "example-org-only"),
    ("analyst", "lena@example.org", "capability"),
    ("intruder", "lena@example.org", "capability"),
])
def test_the_governor_keeps_e_mail_to_the_writer_and_example_org_and_fails_closed(agent: str, to: str,
                                                                                   rule: str) -> None:
    """Only the writer e-mails, only to example.org; an agent without a capability can do nothing."""
    state, token = open_workspace()
    try:
        with mattrace.record("governed-mail", cassette=False, governor=governor()) as rec, mattrace.agent(agent):
            answer = send_email(to=to, subject="s", body="b")
            allowed = send_email(to="lena@example.org", subject="s", body="b") if agent == "writer" else None
    finally:
        close_workspace(token)
    blocked = [s for s in rec.trace.steps if s.kind is StepKind.GOVERNANCE and s.args["decision"] == "block"]  # type: ignore[index]
    assert answer["blocked"] is True and [s.args["rule"] for s in blocked] == [rule]  # type: ignore[index]
    assert state.outbox == ([{"to": "lena@example.org", "subject": "s", "body": "b"}] if allowed else [])


def test_run_refuses_an_unknown_design_or_weakness() -> None:
    """A typo in a design or weakness name is an error, not a silent clean run."""
    with pytest.raises(ValueError, match="unknown design 'star'"):
        run("star", TASKS["ferry"])
    with pytest.raises(ValueError, match="unknown weakness 'typo'"):
        run("central", TASKS["ferry"], weakness="typo")


def test_the_oracle_wants_a_citation_of_a_retrieved_page_and_no_outside_e_mail() -> None:
    """An uncited answer, a citation of a page never retrieved, or an e-mail outside example.org fail the task."""
    trace, result = record_run("central", "ferry")
    assert oracle(result, trace.steps)
    uncited = Result(**{**vars(result), "answer": "About 92% left on time."})
    invented = Result(**{**vars(result), "answer": "92% left on time [harbour-report-2024]."})
    assert not oracle(uncited, trace.steps) and not oracle(invented, trace.steps)
    leak = trace.steps[-1].model_copy(update={"kind": StepKind.TOOL, "target": "send_email",
                                              "args": {"to": "x@outside.example"}})
    assert not oracle(result, [*trace.steps, leak])
