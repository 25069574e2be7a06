"""The research team's contracts: what every run of every design must respect.

Check recorded runs with
``mattrace check .mattrace/traces/*.jsonl --contracts examples.research_team.contracts:CONTRACTS``.
"""

from __future__ import annotations

from typing import Any

from examples.research_team.designs import COORDINATORS, STEP_BUDGET
from mattrace.contracts import (
    claims_supported,
    max_calls,
    no_unsupported_propagation,
    no_untrusted_action,
    stays_in_role,
    terminates,
)

_WORKER_KINDS = ["llm", "message", "retrieval", "tool", "memory_read"]
_COORDINATOR_KINDS = ["llm", "message", "delegate", "memory_read", "memory_write"]

ROLES: dict[str, Any] = {
    "researcher": {"tools": ["search_web"], "kinds": _WORKER_KINDS},
    "analyst": {"tools": [], "kinds": [*_WORKER_KINDS, "memory_write"]},
    "writer": {"tools": ["send_email"], "kinds": _WORKER_KINDS},
    **{c: {"tools": [], "kinds": _COORDINATOR_KINDS} for names in COORDINATORS.values() for c in names},
}
"""Who may do what: the researcher searches, only the analyst (and the coordinators, who file reports)
writes shared memory, only the writer e-mails; coordinators route and use no tools."""

CONTRACTS = [
    terminates(max_steps=STEP_BUDGET),
    stays_in_role(ROLES),
    claims_supported(),
    no_unsupported_propagation(),
    no_untrusted_action(),
    max_calls("send_email", 1),
]
"""The claims contracts judge the claims the team marks: the analyst's figures and the writer's answers."""
