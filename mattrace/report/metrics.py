"""Metric tables for the terminal: ``mattrace metrics``, ``mattrace runs`` and the pytest summary.

``containment_table`` shows how faulted runs fared, per fault class (``mattrace metrics
--containment``); ``governance_table`` how the governor ruled on actions, per rule, agent
or tool (``mattrace metrics --governance``).

Every rate is printed with its Wilson 95 % interval, ``83% [64-93]``: with the handful of
trials a test suite runs, the interval is the finding as much as the rate is. Tables use a
light box and no colour that carries meaning, so they read the same in a plain CI log.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from mattrace.report._format import compact
from mattrace.store import ComplianceRow, ContainmentRow, GovernanceRow, MetricsRow, Rate, RunInfo

__all__ = ["compliance_table", "containment_table", "format_rate", "governance_table", "left_out_lines",
           "metrics_table", "runs_table"]

_NONE = "\u2013"  # en dash: nothing measured


def format_rate(rate: Rate) -> str:
    """``83% [64-93]`` (value and Wilson 95 % interval; an en dash in the output), or a dash when
    nothing was measured."""
    return str(rate)


def _value(value: Any) -> str:
    return _NONE if value is None else str(value)


def _group_value(key: str, value: Any) -> str:
    """A group's label; a whole config reads as ``model=gpt-4o temperature=0`` (it wraps at spaces)."""
    if key == "config" and isinstance(value, str) and value.startswith("{"):
        try:
            config = json.loads(value)
        except ValueError:
            return value
        if isinstance(config, dict):
            return " ".join(f"{k}={v if isinstance(v, str) else compact(v)}" for k, v in config.items()) or "{}"
    return _value(value)


def _group_columns(table: Table, rows: Sequence[MetricsRow] | Sequence[ComplianceRow] | Sequence[ContainmentRow]
                   | Sequence[GovernanceRow]) -> list[str]:
    keys = list(rows[0].group) if rows else []
    for key in keys:  # wide enough that a config reads as a few lines, not a column of fragments
        longest = max(len(_group_value(key, r.group[key])) for r in rows)
        table.add_column(key, overflow="fold", min_width=min(longest, 6))
    return keys


class _NarrowingTable(Table):
    """A table that switches to short headers when the console is too narrow for the long ones.

    An 80-column CI log cannot hold eight columns headed ``terminated`` or ``compliance``
    and still show every rate's interval; renaming at render time is the only moment the
    width is known.
    """

    short_headers: dict[str, str]
    narrow_below: int = 0

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if options.max_width < self.narrow_below:
            for column in self.columns:
                if isinstance(column.header, str) and column.header in self.short_headers:
                    column.header = self.short_headers[column.header]
                    column.min_width = 8
        yield from super().__rich_console__(console, options)


_SHORT = {"terminated": "ends ok", "compliance": "complies", "factuality": "factual"}


def metrics_table(rows: Sequence[MetricsRow], *, title: str | None = "mattrace metrics") -> Table:
    """One row per group: traces, task success, termination, compliance, factuality, pass^k, flip rate.

    pass^k's column is headed with its k when every group uses the same one; otherwise each
    cell says its own k.
    """
    ks = {r.k for r in rows}
    same_k = len(ks) == 1 and None not in ks
    # the box's column separators are the only spacing: an 80-column CI log fits every column
    table = _NarrowingTable(
        title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False, padding=0,
        caption="rates with Wilson 95% intervals; pass^k: unbiased estimator over tasks "
                "(same test and config, any seed)", caption_justify="left")
    table.short_headers = _SHORT
    table.narrow_below = 100
    keys = _group_columns(table, rows)
    table.add_column("traces", justify="right", no_wrap=True)
    # a narrow terminal wraps a rate between its value and its interval, never inside either
    for header in ("success", "terminated", "compliance", "factuality",
                   f"pass^{next(iter(ks))}" if same_k else "pass^k", "flip rate"):
        table.add_column(header, justify="right", min_width=8 if " " in header else max(8, len(header)))
    for r in rows:
        pass_k = format_rate(r.pass_k)
        if not same_k and r.k is not None and r.pass_k.value is not None:
            pass_k += f" k={r.k}"
        factuality = format_rate(r.factuality)
        if r.claims_propagated:
            factuality += f" ({r.claims_propagated} propagated)"
        table.add_row(*(_group_value(k, r.group[k]) for k in keys), str(r.traces), format_rate(r.success),
                      format_rate(r.termination), format_rate(r.compliance), factuality, pass_k,
                      format_rate(r.flip))
    return table


def compliance_table(rows: Sequence[ComplianceRow], *, per: str = "contract",
                     title: str | None = "contract compliance") -> Table:
    """PASS verdicts / verdicts per contract (or per trace), failing ones first within a group."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False, padding=0)
    keys = _group_columns(table, rows)
    table.add_column(per, overflow="fold", min_width=12)
    if per == "trace":
        table.add_column("test", overflow="fold")
    else:
        table.add_column("severity")
    table.add_column("checked", justify="right", no_wrap=True)
    table.add_column("failed", justify="right", no_wrap=True)
    table.add_column("compliance", justify="right", min_width=10)
    for r in rows:
        extra = _value(r.test) if per == "trace" else _value(r.severity)
        table.add_row(*(_group_value(k, r.group[k]) for k in keys), r.subject, extra, str(r.rate.total),
                      str(r.failed), format_rate(r.rate))
    return table


def containment_table(rows: Sequence[ContainmentRow], *, title: str | None = "fault containment") -> Table:
    """One row per group of faulted runs: how many, contained (degraded ones included), degraded,
    escaped, the containment rate and the degraded share, each rate with its interval."""
    derived = sum(r.derived for r in rows)
    caption = "contained includes degraded (contained, task failed); rates with Wilson 95% intervals"
    if derived:
        caption += (f"; {derived} run{'s' if derived != 1 else ''} without a results-file class judged by the "
                    "store (termination, stored safety verdicts, side-effect taint)")
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False, padding=0,
                  caption=caption, caption_justify="left")
    keys = _group_columns(table, rows)
    for header in ("faulted", "contained", "degraded", "escaped"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("containment", justify="right", min_width=11)
    table.add_column("degradation", justify="right", min_width=11)
    for r in rows:
        table.add_row(*(_group_value(k, r.group[k]) for k in keys), str(r.faulted), str(r.contained),
                      str(r.degraded), str(r.escaped), format_rate(r.containment), format_rate(r.degradation))
    return table


def governance_table(rows: Sequence[GovernanceRow], *, title: str | None = "governance decisions") -> Table:
    """One row per group of governance decisions: how many, allowed, rewritten, blocked, escalated,
    and the allow, rewrite and block shares, each with its interval."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False, padding=0,
                  caption="shares of decisions with Wilson 95% intervals; escalated: decided by an approver "
                  "(counted as allowed or blocked)", caption_justify="left")
    keys = _group_columns(table, rows)
    for header in ("decisions", "allowed", "rewritten", "blocked", "escalated"):
        table.add_column(header, justify="right", no_wrap=True)
    for header in ("allow", "rewrite", "block"):
        table.add_column(header, justify="right", min_width=8)
    for r in rows:
        table.add_row(*(_group_value(k, r.group[k]) for k in keys), str(r.decisions), str(r.allowed),
                      str(r.rewritten), str(r.blocked), str(r.escalated), format_rate(r.allow),
                      format_rate(r.rewrite), format_rate(r.block))
    return table


def runs_table(runs: Sequence[RunInfo], *, title: str | None = "runs") -> Table:
    """The runs, newest first: when, how started, how many traces, success, failed verdicts."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False, padding=0)
    table.add_column("run", overflow="fold", min_width=12)
    table.add_column("started (UTC)", min_width=10)
    table.add_column("source", overflow="fold")
    table.add_column("traces", justify="right", min_width=6)
    table.add_column("steps", justify="right", no_wrap=True)
    table.add_column("success", justify="right", min_width=8)
    table.add_column("failed verdicts", justify="right", min_width=7)
    for r in runs:
        started = r.started.strftime("%Y-%m-%d %H:%M:%S") if r.started else _NONE
        traces = str(r.traces) + (f" ({r.unsealed} unsealed)" if r.unsealed else "")
        table.add_row(r.run_id, started, _value(r.source), traces, str(r.steps), format_rate(r.success),
                      str(r.failed_verdicts))
    return table


def left_out_lines(left_out: dict[str, int]) -> list[str]:
    """The sentences under a metric table that say which stored traces it did not count, and how to count them.

    Args:
        left_out: ``replays`` (traces replayed from cassettes, left out unless asked for) and
            ``broken`` (runs that broke off on a cassette mismatch, never counted).
    """
    lines = []
    replays, broken = left_out.get("replays", 0), left_out.get("broken", 0)
    if replays:
        lines.append(f"{replays} replayed trace{'s' if replays != 1 else ''} left out (answered from cassettes, they "
                     "repeat recorded runs); mattrace metrics --replays counts them")
    if broken:
        lines.append(f"{broken} trace{'s' if broken != 1 else ''} broke off on a cassette mismatch and count "
                     "nowhere (record them again)")
    return lines
