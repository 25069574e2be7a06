"""Governance policies in TOML: the same governor as Python, reviewable as a file.

```toml
on_block = "refuse"                       # or "raise"

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

Step patterns are the contract files' (docs/contract-files.md). Every mistake is a
:class:`~mattrace.errors.GovernanceError` that starts ``path:line:``.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from pathlib import Path
from typing import Any

from mattrace._toml import Key, LineMap, got, toml_error, unknown_key
from mattrace.contracts import resolve_contracts
from mattrace.contracts._files import _Loader
from mattrace.errors import ContractError, GovernanceError
from mattrace.governance._governor import Capability, Governor
from mattrace.governance._rules import Rule, allow, block, escalate, guard, rewrite

__all__ = ["load_policy"]

_RULE_KEYS = {"allow": ("use", "id", "step"), "block": ("use", "id", "step", "reason"),
              "rewrite": ("use", "id", "step", "fn", "reason"), "escalate": ("use", "id", "step", "approver"),
              "guard": ("use", "id", "contracts")}
_CAPABILITY_KEYS = ("tools", "max_calls", "per_tool", "side_effects", "memory")


class _PolicyLoader:
    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines = LineMap(text)
        self.patterns = _Loader(file, text)

    def fail(self, where: Key, message: str) -> GovernanceError:
        line = self.lines.get(where)
        err = GovernanceError(f"{self.file}:{line}: {message}" if line is not None else f"{self.file}: {message}")
        vars(err).update(path=self.file, line=line)
        return err

    def callable_at(self, at: Key, value: Any) -> Any:
        if not isinstance(value, str) or ":" not in value:
            raise self.fail(at, f"expected \"module:function\", got {got(value)}")
        module, _, name = value.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise self.fail(at, f"{value!r} does not import ({exc})") from None

    def pattern(self, at: Key, value: Any) -> Any:
        try:
            return self.patterns.pattern(at, value)
        except ContractError as exc:
            raise GovernanceError(str(exc)) from None

    def rule(self, at: Key, raw: Any) -> Rule:
        if not isinstance(raw, dict):
            raise self.fail(at, "each [[rule]] is a table")
        use = raw.get("use")
        if use not in _RULE_KEYS:
            raise self.fail((*at, "use") if "use" in raw else at,
                            f"use must be one of {', '.join(_RULE_KEYS)}, got {got(use)}")
        for key in raw:
            if key not in _RULE_KEYS[use]:
                raise self.fail((*at, key), unknown_key(key, f"for a {use} rule", _RULE_KEYS[use]))
        rule_id = raw.get("id", use)
        if not isinstance(rule_id, str):
            raise self.fail((*at, "id"), f"id must be a string, got {got(rule_id)}")
        if use == "guard":
            spec = raw.get("contracts")
            if not isinstance(spec, str):
                raise self.fail((*at, "contracts"), "contracts must be a .toml contract file or module:NAME")
            near = Path(self.file).parent / spec
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
            reason = raw.get("reason", "blocked by policy")
            if not isinstance(reason, str):
                raise self.fail((*at, "reason"), f"reason must be a string, got {got(reason)}")
            return block(pred, reason, rule_id=rule_id)
        if use == "rewrite":
            fn = self.callable_at((*at, "fn"), raw.get("fn"))
            return rewrite(pred, fn, reason=str(raw.get("reason", "rewritten by policy")), rule_id=rule_id)
        return escalate(pred, self.callable_at((*at, "approver"), raw.get("approver")), rule_id=rule_id)

    def capability(self, at: Key, raw: Any) -> Capability:
        if not isinstance(raw, dict):
            raise self.fail(at, "each [capabilities.<agent>] is a table")
        for key in raw:
            if key not in _CAPABILITY_KEYS:
                raise self.fail((*at, key), unknown_key(key, "in a capability", _CAPABILITY_KEYS))
        tools = raw.get("tools", [])
        if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
            raise self.fail((*at, "tools"), f"tools must be a list of names or patterns, got {got(tools)}")
        side = raw.get("side_effects", "write")
        if side not in ("read", "propose", "write"):
            raise self.fail((*at, "side_effects"), f"side_effects must be read, propose or write, got {got(side)}")
        max_calls = raw.get("max_calls")
        if max_calls is not None and (type(max_calls) is not int or max_calls < 0):
            raise self.fail((*at, "max_calls"), f"max_calls must be a whole number, got {got(max_calls)}")
        per_tool = raw.get("per_tool", {})
        if not isinstance(per_tool, dict) or not all(type(v) is int and v >= 0 for v in per_tool.values()):
            raise self.fail((*at, "per_tool"), "per_tool must map tool names to whole numbers")
        memory = raw.get("memory", True)
        if not isinstance(memory, bool):
            raise self.fail((*at, "memory"), f"memory must be true or false, got {got(memory)}")
        return Capability(tools=tuple(tools), max_calls=max_calls, per_tool=dict(per_tool),
                          side_effects=side, memory=memory)

    def governor(self, doc: dict[str, Any]) -> Governor:
        for key in doc:
            if key not in ("on_block", "capabilities", "rule", "audit"):
                raise self.fail((key,), unknown_key(key, "at the top level", ["on_block", "audit", "capabilities",
                                                                           "rule"]))
        on_block = doc.get("on_block", "refuse")
        if on_block not in ("refuse", "raise"):
            raise self.fail(("on_block",), f"on_block must be refuse or raise, got {got(on_block)}")
        audit = doc.get("audit", True)
        if not isinstance(audit, bool):
            raise self.fail(("audit",), f"audit must be true or false, got {got(audit)}")
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
        return Governor(rules, capabilities=capabilities, on_block=on_block, audit=audit)


def load_policy(path: str | os.PathLike[str]) -> Governor:
    """The governor a TOML policy file describes.

    Raises:
        GovernanceError: missing or unreadable file, invalid TOML, an unknown rule or key, a
            bad step pattern, value or import; the message starts ``path:line:``.
    """
    file = os.fspath(path)
    try:
        text = Path(file).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise GovernanceError(f"{file}: policy file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GovernanceError(f"{file}: cannot read policy file: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, message = toml_error(text, str(exc))
        raise GovernanceError(f"{file}:{line}: invalid TOML: {message}") from None
    return _PolicyLoader(file, text).governor(doc)
