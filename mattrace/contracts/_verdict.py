"""Verdicts, violations and the report ``mattrace.check`` returns.

Plain frozen dataclasses, not pydantic models: a monitor creates one per settled contract,
and a check of a million-step trace must not pay for validation it does not need.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

__all__ = ["Report", "Severity", "Status", "Verdict", "Violation"]

Severity = Literal["safety", "quality"]


class Status(StrEnum):
    """Three values on a prefix of a run; only ``PASS`` and ``FAIL`` once it has ended."""

    PASS = "pass"
    FAIL = "fail"
    PENDING = "pending"


@dataclass(frozen=True)
class Violation:
    """A failed contract: the first violating step, why, and the steps that prove it.

    ``step`` is the smallest index whose prefix is already violated, or the last step (the
    ``end`` step of a recorded run) for properties that can only fail once the run is over;
    it is None only for an empty trace.
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

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able form for ``--json`` output."""
        return {"contract": self.contract, "status": self.status.value, "severity": self.severity,
                "step": self.step,
                "violation": self.violation.to_json_dict() if self.violation else None}


@dataclass(frozen=True)
class Report:
    """All verdicts of one check, in the order the contracts were given."""

    verdicts: tuple[Verdict, ...]
    trace_name: str | None = None
    steps: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

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
        """True when no contract failed."""
        return all(v.status is not Status.FAIL for v in self.verdicts)

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
        return {"trace": self.trace_name, "steps": self.steps, "ok": self.ok,
                "first_violation": first.to_json_dict() if first else None,
                "verdicts": [v.to_json_dict() for v in self.verdicts]} | self.extra
