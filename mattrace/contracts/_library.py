"""Stock contracts for the failure classes of multi-agent orchestration.

Non-termination, role drift, untrusted context turning into actions, actions without
confirmation, actions after a failure, runaway tool use, MCP tool definitions that
change after they were approved, and destructive MCP tool calls. Each is built from the same
operators a user would write, with reason sentences phrased for the failure it catches;
the factuality contracts live in ``_claims``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from mattrace.contracts._contract import Contract, Monitor, describe_step
from mattrace.contracts._dataflow import SelectorContract, UntrustedSelector
from mattrace.contracts._operators import Always, at_most
from mattrace.contracts._past import Flows, Since
from mattrace.contracts._predicates import NameRef
from mattrace.contracts._regex import compile_linear
from mattrace.contracts._step import NameSpec, _name_matcher, step
from mattrace.contracts._verdict import Verdict
from mattrace.errors import ContractError
from mattrace.trace import Step, StepKind

__all__ = ["confirmed_before", "max_calls", "no_action_after_error", "no_destructive_call", "no_untrusted_action",
           "stays_in_role", "terminates", "tool_definitions_stable", "TOOL_CHANGES_ATTR"]


# -- terminates ----------------------------------------------------------------------------


class Terminates(Contract):
    """The run ends with an explicit, successful-or-failed (not cut off) ``end`` within ``max_steps``."""

    def __init__(self, max_steps: int) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ContractError(f"terminates(max_steps=...) takes a positive whole number, got {max_steps!r}")
        self.max_steps = max_steps
        self._name = "terminates"

    def describe(self) -> str:
        return f"terminates(max_steps={self.max_steps})"

    def monitor(self) -> Monitor:
        return _TerminatesMonitor(self)


_CUT_OFF = {"timeout", "max_steps"}


class _TerminatesMonitor(Monitor):
    __slots__ = ("count", "ended", "max_steps")

    def __init__(self, contract: Terminates) -> None:
        super().__init__(contract)
        self.max_steps = contract.max_steps
        self.count = 0
        self.ended = False

    def _save(self) -> Any:
        return (self.count, self.ended)

    def _restore(self, state: Any) -> None:
        self.count, self.ended = state

    def _step(self, s: Step) -> Verdict | None:
        if s.kind is StepKind.END:
            status = s.result.get("status") if isinstance(s.result, dict) else None
            if status in _CUT_OFF:
                return self.failed(s.index, f"the run was cut off ({status}) at step {s.index} instead of "
                                            "finishing its task", (s.index,))
            self.ended = True
            return None
        self.count += 1
        if self.count > self.max_steps:
            return self.failed(s.index, f"the run took more than {self.max_steps} steps without ending "
                                        f"(step {s.index}, {describe_step(s)}, is step {self.count})", (s.index,))
        return None

    def _finish(self) -> Verdict:
        if self.ended:
            return super()._finish()
        return self.failed(self.last, f"the run has no end step: it did not terminate; {self.at_end()}")


def terminates(max_steps: int = 100) -> Contract:
    """The run reaches an explicit ``end`` (not cut off by a timeout or step limit) within ``max_steps``."""
    return Terminates(max_steps)


# -- stays_in_role -------------------------------------------------------------------------

_ACTION_KINDS = frozenset({StepKind.TOOL, StepKind.RETRIEVAL})


class _Role:
    __slots__ = ("kinds", "tools", "tools_text")

    def __init__(self, agent: str, spec: Any) -> None:
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"tools", "kinds"}
            if unknown:
                raise ContractError(f"stays_in_role: role {agent!r} has unknown key {sorted(unknown)[0]!r}; "
                                    "use 'tools' and 'kinds'")
            tools, kinds = spec.get("tools", ()), spec.get("kinds")
        else:
            tools, kinds = spec, None
        if isinstance(tools, str):
            tools = [tools]
        if not isinstance(tools, Collection):
            raise ContractError(f"stays_in_role: tools of role {agent!r} must be a list of names, got {tools!r}")
        matchers = [_name_matcher(t, "tool")[0] for t in tools]
        self.tools = matchers
        self.tools_text = ", ".join(map(str, tools)) or "none"
        self.kinds: frozenset[StepKind] | None = None
        if kinds is not None:
            try:
                self.kinds = frozenset(StepKind(k) for k in kinds)
            except ValueError as exc:
                raise ContractError(f"stays_in_role: role {agent!r}: {exc}") from None

    def violation(self, s: Step) -> str | None:
        if self.kinds is not None and s.kind not in self.kinds:
            allowed = ", ".join(sorted(k.value for k in self.kinds))
            return (f"{s.agent} took a {s.kind.value} step at step {s.index}, outside its role "
                    f"(allowed kinds: {allowed})")
        if s.kind in _ACTION_KINDS and not any(m(s.target) for m in self.tools):
            return (f"{s.agent} called {s.target} at step {s.index}, outside its role "
                    f"(allowed tools: {self.tools_text})")
        return None


class StaysInRole(Contract):
    """Role drift: each listed agent uses only its own tools (and, if given, step kinds)."""

    def __init__(self, capabilities: Mapping[str, Any]) -> None:
        if not isinstance(capabilities, Mapping) or not capabilities:
            raise ContractError("stays_in_role(...) takes a mapping agent -> tools (or {'tools': [...], "
                                f"'kinds': [...]}}), got {capabilities!r}")
        self.roles = {str(agent): _Role(str(agent), spec) for agent, spec in capabilities.items()}
        self._name = "stays in role"

    def describe(self) -> str:
        return "stays_in_role(" + "; ".join(f"{a}: {r.tools_text}" for a, r in self.roles.items()) + ")"

    def names(self) -> tuple[NameRef, ...]:
        # the agents it constrains; a misspelt allowed tool is not vacuous, it fails the agent's real calls
        return tuple(NameRef("agent", repr(agent), _equals(agent), agent) for agent in self.roles)

    def monitor(self) -> Monitor:
        return _RoleMonitor(self)


class _RoleMonitor(Monitor):
    __slots__ = ("roles",)

    def __init__(self, contract: StaysInRole) -> None:
        super().__init__(contract)
        self.roles = contract.roles
        if all(role.kinds is None for role in self.roles.values()):
            self.kinds = _ACTION_KINDS   # only calls can leave a role that does not restrict kinds

    def _save(self) -> Any:
        return ()   # no state of its own

    def _step(self, s: Step) -> Verdict | None:
        role = self.roles.get(s.agent)
        if role is None or s.kind is StepKind.END:
            return None
        reason = role.violation(s)
        return None if reason is None else self.failed(s.index, reason, (s.index,))


def _equals(name: str) -> Callable[[str | None], bool]:
    return lambda value: value == name


def stays_in_role(capabilities: Mapping[str, Any]) -> Contract:
    """Each agent in ``capabilities`` uses only its tools; agents not listed are not constrained.

    ``capabilities`` maps an agent to its tool names (globs allowed) or to
    ``{"tools": [...], "kinds": ["message", "llm", ...]}``.
    """
    return StaysInRole(capabilities)


# -- the rest, built from operators --------------------------------------------------------


def no_untrusted_action(*, selectors: Mapping[str, Sequence[str]] | None = None,
                        egress: Mapping[str, Sequence[str]] | None = None, strict: bool = False) -> Contract:
    """No side effect acts on a value that came from untrusted content (judged by data flow).

    Fails at the first side effect (or ``egress`` call) one of whose *selector* arguments
    (recipient, URL, account, path, id: see :func:`~mattrace.contracts.untrusted_selector`)
    was copied from untrusted text and appears in neither the user's words nor trusted
    data. An agent that merely *read* an injected page and then did what the user asked
    passes; the conservative check that fails on any side effect after untrusted content
    entered the context is :func:`no_untrusted_context_action`.

    Args:
        selectors: per tool, the arguments that select what it touches.
        egress: per tool, arguments of a read tool that still send data out
            (``{"get_webpage": ["url"]}``).
        strict: also fail on values found only in untrusted *fields* (a record's sender).
    """
    pred = UntrustedSelector(step.side_effect(), selectors=selectors, egress=egress, strict=strict)
    return SelectorContract(pred).named("no untrusted action")


def no_untrusted_context_action() -> Contract:
    """No side effect after untrusted content reached its context (along ``reads``, recorded or
    inferred from the text, transitively).

    The conservative check: an agent that read an injected document and then took any
    action fails, whether or not the action used anything from the document.
    """

    def reason(s: Step, witness: tuple[int, ...]) -> str:
        path = " → ".join(map(str, witness))   # the taint path, ending at this step
        return (f"{describe_step(s)} at step {s.index} is a side effect reached by untrusted content "
                f"from step {witness[0]} (path {path})")

    return Always(Flows(step.untrusted(), step.side_effect()), negate=True,
                  reason=reason).named("no untrusted context action")


def confirmed_before(tool: NameSpec, pattern: str = r"\byes\b", *, by: str = "user",
                     ignore_case: bool = True) -> Contract:
    """Every ``tool`` call has a message from ``by`` matching ``pattern`` since anyone else last spoke.

    The confirmation must be the latest word: an assistant message after the user's "yes"
    (a new proposal) needs a new "yes" before the action.
    """
    try:
        rx = compile_linear(pattern, ignore_case=ignore_case)
    except ContractError as exc:
        raise ContractError(f"confirmed_before: {exc}") from None
    other_speaker = step.kind("message") & ~step.agent(by)
    confirmation = step.message(agent=by, matches=rx)
    tool_text = _name_matcher(tool, "tool")[1].removeprefix("tool ")

    def reason(s: Step, witness: tuple[int, ...]) -> str:
        before = [i for i in witness if i < s.index]
        tail = f" since the last message from another agent (step {before[-1]})" if before else ""
        return f"{s.target} at step {s.index} has no {by} confirmation matching {rx.pattern}{tail}"

    contract = Always(step.tool(tool) >> Since(~other_speaker, confirmation), reason=reason)
    return contract.named(f"confirmed before {tool_text}")


def no_action_after_error() -> Contract:
    """No side effect while a failed boundary call is unresolved (not yet retried successfully)."""
    return _NoActionAfterError().named("no action after error")


class _NoActionAfterError(Contract):
    def describe(self) -> str:
        return "no_action_after_error()"

    def monitor(self) -> Monitor:
        return _AfterErrorMonitor(self)


class _AfterErrorMonitor(Monitor):
    __slots__ = ("failed_calls",)

    def __init__(self, contract: Contract) -> None:
        super().__init__(contract)
        self.failed_calls: dict[str | None, tuple[int, str]] = {}   # target -> (step, what failed)

    def _save(self) -> Any:
        return dict(self.failed_calls)   # a few unresolved targets at most

    def _restore(self, state: Any) -> None:
        self.failed_calls = state

    def _step(self, s: Step) -> Verdict | None:
        if s.side_effect and self.failed_calls:
            index, what = min(self.failed_calls.values())
            return self.failed(s.index, f"{describe_step(s)} at step {s.index} is a side effect after the "
                                        f"failed call at step {index} ({what}) with no successful retry",
                               (index, s.index))
        if s.kind in (StepKind.TOOL, StepKind.RETRIEVAL, StepKind.LLM, StepKind.MEMORY_READ, StepKind.MEMORY_WRITE):
            if s.error is not None:
                self.failed_calls.setdefault(s.target, (s.index, f"{s.target}: {s.error.type}"))
            else:
                self.failed_calls.pop(s.target, None)
        return None


def max_calls(tool: NameSpec, n: int) -> Contract:
    """At most ``n`` calls of ``tool`` in a run (runaway loops, retry storms)."""
    tool_text = _name_matcher(tool, "tool")[1].removeprefix("tool ")
    return at_most(n, step.tool(tool)).named(f"at most {n} {tool_text} calls")


# -- tool definitions (MCP) ------------------------------------------------------------------

TOOL_CHANGES_ATTR = "mcp_tool_changes"
"""The step attribute where the MCP boundary records how a ``tools/list`` differs from the pins."""


def tool_definitions_stable() -> Contract:
    """No tool changes its definition after it was pinned: the "rug pull" defence for MCP.

    The MCP boundary (``mattrace mcp``, ``mattrace.integrations.mcp.instrument``) pins every
    tool's description, schemas and annotations at the session's first ``tools/list`` (or
    from a lock file) and records on each later listing what changed: a description or
    schema, a new tool, a removed one, a rename. This fails at the first listing that
    changed anything, naming the changes; its witness is the pinning listing and that one.
    """
    return _ToolDefinitionsStable().named("tool definitions stable")


class _ToolDefinitionsStable(Contract):
    def describe(self) -> str:
        return "tool_definitions_stable()"

    def monitor(self) -> Monitor:
        return _ToolDefinitionsMonitor(self)


class _ToolDefinitionsMonitor(Monitor):
    __slots__ = ("pinned_at",)

    def __init__(self, contract: Contract) -> None:
        super().__init__(contract)
        self.pinned_at: int | None = None

    def _save(self) -> Any:
        return (self.pinned_at,)

    def _restore(self, state: Any) -> None:
        (self.pinned_at,) = state

    def _step(self, s: Step) -> Verdict | None:
        mcp = s.attrs.get("mcp")
        if not (isinstance(mcp, dict) and mcp.get("method") == "tools/list"):
            return None
        changes = s.attrs.get(TOOL_CHANGES_ATTR)
        if not changes:
            if self.pinned_at is None:
                self.pinned_at = s.index
            return None
        said = [_tool_change(c) for c in changes if isinstance(c, dict)] or [repr(changes)]
        more = f" and {len(said) - 3} more" if len(said) > 3 else ""
        against = (f"the listing at step {self.pinned_at}" if self.pinned_at is not None
                   else f"the pinned definitions ({mcp.get('pinned_by', 'a lock file')})")
        witness = (s.index,) if self.pinned_at is None else (self.pinned_at, s.index)
        return self.failed(s.index, f"the tools listed at step {s.index} differ from {against}: "
                                    f"{'; '.join(said[:3])}{more}", witness)


def _tool_change(change: dict[str, Any]) -> str:
    kind, tool = change.get("change"), change.get("tool")
    if kind == "renamed":
        return f"{change.get('from')!r} was renamed to {tool!r}"
    if kind == "new":
        return f"{tool!r} is new"
    if kind == "removed":
        return f"{tool!r} was removed"
    return f"the {kind} of {tool!r} changed"


# -- destructive calls (MCP) -------------------------------------------------------------------

_DECLARED = frozenset({"annotations", "_meta labels", "configured"})
"""How a call's marks were decided when the server (or the user) said something about the tool."""


def no_destructive_call(allow: Sequence[str] = (), *, unannotated: bool = True) -> Contract:
    """No call of an MCP tool marked destructive, except those ``allow`` names (globs allowed).

    The MCP boundary records on each ``tools/call`` step whether the tool is destructive
    (``attrs["mcp"]["destructive"]``), read from its annotations with the specification's
    defaults: ``destructiveHint`` true, or no annotations at all, makes a tool that is not
    ``readOnlyHint`` destructive. This fails at the first such call; its witness is the
    ``tools/list`` that declared the tool, when there was one, and the call.

    Args:
        allow: tool names or globs whose destructive calls are expected (``["git_reset"]``).
        unannotated: also fail at a tool that is destructive only by the MCP defaults (it has
            no annotations, or was never listed); ``False`` trusts only what a server declared.

    Raises:
        ContractError: ``allow`` is not a list of names.
    """
    if isinstance(allow, str) or not all(isinstance(a, str) and a for a in allow):
        raise ContractError(f"no_destructive_call(allow=...) takes a list of tool names or globs, got {allow!r}")
    return _NoDestructiveCall(tuple(allow), unannotated).named("no destructive calls")


class _NoDestructiveCall(Contract):
    def __init__(self, allow: tuple[str, ...], unannotated: bool) -> None:
        self.allow = allow
        self.unannotated = unannotated

    def describe(self) -> str:
        args = [f"allow={list(self.allow)!r}"] if self.allow else []
        args += [] if self.unannotated else ["unannotated=False"]
        return f"no_destructive_call({', '.join(args)})"

    def monitor(self) -> Monitor:
        return _NoDestructiveMonitor(self)


class _NoDestructiveMonitor(Monitor):
    __slots__ = ("allow", "listed_at", "unannotated")

    def __init__(self, contract: _NoDestructiveCall) -> None:
        super().__init__(contract)
        self.allow = contract.allow
        self.unannotated = contract.unannotated
        self.listed_at: dict[str, tuple[int, Any]] = {}   # tool -> (its latest listing, its annotations)

    def _step(self, s: Step) -> Verdict | None:
        mcp = s.attrs.get("mcp")
        if not isinstance(mcp, dict):
            return None
        if mcp.get("method") == "tools/list" and isinstance(s.result, dict):
            for tool in s.result.get("tools") or ():
                if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                    self.listed_at[tool["name"]] = (s.index, tool.get("annotations"))
            return None
        if s.kind is not StepKind.TOOL or mcp.get("destructive") is not True or s.target is None:
            return None
        if any(fnmatch.fnmatchcase(s.target, a) for a in self.allow):
            return None
        why = mcp.get("marked_by")
        declared = why in _DECLARED
        if not declared and not self.unannotated:
            return None
        listed, annotations = self.listed_at.get(s.target, (None, None))
        if why == "annotations":
            hint = isinstance(annotations, dict) and annotations.get("destructiveHint") is True
            said = ("its annotations say destructiveHint: true" if hint else
                    "its annotations leave destructiveHint at its default, true")
            said += f" (listed at step {listed})" if listed is not None else ""
        elif declared:
            said = f"it is marked destructive by {why}"
        else:
            said = f"{why} make it destructive (annotate it readOnlyHint or destructiveHint: false, or pass " \
                   "unannotated=False)"
        witness = (listed, s.index) if listed is not None else (s.index,)
        return self.failed(s.index, f"{describe_step(s)} at step {s.index} is a destructive MCP call: {said}",
                           witness)
