"""The terminal summary: where the run's traces went, its metrics by config, quality findings.

Printed only by sessions that recorded something, so suites that do not use mattrace see
no extra output. Tables are drawn by rich at the terminal's width, in colour only when
pytest itself writes colour.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from mattrace.pytest_plugin._session import MatSession, QualityNote

__all__ = ["write_summary"]

QUALITY_SHOWN = 20
LOG_WIDTH = 160


def write_summary(terminalreporter: Any, session: MatSession) -> None:
    outcome = session.outcome
    if outcome.database is None and not session.quality:
        return
    tr = terminalreporter
    tr.write_sep("=", "mattrace")
    where = "in memory (--mattrace-no-store)" if outcome.database == ":memory:" else outcome.database
    tr.write_line(f"run {session.run_id}: traces in {session.traces_dir}; store {where}")
    if outcome.ingest is not None:
        tr.write_line(str(outcome.ingest))
    if outcome.report is not None:
        tr.write_line(f"report: {outcome.report}")
    for problem in outcome.problems:
        tr.write_line(f"mattrace: {problem}", red=True)
    if outcome.metrics:
        from mattrace.report.metrics import metrics_table

        # a CI log does not wrap: draw for a wide page there rather than squeeze into 80 columns
        width = tr._tw.fullwidth if tr.hasmarkup else max(tr._tw.fullwidth, LOG_WIDTH)
        out = io.StringIO()
        console = Console(file=out, width=width, force_terminal=tr.hasmarkup, no_color=not tr.hasmarkup,
                          highlight=False, emoji=False, markup=False)
        console.print(metrics_table(outcome.metrics))
        if outcome.containment:   # only runs with injected faults have a containment class
            from mattrace.report.metrics import containment_table

            console.print(containment_table(outcome.containment))
        if outcome.governance:    # only runs with a governor recorded decisions
            from mattrace.report.metrics import governance_table

            console.print(governance_table(outcome.governance))
        for line in out.getvalue().rstrip().splitlines():
            tr.write_line(line.rstrip())
    if outcome.left_out:
        from mattrace.report.metrics import left_out_lines

        for line in left_out_lines(outcome.left_out):
            tr.write_line(line)
    quality = [n for n in session.quality if n.kind == "quality"]
    if quality:
        tr.write_line(f"quality violations ({len(quality)}; they fail tests only with --mattrace-strict):")
        for note in quality[:QUALITY_SHOWN]:
            step = f" at step {note.step}" if note.step is not None else ""
            tr.write_line(f"  {note.test} [trial {note.trial}]: {note.contract}{step}: {note.reason}")
            if note.command:
                tr.write_line(f"    see: {note.command}")
        if len(quality) > QUALITY_SHOWN:
            tr.write_line(f"  ... and {len(quality) - QUALITY_SHOWN} more (mattrace query on the store)")
    _vacuous(tr, [n for n in session.quality if n.kind == "vacuous"])


def _vacuous(tr: Any, notes: list[QualityNote]) -> None:
    """One warning line per vacuous contract and reason, with how many runs and the first test."""
    if not notes:
        return
    groups: dict[tuple[str, str], list[QualityNote]] = {}
    for note in notes:
        groups.setdefault((note.contract, note.reason), []).append(note)
    tr.write_line(f"vacuous passes ({len(notes)} in {len({n.test for n in notes})} test(s); the contract never "
                  "applied: a name that appears nowhere in the trace, or a trigger that never fired; "
                  "they fail tests only with --mattrace-strict):", yellow=True)
    for (contract, reason), group in list(groups.items())[:QUALITY_SHOWN]:
        runs = f"{len(group)} runs, e.g. " if len(group) > 1 else ""
        tr.write_line(f"  {contract}: {reason} ({runs}{group[0].test} [trial {group[0].trial}])")
    if len(groups) > QUALITY_SHOWN:
        tr.write_line(f"  ... and {len(groups) - QUALITY_SHOWN} more (the verdicts table's vacuous column)")
