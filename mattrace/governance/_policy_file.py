"""Governance policies in TOML: the same governor as Python, reviewable as a file.

```toml
on_block = "refuse"                       # or "raise"
unattributed = "refuse"                   # or "attribute": calls from threads outside the run

[capabilities.writer]
tools = ["lookup_order", "issue_refund", "send_email"]
per_tool = { issue_refund = 1 }
side_effects = "write"                    # read | propose | write

[[rule]]
use = "guard"
contracts = "mattrace.apps.demo.support_desk.contracts:CONTRACTS"   # or a .toml contract file

[[rule]]
use = "block"
id = "customers-only"
step = { tool = "send_email", args = { to = { not_matches = '@example\\.com$' } } }
reason = "the desk e-mails customers only"

[[rule]]
use = "rewrite"
step = { tool = "issue_refund" }
fn = "mattrace.apps.demo.support_desk.governance:cap_refund"        # module:function(args) -> args
```

Step patterns are the contract files' (docs/contract-files.md), read by
:func:`mattrace.contracts.parse_step_pattern`. Every mistake is a
:class:`~mattrace.errors.GovernanceError` that starts ``path:line:``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, cast

from mattrace._config import ConfigFile, Key, read_config
from mattrace.contracts import Pred, parse_step_pattern, resolve_contracts
from mattrace.errors import ContractError, GovernanceError
from mattrace.governance._governor import Capability, Governor, SideEffectClass, UnattributedPolicy
from mattrace.governance._rules import Rule, allow, block, escalate, guard, rewrite
from mattrace.recording.unattributed import POLICIES

__all__ = ["load_policy"]

_TOP_KEYS = ("on_block", "audit", "unattributed", "capabilities", "rule")
_RULE_KEYS = {"allow": ("use", "id", "step"), "block": ("use", "id", "step", "reason"),
              "rewrite": ("use", "id", "step", "fn", "reason"), "escalate": ("use", "id", "step", "approver"),
              "guard": ("use", "id", "contracts")}
_CAPABILITY_KEYS = ("tools", "max_calls", "per_tool", "side_effects", "memory")


class _PolicyLoader:
    def __init__(self, config: ConfigFile[GovernanceError]) -> None:
        self.config = config
        self.fail = config.fail

    def pattern(self, at: Key, value: Any) -> Pred:
        try:
            return parse_step_pattern(self.config, at, value)
        except ContractError as exc:   # the contract DSL refused it: no line to give
            raise GovernanceError(str(exc)) from None

    def rule(self, at: Key, raw: Any) -> Rule:
        config = self.config
        if not isinstance(raw, dict):
            raise self.fail(at, "each [[rule]] is a table")
        use = config.choice((*at, "use"), raw.get("use"), tuple(_RULE_KEYS))
        config.check_keys(at, raw, _RULE_KEYS[use], f"for a {use} rule")
        rule_id = config.string((*at, "id"), raw.get("id", use))
        if use == "guard":
            spec = raw.get("contracts")
            if not isinstance(spec, str):
                raise self.fail((*at, "contracts"), "contracts must be a .toml contract file or module:NAME")
            near = Path(config.path).parent / spec
            try:
                return guard(resolve_contracts(str(near) if near.exists() else spec), rule_id=rule_id)
            except ContractError as exc:
                raise self.fail((*at, "contracts"), str(exc)) from None
        if "step" not in raw:
            raise self.fail(at, f"a {use} rule needs step = {{ ... }} (which actions it applies to)")
        pred = self.pattern((*at, "step"), raw["step"])
        if use == "allow":
            return allow(pred, rule_id=rule_id)
        if use == "block":
            return block(pred, config.string((*at, "reason"), raw.get("reason", "blocked by policy")), rule_id=rule_id)
        if use == "rewrite":
            fn = config.function((*at, "fn"), raw.get("fn"))
            return rewrite(pred, fn, reason=str(raw.get("reason", "rewritten by policy")), rule_id=rule_id)
        return escalate(pred, config.function((*at, "approver"), raw.get("approver")), rule_id=rule_id)

    def capability(self, at: Key, raw: Any) -> Capability:
        config = self.config
        if not isinstance(raw, dict):
            raise self.fail(at, "each [capabilities.<agent>] is a table")
        config.check_keys(at, raw, _CAPABILITY_KEYS, "in a capability")
        tools = config.strings((*at, "tools"), raw.get("tools", []), expected="a list of names or patterns")
        side = config.choice((*at, "side_effects"), raw.get("side_effects", "write"), ("read", "propose", "write"),
                             expected="read, propose or write")
        max_calls = raw.get("max_calls")
        if max_calls is not None:
            config.integer((*at, "max_calls"), max_calls, expected="a whole number", minimum=0)
        per_tool = raw.get("per_tool", {})
        if not isinstance(per_tool, dict) or not all(type(v) is int and v >= 0 for v in per_tool.values()):
            raise self.fail((*at, "per_tool"), "per_tool must map tool names to whole numbers")
        memory = config.boolean((*at, "memory"), raw.get("memory", True))
        return Capability(tools=tuple(tools), max_calls=max_calls, per_tool=dict(per_tool),
                          side_effects=cast(SideEffectClass, side), memory=memory)

    def governor(self, doc: dict[str, Any]) -> Governor:
        config = self.config
        config.check_keys((), doc, _TOP_KEYS, "at the top level")
        on_block = config.choice(("on_block",), doc.get("on_block", "refuse"), ("refuse", "raise"),
                                 expected="refuse or raise")
        audit = config.boolean(("audit",), doc.get("audit", True))
        unattributed = config.choice(("unattributed",), doc.get("unattributed", "refuse"), POLICIES,
                                     expected="refuse or attribute")
        raw_rules = doc.get("rule", [])
        if not isinstance(raw_rules, list):
            raise self.fail(("rule",), "rules are [[rule]] entries (double brackets)")
        rules = [self.rule(("rule", i), raw) for i, raw in enumerate(raw_rules)]
        caps = doc.get("capabilities")
        if caps is not None and not isinstance(caps, dict):
            raise self.fail(("capabilities",), "capabilities is a table of [capabilities.<agent>] tables")
        capabilities = ({agent: self.capability(("capabilities", agent), raw) for agent, raw in caps.items()}
                        if caps is not None else None)
        if not rules and capabilities is None:
            raise self.fail(("rule",), "a policy needs [[rule]] entries or [capabilities.<agent>] tables")
        return Governor(rules, capabilities=capabilities, on_block=cast(Literal["refuse", "raise"], on_block),
                        audit=audit, unattributed=cast(UnattributedPolicy, unattributed))


def load_policy(path: str | os.PathLike[str]) -> Governor:
    """The governor a TOML policy file describes.

    Raises:
        GovernanceError: missing or unreadable file, invalid TOML, an unknown rule or key, a
            bad step pattern, value or import; the message starts ``path:line:``.
    """
    config = read_config(path, GovernanceError, "policy file", plain_read_errors=True)
    return _PolicyLoader(config).governor(config.doc)
