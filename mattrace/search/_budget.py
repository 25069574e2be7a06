"""What a search may spend, what it has spent, and the guard that stops it in time.

Spending is read from the recorded ``llm`` steps (their ``tokens`` and ``cost_usd``
attrs, which come from litellm's usage and cost), so the numbers a search reports are
the ones anyone can recount from its traces. Limits are enforced twice: between runs (a
run starts only while every limit has room), and inside a run, before each LLM call: a
call whose expected cost (the dearest call seen so far) would cross a limit is refused
and that run is discarded. So with calls that cost about what earlier ones did, a search
never spends past its budget; a live call far dearer than any before it can overshoot by
that one call, and the report shows the real totals either way.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import Any

from mattrace.errors import SearchError
from mattrace.recording.interceptors import GOVERNANCE_ORDER, Answer, Call, CallOutcome
from mattrace.recording.recorder import Recorder
from mattrace.trace import Step, StepKind

__all__ = ["Budget", "BudgetGuard", "OutOfBudget", "Spend"]


@dataclass(frozen=True)
class Budget:
    """Limits on a search; ``None`` means no limit. With no limit at all, ``runs=100``."""

    runs: int | None = None
    llm_calls: int | None = None
    tokens: float | None = None
    usd: float | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            whole = f.name in ("runs", "llm_calls")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or value < 0 or (whole and not float(value).is_integer()):
                kind = "a whole number >= 0" if whole else "a number >= 0"
                raise SearchError(f"Budget: {f.name} must be {kind} or None, got {value!r}")
            if whole:
                object.__setattr__(self, f.name, int(value))
        if all(getattr(self, f.name) is None for f in fields(self)):
            object.__setattr__(self, "runs", 100)

    @classmethod
    def parse(cls, text: str) -> Budget:
        """``runs=50,tokens=2e5,usd=1`` (the form ``--mattrace-budget`` takes)."""
        known = {f.name for f in fields(cls)}
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, eq, raw = part.partition("=")
            key = key.strip()
            if not eq or key not in known:
                raise SearchError(f"budget {text!r}: expected name=value pairs with names "
                                  f"{', '.join(sorted(known))}, got {part!r}")
            try:
                values[key] = float(raw)
            except ValueError:
                raise SearchError(f"budget {text!r}: {key} must be a number, got {raw.strip()!r}") from None
        return cls(**values)  # type: ignore[arg-type]

    def capped(self, cap: Budget | None) -> Budget:
        """The tighter of this budget and ``cap`` on every limit."""
        if cap is None:
            return self
        def tighter(a: Any, b: Any) -> Any:
            return b if a is None else a if b is None else min(a, b)
        return Budget(**{f.name: tighter(getattr(self, f.name), getattr(cap, f.name)) for f in fields(self)})

    def __str__(self) -> str:
        parts = [f"{f.name}={_number(getattr(self, f.name))}" for f in fields(self)
                 if getattr(self, f.name) is not None]
        return f"Budget({', '.join(parts)})"


@dataclass
class Spend:
    """What a search has used so far, recounted from its recorded ``llm`` steps."""

    runs: int = 0
    llm_calls: int = 0
    tokens: int = 0
    usd: float = 0.0
    started: float = field(default_factory=time.monotonic)
    dearest_tokens: int = 0
    dearest_usd: float = 0.0

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def add_step(self, step: Step) -> None:
        tokens, usd = step_cost(step)
        self.llm_calls += 1
        self.tokens += tokens
        self.usd += usd
        self.dearest_tokens = max(self.dearest_tokens, tokens)
        self.dearest_usd = max(self.dearest_usd, usd)

    def over(self, budget: Budget, *, calls: int = 0, tokens: float = 0, usd: float = 0,
             runs: int = 0) -> str | None:
        """The first limit that spending this much more would cross, said in words, or None."""
        checks: list[tuple[str, float | None, float, float]] = [
            ("runs", budget.runs, self.runs, runs),
            ("llm_calls", budget.llm_calls, self.llm_calls, calls),
            ("tokens", budget.tokens, self.tokens, tokens),
            ("usd", budget.usd, self.usd, usd),
        ]
        for name, limit, spent, more in checks:
            if limit is not None and spent + more > limit + 1e-12:
                return f"{name} limit {_number(limit)} reached (spent {_number(spent)})"
        if budget.seconds is not None and self.seconds >= budget.seconds:
            return f"seconds limit {_number(budget.seconds)} reached (spent {self.seconds:.1f})"
        return None

    def as_dict(self) -> dict[str, float]:
        return {"runs": self.runs, "llm_calls": self.llm_calls, "tokens": self.tokens,
                "usd": round(self.usd, 6), "seconds": round(self.seconds, 3)}


def _number(value: float) -> str:
    """Whole numbers in full (``runs=1234567``), others short (``usd=0.5``, ``tokens=2e+05`` stays exact)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def step_cost(step: Step) -> tuple[int, float]:
    """(tokens, usd) of one ``llm`` step as recorded (0 where the provider said nothing)."""
    tokens = step.attrs.get("tokens") or {}
    total = tokens.get("total") if isinstance(tokens, dict) else None
    cost = step.attrs.get("cost_usd")
    return (int(total) if isinstance(total, int | float) else 0,
            float(cost) if isinstance(cost, int | float) else 0.0)


class OutOfBudget(BaseException):
    """Raised inside a run to stop it before an LLM call the budget cannot pay for.

    A ``BaseException``, like ``KeyboardInterrupt``: the code under test's ``except
    Exception`` must not swallow it and carry on spending.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BudgetGuard:
    """Interceptor (first in the chain) that counts a run's LLM calls and refuses the unaffordable one."""

    name = "budget"
    order = GOVERNANCE_ORDER - 50

    def __init__(self, budget: Budget, spend: Spend, recorder: Recorder) -> None:
        self.budget = budget
        self.spend = spend
        self.recorder = recorder
        self._seen = 0

    def catch_up(self) -> None:
        """Count the LLM steps recorded since the last look."""
        for step in self.recorder.steps_since(self._seen):
            if step.kind is StepKind.LLM:
                self.spend.add_step(step)
        self._seen = self.recorder.next_index

    def before(self, call: Call) -> Answer | None:
        if call.kind is not StepKind.LLM:
            return None
        self.catch_up()
        reason = self.spend.over(self.budget, calls=1, tokens=self.spend.dearest_tokens,
                                 usd=self.spend.dearest_usd)
        if reason is not None:
            call.refused = True   # not made, so not recorded: the run's end step carries the reason
            return Answer(error=OutOfBudget(f"{reason}; the next LLM call was not made"))
        return None

    def after(self, call: Call, outcome: CallOutcome) -> CallOutcome:
        return outcome

    def close(self) -> None:
        """Nothing to release: the budget outlives the run it guarded."""
