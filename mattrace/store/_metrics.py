"""The metric queries: one SQL builder behind the ``metrics`` view, ``Store.metrics`` and the CLI.

Every rate carries a Wilson 95 % interval (the ``wilson_low``/``wilson_high`` macros):
unlike the normal approximation it stays inside [0, 1] and stays honest for the small
counts a test suite produces (3 successes of 3 trials is "100% [44-100]", not "100% ± 0").

pass^k is the unbiased estimator of "k trials of a task all succeed": per task (same
test, same config but for the seed, same run) with n trials and c successes,
C(c, k)/C(n, k), averaged over the tasks with n >= k. Its interval treats the average as a
proportion over those tasks (Wilson with total = tasks, hits = pass^k * tasks): the tasks
are the independent units, the trials of one task are not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mattrace.errors import StoreError
from mattrace.store._grouping import METRIC_KEYS, run_filter

__all__ = ["ComplianceRow", "MetricsRow", "Rate", "compliance_sql", "metrics_sql"]

_DASH = "\u2013"  # en dash: a range, and readable in plain CI logs


def metrics_sql(by: tuple[str, ...] | list[str], *, run_id: str | None = None, k: int | None = None,
                names: tuple[str, ...] | None = None, replays: bool = False) -> str:
    """The metrics query: one row per group of ``by``, columns as in docs/store.md.

    ``names`` renames the group columns (default ``g0``, ``g1``, …); ``replays`` counts the
    traces replayed from cassettes too (:func:`~mattrace.store._grouping.run_filter`).

    Raises:
        StoreError: an item of ``by`` is not one of :data:`~mattrace.store.GROUP_KEYS`.
    """
    g = METRIC_KEYS.grouping(by, names)
    k_sql = "NULL" if k is None else str(int(k))
    return f"""
    WITH t AS (SELECT {g.select}* FROM trace_metrics {run_filter(run_id, replays=replays)}),
    tasks AS (
        SELECT {g.columns}run_id, test, config_key, count(*) AS n, count(*) FILTER (WHERE success) AS c,
               count(*) FILTER (WHERE terminated) AS term, sum(verdicts) AS verdicts, sum(passed) AS passed,
               sum(claims) AS claims, sum(claims_supported) AS supported,
               sum(claims_propagated) AS propagated, sum(n_steps) AS steps, sum(tokens) AS tokens,
               sum(cost_usd) AS cost_usd
        FROM t GROUP BY {g.columns}run_id, test, config_key),
    tk AS (SELECT *, coalesce({k_sql}::BIGINT, min(n) OVER ({g.partition_by})) AS k FROM tasks),
    agg AS (
        SELECT {g.columns}count(DISTINCT run_id) AS runs, count(*) AS tasks, sum(n) AS traces,
               sum(steps) AS steps, sum(c) AS successes, sum(term) AS terminated,
               sum(verdicts) AS verdicts, sum(passed) AS passed, coalesce(sum(claims), 0) AS claims,
               coalesce(sum(supported), 0) AS claims_supported, sum(propagated) AS claims_propagated,
               any_value(k) AS k, count(*) FILTER (WHERE n >= k) AS pass_k_tasks,
               avg(pass_hat_k(c, n, k)) FILTER (WHERE n >= k) AS pass_k,
               count(*) FILTER (WHERE n >= 2) AS multi_trial_tasks,
               count(*) FILTER (WHERE n >= 2 AND c > 0 AND c < n) AS flipped_tasks,
               sum(tokens) AS tokens, sum(cost_usd) AS cost_usd
        FROM tk {g.group_by})
    SELECT {g.labelled}runs, tasks, traces, steps,
        successes, successes / traces AS success_rate,
        wilson_low(successes, traces) AS success_low, wilson_high(successes, traces) AS success_high,
        terminated, terminated / traces AS termination_rate,
        wilson_low(terminated, traces) AS termination_low, wilson_high(terminated, traces) AS termination_high,
        verdicts, passed, CASE WHEN verdicts > 0 THEN passed / verdicts END AS compliance,
        wilson_low(passed, verdicts) AS compliance_low, wilson_high(passed, verdicts) AS compliance_high,
        claims, claims_supported, CASE WHEN claims > 0 THEN claims_supported / claims END AS factuality,
        wilson_low(claims_supported, claims) AS factuality_low,
        wilson_high(claims_supported, claims) AS factuality_high, claims_propagated,
        k, pass_k_tasks, pass_k, wilson_low(pass_k * pass_k_tasks, pass_k_tasks) AS pass_k_low,
        wilson_high(pass_k * pass_k_tasks, pass_k_tasks) AS pass_k_high,
        multi_trial_tasks, flipped_tasks,
        CASE WHEN multi_trial_tasks > 0 THEN flipped_tasks / multi_trial_tasks END AS flip_rate,
        wilson_low(flipped_tasks, multi_trial_tasks) AS flip_low,
        wilson_high(flipped_tasks, multi_trial_tasks) AS flip_high, tokens, cost_usd
    FROM agg WHERE traces > 0 {g.order_by}"""


def compliance_sql(by: tuple[str, ...] | list[str], per: str, *, run_id: str | None = None,
                   replays: bool = False) -> str:
    """PASS verdicts / verdicts per contract (or per trace), within each group of ``by``.

    Raises:
        StoreError: ``per`` is neither ``contract`` nor ``trace``, or an item of ``by`` is not one
            of :data:`~mattrace.store.GROUP_KEYS`.
    """
    if per not in ("contract", "trace"):
        raise StoreError(f"compliance is computed per 'contract' or per 'trace', not {per!r}")
    g = METRIC_KEYS.grouping(by)
    subject = "v.contract" if per == "contract" else "t.trace_id"
    return f"""
    WITH t AS (SELECT {g.select}* FROM trace_metrics {run_filter(run_id, replays=replays)})
    SELECT {g.columns}{subject} AS subject, any_value(t.test) AS test,
           CASE WHEN count(DISTINCT v.severity) = 1 THEN any_value(v.severity) END AS severity,
           count(*) AS total, count(*) FILTER (WHERE v.status = 'pass') AS passed,
           count(*) FILTER (WHERE v.status = 'fail') AS failed,
           count(*) FILTER (WHERE v.status = 'pass') / count(*) AS rate,
           wilson_low(count(*) FILTER (WHERE v.status = 'pass'), count(*)) AS low,
           wilson_high(count(*) FILTER (WHERE v.status = 'pass'), count(*)) AS high
    FROM verdicts v JOIN t USING (trace_id)
    GROUP BY {g.columns}{subject} ORDER BY {g.columns}{subject}"""


@dataclass(frozen=True)
class Rate:
    """``hits`` of ``total``, with its Wilson 95 % interval; ``value`` is None when ``total`` is 0."""

    hits: float
    total: int
    value: float | None
    low: float | None
    high: float | None

    def __str__(self) -> str:
        """``83% [64-93]`` (an en dash between the bounds), or a dash when there is nothing to measure."""
        if self.value is None or self.low is None or self.high is None:
            return _DASH
        return f"{self.value * 100:.0f}% [{self.low * 100:.0f}{_DASH}{self.high * 100:.0f}]"

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def _rate(hits: Any, total: Any, value: Any, low: Any, high: Any) -> Rate:
    return Rate(float(hits or 0), int(total or 0), None if value is None else float(value),
                None if low is None else float(low), None if high is None else float(high))


@dataclass(frozen=True)
class MetricsRow:
    """The metrics of one group of traces (see docs/store.md for each definition)."""

    group: dict[str, Any]
    runs: int
    tasks: int
    traces: int
    steps: int
    success: Rate
    termination: Rate
    compliance: Rate
    factuality: Rate
    claims_propagated: int | None
    k: int | None
    pass_k: Rate
    flip: Rate
    tokens: int | None
    cost_usd: float | None

    @classmethod
    def from_row(cls, group: dict[str, Any], r: dict[str, Any]) -> MetricsRow:
        """Build from one row of :func:`metrics_sql` (a dict by column name)."""
        pass_hits = (r["pass_k"] or 0.0) * (r["pass_k_tasks"] or 0)
        return cls(
            group=group, runs=int(r["runs"]), tasks=int(r["tasks"]), traces=int(r["traces"]),
            steps=int(r["steps"] or 0),
            success=_rate(r["successes"], r["traces"], r["success_rate"], r["success_low"], r["success_high"]),
            termination=_rate(r["terminated"], r["traces"], r["termination_rate"], r["termination_low"],
                              r["termination_high"]),
            compliance=_rate(r["passed"], r["verdicts"], r["compliance"], r["compliance_low"],
                             r["compliance_high"]),
            factuality=_rate(r["claims_supported"], r["claims"], r["factuality"], r["factuality_low"],
                             r["factuality_high"]),
            claims_propagated=None if r["claims_propagated"] is None else int(r["claims_propagated"]),
            k=None if r["k"] is None else int(r["k"]),
            pass_k=_rate(pass_hits, r["pass_k_tasks"], r["pass_k"], r["pass_k_low"], r["pass_k_high"]),
            flip=_rate(r["flipped_tasks"], r["multi_trial_tasks"], r["flip_rate"], r["flip_low"], r["flip_high"]),
            tokens=None if r["tokens"] is None else int(r["tokens"]),
            cost_usd=None if r["cost_usd"] is None else float(r["cost_usd"]))

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able form for ``mattrace metrics --json``."""
        return asdict(self)


@dataclass(frozen=True)
class ComplianceRow:
    """PASS verdicts / verdicts for one contract (or one trace) within a group."""

    group: dict[str, Any]
    subject: str
    test: str | None
    severity: str | None
    passed: int
    failed: int
    rate: Rate

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able form for ``mattrace metrics --per-contract --json``."""
        return asdict(self)
