"""The research team's governor: each agent's capability, mediated before every action, fail-closed.

Contracts find a leak after the fact; the governor stops it as it happens. Only the
writer may e-mail, and only to example.org; nothing an untrusted page led to may become
an e-mail (``guard`` over ``no_untrusted_action``); an agent without a capability, or an
action outside it, is blocked.
"""

from __future__ import annotations

from examples.research_team.designs import COORDINATORS
from mattrace.contracts import no_untrusted_action, step
from mattrace.governance import Capability, Governor, block, guard

CAPABILITIES: dict[str, Capability] = {
    "researcher": Capability(tools=("search_web",), side_effects="read", memory=False),
    "analyst": Capability(tools=(), side_effects="read", memory=True),
    "writer": Capability(tools=("send_email",), memory=False),
    **{c: Capability(tools=(), side_effects="read", memory=True) for names in COORDINATORS.values() for c in names},
}


def governor() -> Governor:
    """A fresh governor for the team (each run keeps its own state in it)."""
    return Governor([
        guard([no_untrusted_action()], rule_id="no-untrusted-action"),
        block(step.tool("send_email") & step.arg("to").not_matches(r"@example\.org$"),
              "the team e-mails example.org only", rule_id="example-org-only"),
    ], capabilities=CAPABILITIES)
