"""Contracts over Message-Action Traces: step predicates, trace operators, stock library.

```python
from mattrace.contracts import step, always, never, precedes, within, flows, since

CONTRACTS = [
    within(steps=40).named("terminates"),
    always(step.agent("writer") >> step.kind("message", "llm")).named("writer stays a writer"),
    precedes(step.message(agent="user", matches=r"\\byes\\b"), step.tool("send_email")),
    never(flows(step.untrusted(), into=step.side_effect())).named("no injected actions"),
]
report = mattrace.check(trace, CONTRACTS)
report.first_violation        # Violation(contract, step, reason, witness) or None
```

Every contract compiles to an online monitor (``contract.monitor()``) with
``observe(step) -> Verdict | None`` and ``finish() -> Verdict``; verdicts are three-valued
on a prefix and two-valued at the end, and every failure names its first violating step.

A pass that held only because the contract never applied (a tool name the trace does not
know, an ``if`` part that never fired) carries a ``vacuous`` reason, and on a trace cut off
before its end a contract that needs the end is ``INCOMPLETE``: see docs/contracts.md.
``NameRef`` is what :meth:`Contract.names` returns, for contracts of your own.

``contract_list`` and ``factuality_of`` are exported for mattrace's other packages (the
governance guard, the pytest plugin, the store and ``compare``), which check contract
arguments and count claims the same way ``check`` does.
"""

from mattrace.contracts._check import Checker, check, check_steps, contract_list
from mattrace.contracts._claims import (
    claims_supported,
    extract_claims,
    factuality_counts,
    factuality_of,
    no_unsupported_propagation,
)
from mattrace.contracts._contract import Contract, Monitor, describe_step
from mattrace.contracts._dataflow import untrusted_selector
from mattrace.contracts._each import each
from mattrace.contracts._files import load_contracts, parse_step_pattern
from mattrace.contracts._library import (
    confirmed_before,
    max_calls,
    no_action_after_error,
    no_destructive_call,
    no_untrusted_action,
    no_untrusted_context_action,
    stays_in_role,
    terminates,
    tool_definitions_stable,
)
from mattrace.contracts._operators import (
    AtMost,
    always,
    at_most,
    eventually,
    never,
    precedes,
    responds,
    within,
)
from mattrace.contracts._past import flows, once, since
from mattrace.contracts._predicates import NameRef, Pred
from mattrace.contracts._resolve import resolve_contracts
from mattrace.contracts._step import step
from mattrace.contracts._vacuity import TraceNames, unknown_names
from mattrace.contracts._verdict import Report, Severity, Status, Verdict, Violation

__all__ = [
    "always",
    "at_most",
    "AtMost",
    "check",
    "check_steps",
    "Checker",
    "claims_supported",
    "confirmed_before",
    "Contract",
    "contract_list",
    "describe_step",
    "each",
    "eventually",
    "extract_claims",
    "factuality_counts",
    "factuality_of",
    "flows",
    "load_contracts",
    "max_calls",
    "Monitor",
    "NameRef",
    "never",
    "no_action_after_error",
    "no_destructive_call",
    "no_unsupported_propagation",
    "no_untrusted_action",
    "no_untrusted_context_action",
    "once",
    "parse_step_pattern",
    "precedes",
    "Pred",
    "Report",
    "resolve_contracts",
    "responds",
    "Severity",
    "since",
    "Status",
    "stays_in_role",
    "step",
    "terminates",
    "tool_definitions_stable",
    "TraceNames",
    "unknown_names",
    "untrusted_selector",
    "Verdict",
    "Violation",
    "within",
]
