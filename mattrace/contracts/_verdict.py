"""Verdicts, violations and the report ``mattrace.check`` returns.

Plain frozen dataclasses, not pydantic models: a monitor creates one per settled contract,
and a check of a million-step trace must not pay for validation it does not need.

A verdict never passes silently. A ``PASS`` that held only because the contract never had
anything to look at (a tool name that appears nowhere in the trace, an implication whose
``if`` part never fired) carries a ``vacuous`` reason; on a trace that does not hold the
whole run (an unsealed or torn file) a contract that needs the end of the run is
``INCOMPLETE``, never ``PASS``. docs/contracts.md defines both, contract by contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

__all__ = ["Report", "Severity", "Status", "Verdict", "Violation"]

Severity = Literal["safety", "quality"]


class Status(StrEnum):
    """Three values on a prefix of a run; only ``PASS`` and ``FAIL`` once it has ended.

    ``INCOMPLETE`` is the final verdict of a contract that needs the end of the run
    (``eventually``, ``responds``, ``terminates``, ``within``) on a trace that does not hold
    the end: the recording was cut off, so neither ``PASS`` nor ``FAIL`` would be true.
    """

    PASS = "pass"
    FAIL = "fail"
    PENDING = "pending"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class Violation:
    """A failed contract: the first violating step, why, and the steps that prove it.

    ``step`` is the smallest index whose prefix is already violated, or the last step (the
    ``end`` step of a recorded run) for properties that can only fail once the run is over;
    it is None for an empty trace, and for a vacuous pass that strict mode turned into a
    failure (no step violated anything: the contract never applied).
    """

    contract: str
    step: int | None
    reason: str
    witness: tuple[int, ...] = ()
    severity: Severity = "safety"

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able form for ``--json`` output, JUnit properties and the store."""
        return {"contract": self.contract, "step": self.step, "reason": self.reason,
                "witness": list(self.witness), "severity": self.severity}


@dataclass(frozen=True)
class Verdict:
    """One contract's verdict on a trace (or a prefix of it)."""

    contract: str
    status: Status
    severity: Severity = "safety"
    violation: Violation | None = None
    step: int | None = None
    """The step at which the verdict was settled (None while pending or when decided at the end)."""
    vacuous: str | None = None
    """On a ``PASS``: why it passed only vacuously (the contract never applied to this trace), else None."""
    reason: str | None = None
    """On an ``INCOMPLETE`` verdict: why it could not be decided."""

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL

    @property
    def incomplete(self) -> bool:
        return self.status is Status.INCOMPLETE

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able form for ``--json`` output."""
        return {"contract": self.contract, "status": self.status.value, "severity": self.severity,
                "step": self.step, "vacuous": self.vacuous, "reason": self.reason,
                "violation": self.violation.to_json_dict() if self.violation else None}

    def strict(self) -> Verdict:
        """This verdict under strict mode: a vacuous pass becomes a failure (at no step)."""
        if self.status is not Status.PASS or self.vacuous is None:
            return self
        violation = Violation(self.contract, None, f"vacuous: {self.vacuous}", (), self.severity)
        return replace(self, status=Status.FAIL, violation=violation)


@dataclass(frozen=True)
class Report:
    """All verdicts of one check, in the order the contracts were given."""

    verdicts: tuple[Verdict, ...]
    trace_name: str | None = None
    steps: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    incomplete: str | None = None
    """Why the checked trace may not hold the whole run (unsealed, torn), or None when it does."""

    @property
    def violations(self) -> list[Violation]:
        """Every violation, earliest first violating step first (ties: contract order)."""
        found = [v.violation for v in self.verdicts if v.violation is not None]
        return sorted(found, key=lambda v: float("inf") if v.step is None else v.step)

    @property
    def first_violation(self) -> Violation | None:
        """The earliest violation over all contracts, or None when every contract passed."""
        found = self.violations
        return found[0] if found else None

    @property
    def ok(self) -> bool:
        """True when no contract failed (an ``INCOMPLETE`` verdict is not a failure: see :attr:`complete`)."""
        return all(v.status is not Status.FAIL for v in self.verdicts)

    @property
    def complete(self) -> bool:
        """True when the trace held the whole run and so every verdict is final."""
        return self.incomplete is None and not any(v.status is Status.INCOMPLETE for v in self.verdicts)

    @property
    def vacuous(self) -> list[Verdict]:
        """The verdicts that passed only vacuously, in contract order."""
        return [v for v in self.verdicts if v.status is Status.PASS and v.vacuous is not None]

    @property
    def undecided(self) -> list[Verdict]:
        """The ``INCOMPLETE`` verdicts: contracts the cut-off trace could not decide."""
        return [v for v in self.verdicts if v.status is Status.INCOMPLETE]

    def strict(self) -> Report:
        """This report under strict mode: every vacuous pass becomes a failure."""
        if not self.vacuous:
            return self
        return replace(self, verdicts=tuple(v.strict() for v in self.verdicts))

    def safety_violations(self) -> list[Violation]:
        """Violations of ``safety`` contracts: the ones that fail a test."""
        return [v for v in self.violations if v.severity == "safety"]

    def __iter__(self) -> Iterator[Verdict]:
        return iter(self.verdicts)

    def __len__(self) -> int:
        return len(self.verdicts)

    def __getitem__(self, name: str) -> Verdict:
        for v in self.verdicts:
            if v.contract == name:
                return v
        raise KeyError(f"no contract named {name!r} in this report; contracts: "
                       + ", ".join(repr(v.contract) for v in self.verdicts))

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able form for ``mattrace check --json``."""
        first = self.first_violation
        return {"trace": self.trace_name, "steps": self.steps, "ok": self.ok, "complete": self.complete,
                "incomplete": self.incomplete, "vacuous": [v.contract for v in self.vacuous],
                "first_violation": first.to_json_dict() if first else None,
                "verdicts": [v.to_json_dict() for v in self.verdicts]} | self.extra
