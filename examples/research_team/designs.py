"""Three orchestration designs over the same agents and tools.

* ``central``: an orchestrator hands the work to the researcher, analyst and writer in turn;
* ``roundrobin``: the three take turns on a shared transcript until the writer says DONE;
* ``hierarchical``: a lead hands work to a research lead (researcher, analyst) and a
  writing lead (writer), who hand it on.

Every loop is bounded by one :class:`LoopGuard` per run: a cap on hand-offs, and the
run's step budget (the same bound ``terminates`` checks). When the guard trips, every loop
stops and the run is cut off, which is how a coordination collapse ends here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import mattrace
from examples.research_team import agents, tools
from mattrace.contracts import extract_claims

STEP_BUDGET = 80
"""Steps a run may take; no clean run of any design comes near it."""
MAX_HANDOFFS = 40
"""Hand-offs (delegations, chat turns) a run may make, so a run without a recorder is bounded too."""
WORKERS = ("researcher", "analyst", "writer")
COORDINATORS = {"central": ("orchestrator",), "roundrobin": ("moderator",),
                "hierarchical": ("lead", "research_lead", "writing_lead")}
TOP_TASK = "answer the question with cited sources"
BASE_PROMPTS = {"researcher": agents.RESEARCHER, "analyst": agents.ANALYST, "writer": agents.WRITER}


@dataclass
class LoopGuard:
    """The run's bound on coordination: hand-offs, and steps recorded since the run started."""

    max_handoffs: int = MAX_HANDOFFS
    max_steps: int = STEP_BUDGET
    handoffs: int = 0
    tripped: str | None = None
    start: int = field(default_factory=lambda: _recorded())

    def allows(self, coordinator: str) -> bool:
        """Whether another hand-off may happen; the first refusal is said out loud, by ``coordinator``."""
        if self.tripped is None:
            used = _recorded() - self.start
            if self.handoffs >= self.max_handoffs:
                self.tripped = f"{self.handoffs} hand-offs"
            elif used >= self.max_steps:
                self.tripped = f"{used} steps"
            if self.tripped is not None:
                mattrace.message(coordinator, f"Stopping: the team used its budget ({self.tripped}) "
                                              "without finishing.", to="user")
        return self.tripped is None


def _recorded() -> int:
    """Steps recorded so far in the run around us (0 outside a recording: then only hand-offs bound it)."""
    rec = mattrace.active_recorder()
    return rec.next_index if rec is not None else 0


@dataclass
class Team:
    """One run of the team: its question, model, seed, planted weakness, loop guard and answer."""

    question: str
    model: str
    seed: int
    weakness: str | None
    guard: LoopGuard = field(default_factory=LoopGuard)
    answer: str = ""
    final: str = ""

    def ask(self, agent: str, system: str, task: str, *, only: tuple[str, ...] | None = None) -> str:
        """``agent`` works on ``task`` with the shared toolbox (or ``only`` these tools of it)."""
        names = only or tuple(tools.TOOLBOX)
        return agents.run_agent(agent, system, task, model=self.model, seed=self.seed,
                                tools={n: tools.TOOLBOX[n] for n in names},
                                specs=[s for s in tools.TOOLBOX_SPECS if s["function"]["name"] in names])

    def decide(self, coordinator: str, board: str) -> str:
        """A coordinator's routing decision (coordinators use no tools)."""
        return agents.run_agent(coordinator, agents.COORDINATOR, board, model=self.model, seed=self.seed)


def claims_of(text: str) -> list[dict[str, object]] | None:
    """The factual claims of a figures or answer message, for the factuality contracts.

    Only the analyst's figures and the writer's answers are claims about the world; the
    researcher's quotes and the coordinators' routing are not, so they are not marked.
    """
    for prefix in ("FIGURES:", "ANSWER:"):
        if text.startswith(prefix):
            return extract_claims(_body(text, prefix))
    return None


def _body(text: str, prefix: str) -> str:
    """The text after its ``FIGURES:``/``ANSWER:`` label, without the group chat's closing DONE."""
    return text.removeprefix(prefix).strip().removesuffix("DONE").strip()


def worker(team: Team, agent: str, *, receiver: str, chat: bool = False) -> Callable[[str], str]:
    """A member that does its work and reports to ``receiver``, who files what it produced."""
    system = agents.prompt(agent, BASE_PROMPTS[agent], team.weakness)
    if chat:
        system = f"{system} {agents.GROUP_CHAT}" + (f" {agents.FINAL_WORD}" if agent == "writer" else "")

    def work(brief: str) -> str:
        reply = team.ask(agent, system, brief)
        mattrace.message(agent, reply, to="group" if chat else receiver, claims=claims_of(reply))
        with mattrace.agent(receiver):
            if agent == "researcher" and reply.startswith("FINDINGS:"):
                tools.workspace().memory["findings"] = reply
            elif agent == "writer" and reply.startswith("ANSWER:"):
                team.answer = _body(reply, "ANSWER:")
                tools.workspace().memory["answer"] = team.answer
        return reply
    return work


def _board(question: str, task: str, members: dict[str, Callable[[str], str]],
           reports: list[tuple[str, str]]) -> str:
    """What a coordinator sees: the question, its task, its members, every report so far and the latest."""
    lines = [f"Question: {question}", f"Your task: {task}", f"Members: {', '.join(members)}", "Reports so far:"]
    lines += [f"- {who}: {' '.join(text.split())}" for who, text in reports] or ["(none yet)"]
    if reports:
        who, text = reports[-1]
        lines.append(f"Latest: {who}: {' '.join(text.split())[:80]}")
    return "\n".join(lines)


def coordinate(team: Team, coordinator: str, members: dict[str, Callable[[str], str]], task: str) -> str:
    """The routing loop of one coordinator: hand work on until it says FINISH or the guard stops it.

    Returns the coordinator's report.
    """
    reports: list[tuple[str, str]] = []
    while team.guard.allows(coordinator):
        decision = team.decide(coordinator, _board(team.question, task, members, reports))
        move = re.match(r"\s*NEXT\s+(\w+)\s*:?\s*(.*)", decision, re.DOTALL)
        if move is None:
            done = re.match(r"\s*FINISH\s*:?\s*(.*)", decision, re.DOTALL)
            if done is not None:
                return done[1].strip() or "done"
            reports.append((coordinator, f"(unclear decision: {decision.strip()[:80]})"))
            continue
        member, instruction = move[1], move[2].strip()
        if member not in members:
            reports.append((coordinator, f"(there is no member {member!r})"))
            continue
        team.guard.handoffs += 1
        brief = f"Question: {team.question}\nTask from {coordinator}: {instruction}"
        mattrace.delegate(coordinator, member, brief)
        reports.append((member, members[member](brief)))
    return "stopped by the loop guard"


def _sub_lead(team: Team, name: str, members: dict[str, Callable[[str], str]], parent: str) -> Callable[[str], str]:
    """A member that is itself a coordinator: it runs its own routing loop and reports to ``parent``."""
    def lead(brief: str) -> str:
        task = brief.split(f"Task from {parent}: ", 1)[-1]
        report = f"REPORT: {coordinate(team, name, members, task)}"
        mattrace.message(name, report, to=parent)
        return report
    return lead


def central(team: Team) -> str:
    """An orchestrator routes the work among the specialists. Returns the top coordinator."""
    members = {w: worker(team, w, receiver="orchestrator") for w in WORKERS}
    team.final = coordinate(team, "orchestrator", members, TOP_TASK)
    return "orchestrator"


def roundrobin(team: Team) -> str:
    """The specialists take turns on one transcript until the writer's answer ends with DONE."""
    opening = (f"Question: {team.question}\nmoderator: Take turns in this order: researcher, analyst, writer. "
               "The writer ends the final answer with DONE.")
    with mattrace.agent("moderator"):
        mattrace.message("moderator", opening, to="group")
    members = {w: worker(team, w, receiver="moderator", chat=True) for w in WORKERS}
    transcript = [opening]
    turn = 0
    while team.guard.allows("moderator"):
        speaker = WORKERS[turn % len(WORKERS)]
        turn += 1
        team.guard.handoffs += 1
        reply = members[speaker]("\n".join(transcript))
        transcript.append(f"{speaker}: {' '.join(reply.split())}")
        if speaker == "writer" and reply.startswith("ANSWER:") and reply.rstrip().endswith("DONE"):
            team.final = "the writer's answer is final"
            break
    return "moderator"


def hierarchical(team: Team) -> str:
    """A lead hands work to two sub-leads, who hand it to the specialists."""
    research = _sub_lead(team, "research_lead", {w: worker(team, w, receiver="research_lead")
                                                 for w in ("researcher", "analyst")}, "lead")
    writing = _sub_lead(team, "writing_lead", {"writer": worker(team, "writer", receiver="writing_lead")}, "lead")
    team.final = coordinate(team, "lead", {"research_lead": research, "writing_lead": writing}, TOP_TASK)
    return "lead"


DESIGN_RUNNERS: dict[str, Callable[[Team], str]] = {"central": central, "roundrobin": roundrobin,
                                                     "hierarchical": hierarchical}
