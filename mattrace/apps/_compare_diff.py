"""What sets the compared designs apart: each run by seed, the designs side by side, and whether they separate.

Rates with intervals answer "which design is better" only when the designs score
differently. Three rows of 100 % look like a tie and hide what did differ (steps, tokens,
cost, where a contract first broke), and rows without their seeds look identical even
when their runs were not. This module keeps the runs by (design, task, seed), sums them
per design, and says plainly when the comparison does not separate the designs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DesignSummary", "SeedRun", "separation", "summarize"]


@dataclass(frozen=True)
class SeedRun:
    """One (design, task, seed) run: how it ended, what it cost, and its first violation."""

    design: str
    task: str
    seed: int
    outcome: str
    """``ok``, ``failed`` (the oracle said no), ``error``, or another outcome status."""
    steps: int = 0
    tokens: int = 0
    usd: float = 0.0
    violation: str | None = None
    """The earliest violation, ``contract @ step N``, or None when every contract held."""

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DesignSummary:
    """One design's runs summed: what the metrics table's rates leave out."""

    design: str
    runs: int
    ok: int
    violated: int
    mean_steps: float
    tokens: int
    usd: float
    first_violations: tuple[str, ...]
    """The distinct first violations of its runs, most frequent first."""

    def to_json_dict(self) -> dict[str, Any]:
        return {**asdict(self), "first_violations": list(self.first_violations)}


def summarize(runs: Sequence[SeedRun], designs: Sequence[str]) -> list[DesignSummary]:
    """Per design (in ``designs`` order): runs, successes, violations, mean steps, tokens, cost."""
    out: list[DesignSummary] = []
    for design in designs:
        mine = [r for r in runs if r.design == design]
        counts: dict[str, int] = {}
        for r in mine:
            if r.violation is not None:
                counts[r.violation] = counts.get(r.violation, 0) + 1
        out.append(DesignSummary(
            design=design, runs=len(mine), ok=sum(r.outcome == "ok" for r in mine),
            violated=sum(r.violation is not None for r in mine),
            mean_steps=sum(r.steps for r in mine) / len(mine) if mine else 0.0,
            tokens=sum(r.tokens for r in mine), usd=sum(r.usd for r in mine),
            first_violations=tuple(sorted(counts, key=lambda v: (-counts[v], v)))))
    return out


def separation(summaries: Sequence[DesignSummary]) -> str | None:
    """None when the designs' outcomes differ; else a plain sentence saying they do not, and how to make them.

    Outcomes are success and contract compliance per run: when every design has the same
    share of both, the rates cannot rank them, whatever their steps or cost.
    """
    if len(summaries) < 2:
        return None
    shares = {(s.ok / s.runs if s.runs else 0.0, s.violated / s.runs if s.runs else 0.0) for s in summaries}
    if len(shares) > 1:
        return None
    first = summaries[0]
    ok = round(100 * first.ok / first.runs) if first.runs else 0
    bad = round(100 * first.violated / first.runs) if first.runs else 0
    costs = {(round(s.mean_steps, 2), s.tokens, round(s.usd, 6)) for s in summaries}
    rest = ("they differ only in steps, tokens or cost (above)" if len(costs) > 1
            else "nor do their steps, tokens or cost differ")
    return (f"this comparison does not separate the designs: every design succeeded in {ok} % of its runs "
            f"and violated a contract in {bad} %; {rest}. To separate them, make the comparison harder: "
            "more seeds (--seeds 50), more or harder tasks in the suite's TASKS, or faults injected into every run "
            "(--faults plan.toml) to see which design contains them")
