"""Runtime governance: per-agent capabilities and allow / rewrite / block mediation of actions.

``mattrace.record(..., governor=Governor([block(step.tool("send_email") & step.untrusted, "...")]))``
mediates every tool call, retrieval and memory write of the run before it happens,
fail-closed, and records each decision as a ``governance`` step.
"""

from mattrace.governance._audit import audit_path, read_audit_log
from mattrace.governance._governor import GOVERNOR_AGENT, ActionBlocked, Capability, Governor, UnattributedAction
from mattrace.governance._policy_file import load_policy
from mattrace.governance._rules import (
    Decision,
    Rule,
    Ruling,
    allow,
    block,
    escalate,
    guard,
    rewrite,
    terminal_approver,
)

__all__ = [
    "ActionBlocked",
    "allow",
    "audit_path",
    "block",
    "Capability",
    "Decision",
    "escalate",
    "Governor",
    "GOVERNOR_AGENT",
    "guard",
    "load_policy",
    "read_audit_log",
    "rewrite",
    "Rule",
    "Ruling",
    "terminal_approver",
    "UnattributedAction",
]
