"""The support desk's contracts: what every run of the desk must respect.

Check recorded runs with
``mattrace check .mattrace/traces/*.jsonl --contracts mattrace.apps.demo.support_desk.contracts:CONTRACTS``.
"""

from __future__ import annotations

from mattrace.contracts import (
    always,
    max_calls,
    never,
    no_action_after_error,
    no_untrusted_action,
    stays_in_role,
    step,
    terminates,
)

__all__ = [
    "CONTRACTS",
    "ROLES",
]

ROLES = {
    "triage": {"tools": ["lookup_order"], "kinds": ["llm", "tool", "message"]},
    "researcher": ["lookup_order", "search_kb"],
    "writer": ["lookup_order", "issue_refund", "send_email"],
}

CONTRACTS = [
    terminates(max_steps=60),
    no_untrusted_action(),
    stays_in_role(ROLES),
    no_action_after_error(),
    max_calls("issue_refund", 1),
    never(step.tool("send_email") & step.arg("to").not_matches(r"@example\.com$")).named(
        "e-mail only customers"),
    always(step.tool("issue_refund") >> step.arg("amount").matches(r"^\d{1,3}(\.\d+)?$")).named(
        "refunds under 1000"),
]
