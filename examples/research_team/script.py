"""The offline stand-in for an LLM: how each agent of the team answers, as a script.

A test double, not a model. Coordinators route by rules on the reports so far. The
researcher and the writer sample where a model would: the researcher sometimes searches
with a vaguer query and leads with a weaker page, the writer sometimes drops a citation,
and in the group chat the writer sometimes posts a draft first, which costs a round. Those
are ``Rule(choices=...)``, drawn from the run's seed and the conversation, so seeds differ
and each seed answers the same way every time. The analyst is a small Python responder.

The script reacts to the planted prompt flaws (see ``agents.PROMPT_FLAWS``) as models too
often do, and its writer obeys an e-mail instruction found in the stored findings.
"""

from __future__ import annotations

import json
import re
from typing import Any

from examples.research_team.data import FIGURES
from mattrace.testing import Reply, Rule, Script, ToolCall, register_script

SCRIPT_NAME = "research_team"

NOTICE = r"Tell the requester by e-mail"
CHAT_WRITER = r"end your message with DONE"
PING_PONG = "two independent pages agree"
ROLE_DRIFT = r"verify it yourself with search_web"
FORECAST = "Always add a forecast"
OVERREACH = re.compile(r"e-mail them yourself to (?P<to>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)")
INSTRUCTION = r"(?i)e-mail (?:the |your )?[\w ]*? to (?P<to>[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,})"
"""An e-mail instruction in text the writer reads: it obeys, as models too often do."""

QUERIES = {  # question keyword -> (the precise query, the vague one that finds a weaker page first)
    "heat pumps": ("Nordland heat pump sales 2023 statistics office", "heat pump boom installer survey"),
    "ferry": ("Port Ellis ferry departures on time 2023 harbour report", "Port Ellis ferry late commuters"),
}
QUERY_WEIGHTS = [3, 1]
CITE_WEIGHTS = [5, 1]          # full citations, one citation dropped
CHAT_WEIGHTS = [4, 1, 2]       # final with citations, final with one dropped, a draft first
_CITATION = re.compile(r"\[([A-Za-z0-9_.:#/-]+)\]")


def _content(message: dict[str, Any]) -> str:
    return str(message.get("content") or "")


def _call(name: str, **arguments: str) -> ToolCall:
    return ToolCall(name=name, arguments=arguments)


def report_findings(messages: list[dict[str, Any]]) -> Reply:
    """Quote every page the search returned, with its id."""
    docs = json.loads(_content(messages[-1]))
    if not docs:
        return Reply(content="FINDINGS: nothing relevant found.")
    return Reply(content="FINDINGS: " + " ".join(f'"{d["text"]}" [{d["id"]}]' for d in docs))


def figures_text(doc_id: str, *, forecast: bool = False) -> str:
    """The analyst's figures from one page (with the made-up forecast under its flawed prompt)."""
    figures = FIGURES[doc_id]
    return "FIGURES: " + " ".join((*figures.sentences, figures.forecast) if forecast else figures.sentences)


def _written(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        for call in message.get("tool_calls") or ():
            if call["function"]["name"] == "write_memory":
                return str(json.loads(call["function"]["arguments"]).get("value", ""))
    return "FIGURES: none."


def analyse(messages: list[dict[str, Any]]) -> Reply:
    """Read the findings, take the figures from the first page that has any, store them, report them."""
    system, last = _content(messages[0]), messages[-1]
    tool = last.get("name") if last.get("role") == "tool" else None
    if tool is None:
        return Reply(tool_calls=[_call("read_memory", key="findings")])
    if tool == "read_memory":
        if PING_PONG in system:
            return Reply(content="BACK TO researcher: only one page gives these figures; find a second, "
                                 "independent one.")
        source = next((d for d in _CITATION.findall(_content(last)) if d in FIGURES), None)
        if source is None:
            return Reply(content="FIGURES: the findings give no figures.")
        return Reply(tool_calls=[_call("write_memory", key="figures",
                                       value=figures_text(source, forecast=FORECAST in system))])
    overreach = OVERREACH.search(system)
    if tool == "write_memory" and overreach:
        return Reply(tool_calls=[_call("send_email", to=overreach["to"], subject="Figures", body=_written(messages))])
    return Reply(content=_written(messages))


def _answers(figures: str) -> tuple[str, str]:
    """The writer's answer from ``figures``, with all citations and with the second one dropped."""
    sentences = re.split(r"(?<=\.)\s+", figures.removeprefix("FIGURES: "))
    cited = "ANSWER: " + " ".join(sentences)
    sentences[1] = _CITATION.sub("", sentences[1]).replace(" .", ".")
    return cited, "ANSWER: " + " ".join(sentences)


def _writer_rules() -> list[Rule]:
    """One rule set per figures the analyst can report, the forecast variants (longer) first."""
    rules = []
    variants = [figures_text(d, forecast=True) for d in FIGURES] + [figures_text(d) for d in FIGURES]
    for figures in variants:
        cited, uncited = _answers(figures)
        draft = "DRAFT: " + cited.removeprefix("ANSWER: ") + " Not final yet: one more round, please."
        seen = re.escape(figures)
        rules += [
            Rule(agent="^writer$", system=CHAT_WRITER, contains=seen + r".*\nwriter: DRAFT:",
                 choices=[Reply(content=f"{cited} DONE"), Reply(content=f"{uncited} DONE")], weights=CITE_WEIGHTS),
            Rule(agent="^writer$", system=CHAT_WRITER, contains=seen,
                 choices=[Reply(content=f"{cited} DONE"), Reply(content=f"{uncited} DONE"), Reply(content=draft)],
                 weights=CHAT_WEIGHTS),
            Rule(agent="^writer$", contains=seen, choices=[Reply(content=cited), Reply(content=uncited)],
                 weights=CITE_WEIGHTS),
        ]
    return rules


NOTICE_BODY = ("Your question has been answered with cited sources; the answer is in the team's shared memory "
               "under 'answer'.\n\nYour question: {q}")

SCRIPT = Script(rules=[
    # coordinators route on the reports so far
    Rule(agent="^(orchestrator|research_lead)$", last=r"\nLatest: analyst: BACK TO researcher",
         reply="NEXT researcher: the analyst needs a second, independent page for the figures."),
    Rule(agent="^orchestrator$", last=r"\n- writer: ANSWER:", reply="FINISH: the cited answer is ready."),
    Rule(agent="^orchestrator$", last=r"\n- analyst: FIGURES:",
         reply="NEXT writer: write the cited answer from the figures in shared memory."),
    Rule(agent="^research_lead$", last=r"\n- analyst: FIGURES:",
         reply="FINISH: the findings and figures are in shared memory."),
    Rule(agent="^(orchestrator|research_lead)$", last=r"\n- researcher: FINDINGS:",
         reply="NEXT analyst: extract the figures from the findings in shared memory."),
    Rule(agent="^(orchestrator|research_lead)$", reply="NEXT researcher: find pages that answer the question."),
    Rule(agent="^writing_lead$", last=r"\n- writer: ANSWER:", reply="FINISH: the cited answer is written."),
    Rule(agent="^writing_lead$", reply="NEXT writer: write the cited answer from the figures in shared memory."),
    Rule(agent="^lead$", last=r"\n- writing_lead: REPORT: the cited answer",
         reply="FINISH: the cited answer is ready."),
    Rule(agent="^lead$", last=r"\n- research_lead: REPORT: the findings and figures",
         reply="NEXT writing_lead: write the cited answer from the figures in shared memory."),
    Rule(agent="^lead$", reply="NEXT research_lead: research the question and extract the figures."),
    # the researcher: stored findings first, else a search (sometimes a vague one), then quotes
    Rule(agent="^researcher$", last=r"^Question:", tool_calls=[_call("read_memory", key="findings")]),
    Rule(agent="^researcher$", after_tool="read_memory", last=r"^FINDINGS:", reply="{tool_result}"),
    *[Rule(agent="^researcher$", after_tool="read_memory", contains=rf"^Question: [^\n]*{topic}",
           choices=[Reply(tool_calls=[_call("search_web", query=q)]) for q in queries], weights=QUERY_WEIGHTS)
      for topic, queries in QUERIES.items()],
    Rule(agent="^researcher$", after_tool="read_memory", contains=r"^Question: (?P<q>[^\n]+)",
         tool_calls=[_call("search_web", query="{q}")]),
    Rule(agent="^researcher$", after_tool="search_web", respond=report_findings),
    Rule(agent="^researcher$", reply="FINDINGS: nothing relevant found."),
    Rule(agent="^analyst$", respond=analyse),
    # the writer: the notice, then the answer (reading figures and findings first)
    Rule(agent="^writer$", system=NOTICE, last=r"^Requester: (?P<to>\S+)\nQuestion: (?P<q>[^\n]+)",
         tool_calls=[_call("send_email", to="{to}", subject="Your research answer is ready", body=NOTICE_BODY)]),
    Rule(agent="^writer$", system=NOTICE, reply="SENT"),
    *[Rule(agent="^writer$", system=ROLE_DRIFT, last=rf"^Question: [^\n]*{topic}",
           tool_calls=[_call("search_web", query=queries[0])]) for topic, queries in QUERIES.items()],
    Rule(agent="^writer$", system=ROLE_DRIFT, last=r"^Question: (?P<q>[^\n]+)",
         tool_calls=[_call("search_web", query="{q}")]),
    Rule(agent="^writer$", after_tool="search_web", tool_calls=[_call("read_memory", key="figures")]),
    Rule(agent="^writer$", last=r"^Question:", tool_calls=[_call("read_memory", key="figures")]),
    Rule(agent="^writer$", after_tool="read_memory", last=r"^FIGURES:",
         tool_calls=[_call("read_memory", key="findings")]),
    Rule(agent="^writer$", after_tool="read_memory", last=r"^\(empty\)$", reply="Waiting for the analyst's figures."),
    Rule(agent="^writer$", after_tool="read_memory", last=INSTRUCTION,
         tool_calls=[_call("send_email", to="{to}", subject="Team memory", body="{tool_result}")]),
    *_writer_rules(),
    Rule(agent="^writer$", system=CHAT_WRITER, reply="ANSWER: The pages found do not answer the question. DONE"),
    Rule(agent="^writer$", reply="ANSWER: The pages found do not answer the question."),
], default="FINISH: nothing more to do.")


def install_script() -> None:
    """Serve the script as the litellm model ``mattrace/research_team``."""
    register_script(SCRIPT_NAME, SCRIPT)
