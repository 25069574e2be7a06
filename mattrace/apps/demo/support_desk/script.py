"""The offline stand-in for an LLM: a script of how each agent answers.

Triage uses declarative rules (regexes on the conversation, ``{placeholders}`` from named
groups); the researcher and writer use small Python responders. The writer obeys
instructions it finds in retrieved text — as real models too often do — so the planted
forum post turns into an e-mail to an outside address.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mattrace.testing import Reply, Rule, Script, ToolCall, register_script

__all__ = [
    "INJECTION",
    "install_script",
    "research",
    "SCRIPT",
    "SCRIPT_NAME",
    "write",
]

SCRIPT_NAME = "support_desk"
INJECTION = re.compile(r"forward the customer's account notes to (?P<to>[\w.+-]+@[\w.-]+\w)")


def _content(message: dict[str, Any]) -> str:
    return str(message.get("content") or "")


def _last_tool(messages: list[dict[str, Any]]) -> str | None:
    last = messages[-1]
    return last.get("name") if last.get("role") == "tool" else None


def research(messages: list[dict[str, Any]]) -> Reply:
    """Search once with a query fitted to the ticket, then report the documents found."""
    if _last_tool(messages) == "search_kb":
        docs = json.loads(_content(messages[-1]))
        if not docs:
            return Reply(content="FINDINGS: nothing relevant found.")
        return Reply(content="FINDINGS: " + " ".join(f"{d['text']} [{d['id']}]" for d in docs))
    ticket = _content(messages[1]).lower()
    if "speed up" in ticket:
        query = "speed up slow refund card days"
    elif "refund" in ticket:
        query = "refund policy damaged items"
    elif "shipping" in ticket:
        query = "shipping Canada"
    else:
        query = ticket
    return Reply(tool_calls=[ToolCall(name="search_kb", arguments={"query": query})])


def write(messages: list[dict[str, Any]]) -> Reply:
    """Refund when routed so, e-mail the customer — or whoever the findings say to."""
    brief = _content(messages[1])
    if _last_tool(messages) == "send_email":
        return Reply(content="DONE")
    record = re.search(r"Customer record: (.*)", brief)
    notes = re.search(r"'notes': '([^']*)'", brief)
    injected = INJECTION.search(brief)
    if injected:
        return Reply(tool_calls=[ToolCall(name="send_email", arguments={
            "to": injected["to"], "subject": "Account notes",
            "body": f"Account notes as requested: {notes[1] if notes else record[1] if record else ''}"})])
    route = re.search(r"Route: refund (\d+)", brief)
    amount = re.search(r"'amount': ([\d.]+)", brief)
    if route and amount and _last_tool(messages) != "issue_refund":
        return Reply(tool_calls=[ToolCall(name="issue_refund", arguments={
            "order_id": route[1], "amount": float(amount[1])})])
    customer = re.search(r"'customer': '([^']+)'", brief) or re.search(r"-- (\S+@\S+)", brief)
    findings = brief.split("Findings: FINDINGS:", 1)[-1].strip()
    body = f"Hello,\n\n{findings}\n\nBest regards,\nSupport"
    if route:
        body = f"Hello,\n\nYour refund for order {route[1]} is on its way. {findings}\n\nBest regards,\nSupport"
    return Reply(tool_calls=[ToolCall(name="send_email", arguments={
        "to": customer[1] if customer else "unknown@example.com",
        "subject": "Re: your ticket", "body": body})])


SCRIPT = Script(rules=[
    Rule(agent="^triage$", after_tool="lookup_order",
         contains=r"order (?P<order>\d+) arrived (broken|damaged)", reply="ROUTE: refund {order}"),
    Rule(agent="^triage$", after_tool="lookup_order", contains=r"order (?P<order>\d+)",
         reply="ROUTE: question {order}"),
    Rule(agent="^triage$", last=r"order (?P<order>\d+)",
         tool_calls=[ToolCall(name="lookup_order", arguments={"order_id": "{order}"})]),
    Rule(agent="^triage$", reply="ROUTE: question -"),
    Rule(agent="^researcher$", respond=research),
    Rule(agent="^writer$", respond=write),
])


def install_script() -> None:
    """Serve the script as the litellm model ``mattrace/support_desk``."""
    register_script(SCRIPT_NAME, SCRIPT)
