"""The runs listing: one row per run (a pytest session, a ``mattrace ingest``) with its counts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mattrace.store._grouping import run_filter
from mattrace.store._metrics import Rate, _rate

__all__ = ["RunInfo", "runs_sql"]


def runs_sql(limit: int, *, replays: bool = False) -> str:
    """Newest runs first; traces, steps, success and failed verdicts per run, counting the
    traces the metrics count (:func:`~mattrace.store._grouping.run_filter`): replays only when
    ``replays``, runs that broke off on a cassette mismatch never; ``left_out`` counts the rest."""
    return f"""
    SELECT r.run_id, r.started, r.finished, r.source, r.host, r.argv, r.workers,
           count(t.trace_id) AS traces, coalesce(sum(t.n_steps), 0) AS steps,
           count(t.trace_id) FILTER (WHERE t.success) AS successes,
           count(t.trace_id) FILTER (WHERE NOT t.sealed) AS unsealed,
           coalesce(sum(t.failed), 0) AS failed_verdicts,
           coalesce(any_value(o.stored), 0) - count(t.trace_id) AS left_out,
           wilson_low(count(t.trace_id) FILTER (WHERE t.success), count(t.trace_id)) AS low,
           wilson_high(count(t.trace_id) FILTER (WHERE t.success), count(t.trace_id)) AS high
    FROM runs r
    LEFT JOIN (SELECT * FROM trace_metrics {run_filter(None, replays=replays)}) t USING (run_id)
    LEFT JOIN (SELECT run_id, count(*) AS stored FROM trace_metrics GROUP BY run_id) o USING (run_id)
    GROUP BY ALL ORDER BY r.started DESC NULLS LAST, r.run_id DESC LIMIT {int(limit)}"""


@dataclass(frozen=True)
class RunInfo:
    """One run: when, where, how it was started, and what it produced."""

    run_id: str
    started: datetime | None
    finished: datetime | None
    source: str | None
    host: str | None
    argv: list[str] | None
    workers: list[str]
    traces: int
    steps: int
    unsealed: int
    failed_verdicts: int
    success: Rate
    left_out: int = 0
    """The run's traces the counts above leave out: replays (unless asked for) and runs that
    broke off on a cassette mismatch."""

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> RunInfo:
        """Build from one row of :func:`runs_sql`."""
        argv = json.loads(r["argv"]) if isinstance(r["argv"], str) else r["argv"]
        traces = int(r["traces"])
        return cls(run_id=r["run_id"], started=r["started"], finished=r["finished"], source=r["source"],
                   host=r["host"], argv=argv, workers=list(r["workers"] or []), traces=traces,
                   steps=int(r["steps"]), unsealed=int(r["unsealed"]), failed_verdicts=int(r["failed_verdicts"]),
                   success=_rate(r["successes"], traces, r["successes"] / traces if traces else None,
                                 r["low"], r["high"]), left_out=int(r["left_out"]))

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able form for ``mattrace runs --json`` (times as ISO-8601 UTC)."""
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat() + "Z"

        return {"run_id": self.run_id, "started": iso(self.started), "finished": iso(self.finished),
                "source": self.source, "host": self.host, "argv": self.argv, "workers": self.workers,
                "traces": self.traces, "steps": self.steps, "unsealed": self.unsealed,
                "failed_verdicts": self.failed_verdicts, "success": self.success.to_json_dict(),
                "left_out": self.left_out}
