"""``@pytest.mark.mattrace(search=space, budget=...)``: a test body turned into a counterexample search.

The body is the run: each search run calls it with a fresh ``mat`` whose ``mat.run()``
blocks carry the perturbation (boundary effects as faults, input edits through
``mat.perturb(text)``) and the budget guard. The search's runs go to their own directory
under the store, not into the session's metrics: they are experiments, not samples of how
the system behaves. The test fails when the search finds a counterexample, and the
failure shows the minimal perturbation and its first violation in context.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.console import Console

from mattrace.contracts import check
from mattrace.errors import SearchError
from mattrace.pytest_plugin._failure import WIDTH
from mattrace.pytest_plugin._marker import MarkerSpec
from mattrace.pytest_plugin._mat import Mat
from mattrace.pytest_plugin._progress import trial_progress
from mattrace.pytest_plugin._session import MatSession
from mattrace.report.verdicts import print_report
from mattrace.search import (
    Budget,
    OutOfBudget,
    RunRequest,
    SearchResult,
    check_arguments,
    database_for,
    run_search,
    search_key,
)

__all__ = ["run_search_test"]


def _slug(test: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", test).strip("-.")[:150] or "test"


def run_search_test(item: pytest.Function, session: MatSession, spec: MarkerSpec, first: Mat) -> None:
    """Search the space of the test's marker; fail the test with the minimal counterexample."""
    fn = item.obj
    args = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
    budget = check_arguments(spec.search, "guided", spec.budget or Budget()).capped(session.budget)
    raised: list[BaseException | None] = []

    def execute(request: RunRequest) -> None:
        mat = Mat(session, spec, item.nodeid, 0, first.seed)
        mat.search_request = request
        try:
            fn(**{**args, "mat": mat} if "mat" in args else args)
        except (OutOfBudget, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:   # pytest.fail and asserts too: the contracts judge the run
            raised.append(exc)
            raise RuntimeError(str(exc)) from exc
        raised.append(None)

    directory = session.base / "search" / session.run_id / _slug(item.nodeid)
    database, saved = (None, None) if session.settings.no_store else database_for(
        True, session.base / "search" / "examples")
    with trial_progress(item.config, item.name, budget.runs, unit="runs") as progress:
        try:
            result = run_search(
                execute, spec.search, list(first.contracts), budget, first.seed, input=None, strategy="guided",
                margin=None, dir=directory, database=database, saved=saved,
                key=search_key(item.nodeid, spec.search, list(first.contracts), None),
                on_run=lambda attempt, spend: progress.advance(
                    f"{item.name}: searching" + (", found" if attempt.violation is not None else "")))
        except SearchError as exc:
            pytest.fail(f"mattrace: {item.nodeid}: {exc}", pytrace=False)
    if raised and all(raised):   # not one run got through: the test itself is broken
        error = raised[0]
        assert error is not None
        error.add_note(f"mattrace: every one of the {len(raised)} runs of the search of {item.nodeid} raised; "
                       "this is the first")
        raise error
    item.user_properties.extend(_properties(result))
    if result.found:
        pytest.fail(failure_text(item.nodeid, result, first.contracts), pytrace=False)


def _properties(result: SearchResult) -> list[tuple[str, str]]:
    props = [("mattrace.search", f"{'found' if result.found else 'not found'} in {result.runs} runs "
                                 f"({result.llm_calls} LLM calls, {result.tokens} tokens, ${result.usd:.4f}): "
                                 f"{result.stopped}")]
    if result.found:
        props.append(("mattrace.search.perturbation", str(result.perturbation) if result.perturbation
                      else "none (the unperturbed run)"))
    return props


def failure_text(test: str, result: SearchResult, contracts: Any, *, width: int = WIDTH) -> str:
    """The minimal counterexample of a search, as a failing test shows it."""
    out = io.StringIO()
    console = Console(file=out, width=width, no_color=True, force_terminal=False, highlight=False, emoji=False,
                      markup=False)
    what = (f"{result.perturbation} (size {result.perturbation.size})" if result.perturbation is not None
            else "none: the unperturbed run already breaks it")
    console.print(f"mattrace: the search of {test} found a counterexample at run {result.runs_to_find} "
                  f"of {result.runs}", soft_wrap=True)
    console.print(f"  space: {result.space}", soft_wrap=True)
    console.print(f"  minimal perturbation: {what}", soft_wrap=True)
    console.print(f"  spent: {result.llm_calls} LLM calls, {result.tokens} tokens, ${result.usd:.4f}, "
                  f"{result.seconds:.1f} s; {result.stopped}", soft_wrap=True)
    if result.trace is not None:
        report = check(result.trace, list(contracts))
        console.print()
        print_report(console, report, result.trace, path=result.trace_path, passed=False)
    if result.trace_path is not None:
        console.print(f"    trace: {result.trace_path}", soft_wrap=True)
    console.print("    again: the next run of this test tries this counterexample first (hypothesis's "
                  "example database under the store)", soft_wrap=True)
    return "\n".join(line.rstrip() for line in out.getvalue().rstrip().splitlines())

