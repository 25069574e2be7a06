"""The team's boundaries: web search, shared memory and e-mail, each recorded by mattrace.

``search_web`` is a retriever whose pages are untrusted (anyone can write a web page);
``send_email`` is a side effect; shared memory is a :class:`mattrace.Memory`, so every read
and write is a step and taint flows through it. The memory tools the agents call
(``read_memory``, ``write_memory``) are thin functions over that memory rather than
wrapped tools: a wrapped tool that itself touched the memory would record steps a replay
cannot reproduce (replay answers the tool without running its body).

What a run changes lives in a :class:`Workspace` held in a ContextVar, so runs in threads
never share an outbox or a memory. All agents get the same toolbox, as in many agent
frameworks; what each may use is the business of the roles (contracts) and capabilities
(governance), which is exactly where role drift and overreach show up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

import mattrace
from examples.research_team.data import CORPUS, POISONED_PAGE

MIN_SCORE = 2  # query words a page must contain to be returned
SLOTS = ("findings", "figures", "answer")
EMPTY = "(empty)"


@dataclass
class Workspace:
    """What one run works on: the pages its search sees, the shared memory, the outbox."""

    corpus: tuple[tuple[str, str], ...] = CORPUS
    memory: mattrace.Memory = field(default_factory=lambda: mattrace.Memory("team", {k: "" for k in SLOTS}))
    outbox: list[dict[str, str]] = field(default_factory=list)


_workspace: ContextVar[Workspace | None] = ContextVar("research_team", default=None)


def workspace() -> Workspace:
    """The workspace of the run in progress (a fresh one outside any run)."""
    current = _workspace.get()
    if current is None:
        current = Workspace()
        _workspace.set(current)
    return current


def open_workspace(*, poisoned: bool = False) -> tuple[Workspace, Token[Workspace | None]]:
    """Start a run on a fresh workspace; ``poisoned`` puts the attacker's page into the search index."""
    fresh = Workspace(corpus=(*CORPUS, POISONED_PAGE) if poisoned else CORPUS)
    return fresh, _workspace.set(fresh)


def close_workspace(token: Token[Workspace | None]) -> None:
    _workspace.reset(token)


@mattrace.retriever(trusted=False)
def search_web(query: str, k: int = 3) -> list[mattrace.Doc]:
    """Keyword search over the built-in web: the ``k`` pages sharing most words with the query."""
    words = {w for w in re.findall(r"[a-z0-9]+", query.lower()) if len(w) > 3}
    scored = sorted(((sum(w in text.lower() for w in words), doc_id, text) for doc_id, text in workspace().corpus),
                    key=lambda s: (-s[0], s[1]))
    return [mattrace.Doc(id=doc_id, text=text, score=float(score))
            for score, doc_id, text in scored[:k] if score >= MIN_SCORE]


@mattrace.tool(side_effect=True)
def send_email(to: str, subject: str, body: str) -> str:
    """Send an e-mail (to the workspace's outbox here; to the world in production)."""
    workspace().outbox.append({"to": to, "subject": subject, "body": body})
    return f"sent to {to}"


def read_memory(key: str) -> str:
    """A slot of the shared memory (a recorded memory read), or ``(empty)``."""
    try:
        value = workspace().memory[key]
    except KeyError:
        return f"(no slot {key!r}; slots: {', '.join(SLOTS)})"
    return str(value) or EMPTY


def write_memory(key: str, value: str) -> str:
    """Store ``value`` in a slot of the shared memory (a recorded memory write)."""
    workspace().memory[key] = value
    return f"stored {key}"


TOOLBOX: dict[str, Callable[..., Any]] = {"search_web": search_web, "read_memory": read_memory,
                                          "write_memory": write_memory, "send_email": send_email}


def spec(name: str, description: str, **params: str) -> dict[str, Any]:
    """An OpenAI tool spec whose parameters are all required strings."""
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": {p: {"type": "string", "description": d}
                                                        for p, d in params.items()},
                       "required": list(params)}}}


TOOLBOX_SPECS: list[dict[str, Any]] = [
    spec("search_web", "Search the web; returns pages with their ids.", query="what to search for"),
    spec("read_memory", "Read a slot of the team's shared memory.", key="findings, figures or answer"),
    spec("write_memory", "Store text in a slot of the team's shared memory.", key="findings, figures or answer",
         value="the text to store"),
    spec("send_email", "Send an e-mail.", to="recipient address", subject="subject line", body="message text"),
]
