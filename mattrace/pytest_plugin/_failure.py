"""What a failing test says, and what the JUnit XML records, about its runs' verdicts.

The failure message is read in CI logs more than in terminals, so it is plain text laid
out by rich (no colour codes): which contract, the first violating step with a few steps
of context and the witness steps, the trace file, and the command that opens it there.
"""

from __future__ import annotations

import io
import math
import shlex
from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.console import Console

from mattrace.report.verdicts import print_report, show_command

if TYPE_CHECKING:
    from mattrace.pytest_plugin._mat import Mat, MatRun

__all__ = ["failure_message", "failure_summary", "junit_properties", "pass_hat_k", "quality_notes", "replay_command"]

WIDTH = 110


def _trial(mat: Mat) -> str:
    trials = mat.spec.trials
    return f"trial {mat.trial} of 0..{trials - 1}, seed {mat.seed}" if trials > 1 else f"seed {mat.seed}"


def pass_hat_k(successes: int, trials: int, k: int) -> float:
    """The unbiased pass^k estimate from ``trials`` runs of which ``successes`` succeeded."""
    return math.comb(successes, k) / math.comb(trials, k)


def failure_message(mat: Mat, runs: list[MatRun], *, width: int = WIDTH) -> str:
    """The failure text for ``runs`` of one trial: every failing contract, in context."""
    out = io.StringIO()
    console = Console(file=out, width=width, no_color=True, force_terminal=False, highlight=False, markup=False,
                      emoji=False, legacy_windows=False)
    failed = sum(len(r.report.violations) for r in runs if r.report is not None)
    incomplete = [r for r in runs if r.report is not None and not r.report.complete]
    found = [f"{failed} contract violation{'s' if failed != 1 else ''}"] if failed or not incomplete else []
    if incomplete:
        undecided = sum(len(r.report.undecided) for r in incomplete if r.report is not None)
        found.append(f"{len(incomplete)} incomplete trace{'s' if len(incomplete) != 1 else ''} "
                     f"({undecided} contract{'s' if undecided != 1 else ''} undecided: a trace that does not "
                     "hold the end of its run cannot pass what needs the end)")
    console.print(f"mattrace: {' and '.join(found)} in {mat.test} ({_trial(mat)})", soft_wrap=True)
    for run in runs:
        assert run.report is not None and run.trace is not None
        console.print()
        print_report(console, run.report, run.trace, path=run.path, passed=False)
        if run.path is not None:
            console.print(f"    trace: {run.path}", soft_wrap=True)
    console.print(f"    replay: {replay_command(mat.test)}", soft_wrap=True)
    return "\n".join(line.rstrip() for line in out.getvalue().rstrip().splitlines())


def replay_command(test: str) -> str:
    """The command that re-runs a test from its cassettes alone (no model, no network)."""
    return f"pytest {shlex.quote(test)} --mattrace-record=none"


def failure_summary(mat: Mat, runs: list[MatRun]) -> str:
    """One line per violation of a further failing trial (the first one is shown in full)."""
    lines = [f"mattrace: also failed in {_trial(mat)}:"]
    for run in runs:
        assert run.report is not None
        for v in run.report.violations:
            at = f" at step {v.step}" if v.step is not None else ""
            command = show_command(run.path, v.step)
            lines.append(f"  {v.contract} [{v.severity}]{at}" + (f"; see: {command}" if command else ""))
        for verdict in run.report.undecided:
            lines.append(f"  {verdict.contract} [{verdict.severity}] incomplete: {verdict.reason}")
        if run.report.incomplete and not run.report.undecided:
            lines.append(f"  incomplete trace: {run.report.incomplete}")
    return "\n".join(lines)


def junit_properties(mats: list[Mat]) -> list[tuple[str, str]]:
    """``user_properties`` of one test: each contract's verdicts over its runs, the first violation.

    Per contract ``mattrace.contract[NAME]`` is ``pass 5/5`` or ``fail 2/5 (safety)``; the
    earliest violation (by trial, then step) is ``mattrace.first_violation``.
    """
    props: list[tuple[str, str]] = []
    runs = [r for m in mats for r in m.runs if r.report is not None]
    if not runs:
        return props
    if len(mats) > 1:
        succeeded = sum(all(r.trace is not None and r.trace.outcome is not None and r.trace.outcome.success
                            for r in m.runs) for m in mats)
        n = len(mats)
        props.append(("mattrace.trials", f"{succeeded}/{n} succeeded"))
        props.append(("mattrace.pass^k", f"pass^1 {pass_hat_k(succeeded, n, 1):.2f}, "
                                         f"pass^{n} {pass_hat_k(succeeded, n, n):.2f}"))
    passes: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    undecided: Counter[str] = Counter()
    vacuous: Counter[str] = Counter()
    severity: dict[str, str] = {}
    for run in runs:
        assert run.report is not None
        for verdict in run.report.verdicts:
            totals[verdict.contract] += 1
            passes[verdict.contract] += verdict.passed
            undecided[verdict.contract] += verdict.incomplete
            vacuous[verdict.contract] += verdict.passed and verdict.vacuous is not None
            severity[verdict.contract] = verdict.severity
    for name, total in totals.items():
        ok, open_, failed = passes[name], undecided[name], total - passes[name] - undecided[name]
        parts = [f"pass {ok}/{total}"] if ok == total else []
        parts += [f"fail {failed}/{total} ({severity[name]})"] if failed else []
        parts += [f"incomplete {open_}/{total}"] if open_ else []
        text = ", ".join(parts) + (f" ({vacuous[name]} vacuous)" if vacuous[name] else "")
        props.append((f"mattrace.contract[{name}]", text))
    for mat in mats:
        for run in mat.runs:
            first = run.report.first_violation if run.report is not None else None
            if first is not None:
                where = f" of {run.path}" if run.path is not None else ""
                props.append(("mattrace.first_violation",
                              f"{first.contract} at step {first.step}{where} ({_trial(mat)}): {first.reason}"))
                return props
    return props


def quality_notes(mat: Mat) -> list[dict[str, Any]]:
    """Quality violations and vacuous passes that did not fail the test, for the controller's summary."""
    notes = []
    for run in mat.runs:
        assert run.report is not None
        for v in run.report.violations:
            if v.severity == "quality":
                notes.append({"test": mat.test, "trial": mat.trial, "contract": v.contract, "step": v.step,
                              "reason": v.reason, "command": show_command(run.path, v.step)})
        for verdict in run.report.vacuous:
            notes.append({"test": mat.test, "trial": mat.trial, "contract": verdict.contract, "step": None,
                          "reason": verdict.vacuous, "command": None, "kind": "vacuous"})
    return notes
