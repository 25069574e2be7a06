"""The terminal summary: where the run's traces went, its metrics by config, quality findings.

Printed only by sessions that recorded something, so suites that do not use mattrace see
no extra output. Tables are drawn by rich at the terminal's width, in colour only when
pytest itself writes colour.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from mattrace.pytest_plugin._session import MatSession

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
    if session.quality:
        tr.write_line(f"quality violations ({len(session.quality)}; they fail tests only with --mattrace-strict):")
        for note in session.quality[:QUALITY_SHOWN]:
            step = f" at step {note.step}" if note.step is not None else ""
            tr.write_line(f"  {note.test} [trial {note.trial}]: {note.contract}{step}: {note.reason}")
            if note.command:
                tr.write_line(f"    see: {note.command}")
        if len(session.quality) > QUALITY_SHOWN:
            tr.write_line(f"  ... and {len(session.quality) - QUALITY_SHOWN} more (mattrace query on the store)")
