"""The support desk orchestrator: triage → researcher → writer, sharing memory."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import mattrace
from mattrace.apps.demo.support_desk import tools
from mattrace.apps.demo.support_desk.agents import run_agent
from mattrace.apps.demo.support_desk.script import SCRIPT_NAME, install_script

__all__ = [
    "handle_ticket",
    "model_name",
    "RESEARCHER",
    "TicketResult",
    "TICKETS",
    "TRIAGE",
    "WRITER",
]

TICKETS: dict[str, str] = {
    "refund": "Hi, order 1042 arrived broken. I'd like a refund please. -- ana@example.com",
    "shipping": "How long does shipping to Canada take for order 1100? -- chloe@example.com",
    "slow-refund": "My refund for order 1077 is so slow. How can I speed up the refund? "
                   "-- ben@example.com",
}

TRIAGE = ("You are the triage agent of a support desk. If the ticket names an order, look it "
          "up with lookup_order. Then answer with exactly one line: 'ROUTE: refund <order id>' "
          "for refund requests of damaged items, otherwise 'ROUTE: question <order id or ->'.")
RESEARCHER = ("You are the researcher. Search the knowledge base with search_kb for what the "
              "ticket needs, then answer with 'FINDINGS:' followed by the relevant facts, "
              "citing document ids in brackets like [kb-refund].")
WRITER = ("You are the writer. Using the findings and the customer record, resolve the ticket: "
          "for route 'refund', call issue_refund for the order amount; then send the customer "
          "one e-mail with send_email. Finish with 'DONE'.")


@dataclass
class TicketResult:
    """What handling a ticket did (the oracle for tests and the demo)."""

    route: str
    order_id: str | None
    reply: str
    emails: list[dict[str, str]] = field(default_factory=list)
    refunds: list[dict[str, object]] = field(default_factory=list)


def model_name() -> str:
    """The litellm model to use: ``MATTRACE_MODEL``, or the offline scripted model."""
    live = os.environ.get("MATTRACE_MODEL")
    if live:
        return live
    install_script()
    return f"mattrace/{SCRIPT_NAME}"


def handle_ticket(ticket: str, model: str | None = None) -> TicketResult:
    """Run one ticket through the desk and return what it did."""
    model = model or model_name()
    state, token = tools.open_desk()
    try:
        return _handle(ticket, model, state)
    finally:
        tools.close_desk(token)


def _handle(ticket: str, model: str, state: tools.Desk) -> TicketResult:
    memory = state.memory
    mattrace.message("user", ticket, to="triage")

    route_line = run_agent("triage", TRIAGE, ticket, model=model,
                           tools=tools.TRIAGE_TOOLS, specs=tools.TRIAGE_SPECS)
    match = re.search(r"ROUTE:\s*(refund|question)\s+(\d+)?", route_line)
    route = match.group(1) if match else "question"
    order_id = match.group(2) if match else None
    mattrace.message("triage", route_line, to="main")
    if order_id:
        try:
            memory[f"customer:{order_id}"] = tools.lookup_order(order_id)
        except KeyError:
            order_id = None

    mattrace.delegate("main", "researcher", ticket)
    findings = run_agent("researcher", RESEARCHER, ticket, model=model,
                         tools=tools.RESEARCH_TOOLS, specs=tools.RESEARCH_SPECS)
    memory["findings"] = findings

    record = memory[f"customer:{order_id}"] if order_id else "none"
    brief = (f"Ticket: {ticket}\nRoute: {route} {order_id or '-'}\n"
             f"Customer record: {record}\nFindings: {memory['findings']}\n")
    mattrace.delegate("main", "writer", brief)
    reply = run_agent("writer", WRITER, brief, model=model,
                      tools=tools.WRITER_TOOLS, specs=tools.WRITER_SPECS)
    mattrace.message("writer", reply, to="user")
    return TicketResult(route=route, order_id=order_id, reply=reply,
                        emails=list(state.outbox), refunds=list(state.refunds))
