"""The terminal view of a contract check: each failure with its first violating step in context.

A reader of a failed check asks "which step, why, and where did its input come from", so
each failing contract shows its one-sentence reason, then the steps around the first
violating step *plus* every witness step (the untrusted document an e-mail came from may
be far back), and the exact command that opens the trace there. The markers ``▶`` (the
violating step) and ``◆`` (a witness) carry the meaning; colour only decorates, and rich
drops it when output is not a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from mattrace.contracts import Report, Status, Violation
from mattrace.report._format import step_summary
from mattrace.report.excerpt import Excerpt, collect
from mattrace.report.terminal import KIND_STYLES, _cell, _marks
from mattrace.trace import Step, Trace

__all__ = ["CommandLine", "context_excerpt", "print_report", "render_report", "report_parts", "show_command"]

_STATUS_STYLES = {Status.PASS: "green", Status.FAIL: "bold red", Status.PENDING: "yellow",
                  Status.INCOMPLETE: "bold yellow"}


def show_command(path: str | Path | None, step: int | None) -> str | None:
    """The command that opens the trace at the violating step (None without a file)."""
    if path is None:
        return None
    return f"mattrace show {path}" + (f" --step {step}" if step is not None else "")


class CommandLine(Text):
    """A command to copy: printed on one line however narrow the terminal (see :func:`print_report`)."""


def render_report(report: Report, trace: Trace | Excerpt, *, path: str | Path | None = None, around: int = 2,
                  passed: bool = True) -> Group:
    """A check report as one rich renderable (commands wrap at the console width)."""
    return Group(*report_parts(report, trace, path=path, around=around, passed=passed))


def print_report(console: Console, report: Report, trace: Trace | Excerpt, **options: Any) -> None:
    """Print a check report; command lines stay whole so they can be copied from any terminal."""
    for part in report_parts(report, trace, **options):
        console.print(part, soft_wrap=isinstance(part, CommandLine))


def report_parts(report: Report, trace: Trace | Excerpt, *, path: str | Path | None = None, around: int = 2,
                 passed: bool = True) -> list[RenderableType]:
    """A check report as rich renderables: a headline, then the lines of each contract.

    Args:
        report: what :func:`mattrace.check` returned for ``trace``.
        trace: the checked trace (the steps shown in context come from it), or what
            :func:`context_excerpt` kept of it when it was read as a stream.
        path: the trace file, for the ``mattrace show`` command line.
        around: steps of context either side of the first violating step.
        passed: also list the contracts that passed (one line each).
    """
    if isinstance(trace, Trace):
        trace = context_excerpt(report, trace, trace.steps, len(trace.steps), around)
    failed = [v for v in report.verdicts if v.status is Status.FAIL]
    undecided, vacuous = report.undecided, report.vacuous
    total = len(report.verdicts)
    if failed:
        mark, summary = Text("✗ ", style="bold red"), f"{len(failed)} of {total} contracts failed"
    elif undecided:
        mark, summary = Text("? ", style="bold yellow"), f"{len(undecided)} of {total} contracts undecided"
    else:
        mark, summary = Text("✓ ", style="bold green"), f"all {total} contracts passed"
    notes = [f"{len(vacuous)} vacuous" if vacuous else "", "incomplete trace" if report.incomplete else ""]
    summary += "".join(f", {n}" for n in notes if n)
    where = f"  {path}" if path is not None else ""
    head = Text.assemble(mark, (trace.trace.name, "bold"), f"  {trace.count} steps  ", summary, (where, "dim"))
    parts: list[RenderableType] = [head]
    if report.incomplete:
        parts.append(Text(f"    incomplete: {report.incomplete}", style="yellow", overflow="fold"))
    for verdict in report.verdicts:
        if verdict.violation is not None:
            parts.extend(_failure(verdict.violation, trace, path, around))
        elif verdict.status is Status.INCOMPLETE:
            parts.append(_line("INCOMPLETE", "bold yellow", verdict.contract, verdict.severity))
            # the trace's reason is printed once above; each undecided contract only says why it cares
            why = "it needs the end of the run" if report.incomplete else verdict.reason
            parts.append(Text(f"    undecided: {why}", overflow="fold"))
        elif verdict.vacuous is not None:   # a warning: shown even when passes are not
            parts.append(_line("VACUOUS", "yellow", verdict.contract, verdict.severity))
            parts.append(Text(f"    passed without applying: {verdict.vacuous}", overflow="fold"))
        elif passed:
            parts.append(_line(verdict.status.value.upper(), _STATUS_STYLES[verdict.status], verdict.contract,
                               verdict.severity))
    return parts


def _line(label: str, style: str, contract: str, severity: str) -> Text:
    return Text.assemble("  ", (label, style), f"  {contract}", (f"  [{severity}]", "dim"))


def context_excerpt(report: Report, trace: Trace, steps: Iterable[Step], count: int, around: int = 2) -> Excerpt:
    """The steps a report shows of a run of ``count`` steps, read once from ``steps`` (which may be a stream).

    Only a failure brings steps into view: the ``around`` steps either side of its first
    violating step and its witnesses. Reading stops after the last of them.
    """
    keep: set[int] = set()
    for verdict in report.verdicts:
        if verdict.violation is not None and verdict.violation.step is not None:
            keep |= _shown(verdict.violation, count - 1, around)
    excerpt = collect(trace, steps if keep else (), keep, stop=True)
    excerpt.count = count
    return excerpt


def _shown(v: Violation, last: int, around: int) -> set[int]:
    assert v.step is not None
    shown = set(range(max(0, v.step - around), min(last, v.step + around) + 1))
    shown.update(i for i in v.witness if 0 <= i <= last)
    return shown


def _failure(v: Violation, trace: Excerpt, path: str | Path | None, around: int) -> list[RenderableType]:
    at = "" if v.step is None else f"  first violation at step {v.step}"
    title = Text.assemble("  ", ("FAIL", "bold red"), f"  {v.contract}", (f"  [{v.severity}]", "dim"), (at, "bold"))
    lines: list[RenderableType] = [title, Text(f"    {v.reason}", overflow="fold")]
    if v.step is not None and trace.count:
        lines.append(_context(trace, v, around))
    command = show_command(path, v.step)
    if command:
        see = CommandLine("    see: ")
        see.append(command, style="bold")
        lines.append(see)
    return lines


def _context(trace: Excerpt, v: Violation, around: int) -> Table:
    assert v.step is not None
    shown = _shown(v, trace.count - 1, around)
    steps = [trace.steps[i] for i in shown]
    reads = trace.reads   # a witness path may follow inferred edges
    marks = {s.index: _marks(s, reads[s.index], set()) for s in steps}
    widths = {"mark": 5, "index": len(str(max(shown))), "agent": min(12, max(len(s.agent) for s in steps)),
              "kind": max(len(s.kind.value) for s in steps),
              "target": min(16, max(len(s.target or "") for s in steps)),
              "marks": min(16, max(m.cell_len for m in marks.values()))}
    table = Table(show_header=False, show_edge=False, pad_edge=False, box=None, padding=(0, 1), expand=True)
    for column in ("mark", "index", "agent", "kind", "target", "content", "marks"):
        table.add_column(column, no_wrap=True, overflow="ellipsis", justify="right" if column == "index" else "left",
                         width=widths.get(column), ratio=1 if column == "content" else None)
    witness = set(v.witness)
    previous = None
    for i in sorted(shown):
        if previous is not None and i > previous + 1:
            table.add_row("", "…", "", "", "", Text(f"{i - previous - 1} steps", style="dim"), "")
        s = trace.steps[i]
        marker = "▶" if i == v.step else "◆" if i in witness else ""
        style = "bold" if i == v.step else None
        table.add_row(Text(f"    {marker}", style="bold red" if marker == "▶" else "yellow"), str(i),
                      _cell(s.agent), Text(s.kind.value, style=KIND_STYLES.get(s.kind, "")),
                      _cell(s.target or ""), _cell(step_summary(s)), marks[i], style=style)
        previous = i
    return table
