"""The desk's boundaries: order lookup, knowledge-base search, refunds, e-mail, memory.

Each is wrapped by mattrace, so every call is a step in the run's trace; refunds and
e-mails are marked as side effects because they change the outside world. What a ticket
changes (e-mails sent, refunds paid, the shared memory) lives in a :class:`Desk` held in a
ContextVar, one per ticket, so tickets handled at once in threads never see each other's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import mattrace
from mattrace.apps.demo.support_desk.data import KNOWLEDGE_BASE, ORDERS

__all__ = [
    "close_desk",
    "Desk",
    "desk",
    "issue_refund",
    "lookup_order",
    "MIN_SCORE",
    "open_desk",
    "RESEARCH_SPECS",
    "RESEARCH_TOOLS",
    "search_kb",
    "send_email",
    "spec",
    "TRIAGE_SPECS",
    "TRIAGE_TOOLS",
    "WRITER_SPECS",
    "WRITER_TOOLS",
]

MIN_SCORE = 2  # keyword hits a document needs to be returned


@dataclass
class Desk:
    """The state one ticket works on: its outbox, its refunds, the agents' shared memory."""

    outbox: list[dict[str, str]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    memory: mattrace.Memory = field(default_factory=lambda: mattrace.Memory("desk"))


_desk: ContextVar[Desk] = ContextVar("support_desk")


def desk() -> Desk:
    """The desk of the ticket being handled (a fresh one outside any ticket)."""
    current = _desk.get(None)
    if current is None:
        current = Desk()
        _desk.set(current)
    return current


def open_desk() -> tuple[Desk, Any]:
    """Start a ticket on a fresh desk; pass the token to ``close_desk``."""
    fresh = Desk()
    return fresh, _desk.set(fresh)


def close_desk(token: Any) -> None:
    _desk.reset(token)


@mattrace.tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """The order record, or an error the agent can read."""
    order = ORDERS.get(str(order_id))
    if order is None:
        raise KeyError(f"no order {order_id}")
    return {"order_id": str(order_id), **order}


@mattrace.retriever
def search_kb(query: str, k: int = 2) -> list[mattrace.Doc]:
    """Keyword search over the knowledge base and the (untrusted) community forum."""
    words = {w for w in re.findall(r"[a-z]+", query.lower()) if len(w) > 3}
    scored = []
    for doc_id, text, trusted in KNOWLEDGE_BASE:
        score = sum(1 for w in words if w in text.lower())
        if score:
            scored.append((score, doc_id, text, trusted))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [mattrace.Doc(id=d, text=t, trusted=tr, score=float(s))
            for s, d, t, tr in scored[:k] if s >= MIN_SCORE]


@mattrace.tool(side_effect=True)
def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
    """Refund ``amount`` on the order (a real payment in production)."""
    refund = {"order_id": str(order_id), "amount": float(amount)}
    desk().refunds.append(refund)
    return {"status": "refunded", **refund}


@mattrace.tool(side_effect=True)
def send_email(to: str, subject: str, body: str) -> str:
    """Send an e-mail (appended to the desk's outbox here)."""
    desk().outbox.append({"to": to, "subject": subject, "body": body})
    return f"sent to {to}"


def spec(name: str, description: str, **params: str) -> dict[str, Any]:
    """An OpenAI tool spec with string/number parameters, all required."""
    kinds = {"str": "string", "float": "number", "int": "integer"}
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object",
                       "properties": {p: {"type": kinds[t]} for p, t in params.items()},
                       "required": list(params)}}}


TRIAGE_TOOLS = {"lookup_order": lookup_order}
TRIAGE_SPECS = [spec("lookup_order", "Look up an order by its id.", order_id="str")]
RESEARCH_TOOLS: dict[str, Callable[..., Any]] = {"search_kb": search_kb}
RESEARCH_SPECS = [spec("search_kb", "Search the knowledge base and forum.", query="str")]
WRITER_TOOLS: dict[str, Callable[..., Any]] = {"issue_refund": issue_refund, "send_email": send_email}
WRITER_SPECS = [spec("issue_refund", "Refund an order.", order_id="str", amount="float"),
                spec("send_email", "Send an e-mail.", to="str", subject="str", body="str")]
