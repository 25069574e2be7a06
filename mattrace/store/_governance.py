"""Governance decisions in the store: the ``decisions`` rows and the allow / rewrite / block shares.

Each ``governance`` step of an ingested trace (a :class:`mattrace.governance.Governor`
decision, recorded just before the action it rules on) becomes a row of ``decisions``: the
acting agent, the call's kind and target, the decision, the rule that made it, the reason,
whether an approver decided (escalation), and the action's original and rewritten
arguments. The rows are filled in bulk from the typed steps, only for batches that hold
governance steps. The ``governance`` view and :meth:`Store.governance` count them per group
(agent, tool, rule, decision, and every metric group key) with each share's Wilson interval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mattrace.store._grouping import GroupKeys, run_filter
from mattrace.store._metrics import Rate, _rate

__all__ = ["DECISIONS", "GOVERNANCE_KEYS", "GovernanceRow", "decision_rows_sql", "governance_sql"]

DECISIONS = ("allow", "rewrite", "block")
# a decision's own keys are columns of decisions; the trace has an agent of its own, hence the d_ aliases
_KEYS = GroupKeys("governance", ("agent", "call_kind", "decision", "rule", "tool"), alias="d_")
GOVERNANCE_KEYS: tuple[str, ...] = _KEYS.valid


def decision_rows_sql(traces: str) -> str:
    """``INSERT INTO decisions`` for the governance steps of the traces that ``traces`` (a subquery) selects.

    The step's target is ``<call kind>:<call target>`` (``tool:send_email``); its args say
    the decision, the rule, the reason, the acting agent (the step's own agent is the
    governor's), ``escalated`` when an approver decided, and the action's arguments.
    """
    return f"""
    INSERT INTO decisions
    WITH g AS (
        SELECT s.trace_id, t.run_id, s.idx, s.agent, s.target, s.content, s.attrs,
               json_extract_string(s.args, ['$.agent', '$.decision', '$.rule', '$.reason', '$.escalated']) AS a,
               json_extract(s.args, '$.original') AS original, json_extract(s.args, '$.rewritten') AS rewritten
        FROM steps s JOIN traces t USING (trace_id)
        WHERE s.kind = 'governance' AND s.trace_id IN {traces})
    SELECT trace_id, run_id, idx, coalesce(a[1], agent),
           CASE WHEN contains(target, ':') THEN split_part(target, ':', 1) END,
           CASE WHEN contains(target, ':') THEN substr(target, strpos(target, ':') + 1) ELSE target END,
           coalesce(a[2], json_extract_string(attrs, '$.decision')), a[3], coalesce(a[4], content),
           coalesce(TRY_CAST(a[5] AS BOOLEAN), false), original, rewritten
    FROM g"""


def governance_sql(by: tuple[str, ...] | list[str], *, run_id: str | None = None,
                   names: tuple[str, ...] | None = None, replays: bool = False) -> str:
    """Decisions per group of ``by``: counts of allow, rewrite, block and escalated, each share with its interval.

    ``names`` renames the group columns (default ``g0``, ``g1``, …); ``replays`` counts traces
    replayed from cassettes too.

    Raises:
        StoreError: an item of ``by`` is not one of :data:`GOVERNANCE_KEYS`.
    """
    g = _KEYS.grouping(by, names)
    shares = "".join(
        f"{n} / decisions AS {d}_share, wilson_low({n}, decisions) AS {d}_low, "
        f"wilson_high({n}, decisions) AS {d}_high, "
        for d, n in (("allow", "allowed"), ("rewrite", "rewritten"), ("block", "blocked")))
    return f"""
    WITH d AS (
        SELECT {g.select}trace_id, run_id, decision, escalated
        FROM (SELECT t.*, {_KEYS.own_columns("d")}, d.decision, d.escalated
              FROM decisions d JOIN traces t USING (trace_id))
        {run_filter(run_id, replays=replays)}),
    agg AS (
        SELECT {g.columns}count(DISTINCT run_id) AS runs, count(DISTINCT trace_id) AS traces, count(*) AS decisions,
               count(*) FILTER (WHERE decision = 'allow') AS allowed,
               count(*) FILTER (WHERE decision = 'rewrite') AS rewritten,
               count(*) FILTER (WHERE decision = 'block') AS blocked,
               count(*) FILTER (WHERE escalated) AS escalated
        FROM d {g.group_by})
    SELECT {g.labelled}runs, traces, decisions, allowed, rewritten, blocked, escalated, {shares.rstrip(', ')}
    FROM agg {g.order_by}"""


@dataclass(frozen=True)
class GovernanceRow:
    """The governance decisions in one group (docs/store.md).

    ``decisions`` counts governance steps (one per mediated action); ``allowed``,
    ``rewritten`` and ``blocked`` split them (an escalated action is allowed or blocked by its
    approver, and also counts in ``escalated``). ``allow``, ``rewrite`` and ``block`` are the
    shares of ``decisions``, each a :class:`Rate` with its Wilson 95 % interval. ``traces`` and
    ``runs`` count the traces and store runs the decisions come from.
    """

    group: dict[str, Any]
    runs: int
    traces: int
    decisions: int
    allowed: int
    rewritten: int
    blocked: int
    escalated: int
    allow: Rate
    rewrite: Rate
    block: Rate

    @classmethod
    def from_row(cls, group: dict[str, Any], r: dict[str, Any]) -> GovernanceRow:
        """Build from one row of :func:`governance_sql` (a dict by column name)."""
        n = r["decisions"]
        return cls(group=group, runs=int(r["runs"]), traces=int(r["traces"]), decisions=int(n),
                   allowed=int(r["allowed"]), rewritten=int(r["rewritten"]), blocked=int(r["blocked"]),
                   escalated=int(r["escalated"]),
                   allow=_rate(r["allowed"], n, r["allow_share"], r["allow_low"], r["allow_high"]),
                   rewrite=_rate(r["rewritten"], n, r["rewrite_share"], r["rewrite_low"], r["rewrite_high"]),
                   block=_rate(r["blocked"], n, r["block_share"], r["block_low"], r["block_high"]))

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able form for ``mattrace metrics --governance --json``."""
        return asdict(self)
