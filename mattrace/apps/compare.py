"""Comparing orchestration designs by their traces: ``mattrace compare SUITE --designs a,b --seeds 10``.

A *suite* is a module that says what to compare (the interface `examples/research_team`
implements)::

    DESIGNS = ("central", "roundrobin", "hierarchical")
    TASKS = {"task-name": "the question", ...}
    def run(design, question, *, seed=0, model=None, weakness=None): ...   # runs inside record()
    def oracle(result, steps) -> bool: ...                                 # did the task succeed?
    CONTRACTS = [...]
    def governor() -> Governor: ...                                         # optional (--governed)
    SEARCH = P.inject("retrieval:*")                                        # optional (--search)

Every (design, task, seed) is one recorded run, configured ``{design, task, seed, model}``
and labelled as a pytest trial of the test ``<suite>/<task>`` so pass^k counts seeds as
trials. The contracts are checked on every trace, the verdicts written to a results file
next to the traces (the files stay the source of truth), everything is ingested into the
store as one run, and the metrics per design come back from SQL, with intervals; the same
seeds give the same numbers. ``--faults`` injects a fault plan into every run, ``--search``
runs a small budgeted counterexample search per design, and ``--out`` writes the HTML report.
"""

from __future__ import annotations

import importlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import mattrace
from mattrace.apps._compare_diff import DesignSummary, SeedRun, separation, summarize
from mattrace.contracts import check, factuality_of
from mattrace.errors import MatTraceError, SearchError

__all__ = ["Comparison", "compare", "load_suite"]


@dataclass
class Comparison:
    """What a comparison ran, where it went, and what it found."""

    run_id: str
    suite: str
    designs: tuple[str, ...]
    seeds: tuple[int, ...]
    tasks: tuple[str, ...]
    traces_dir: Path
    store: Path
    metrics: list[Any] = field(default_factory=list)
    containment: list[Any] = field(default_factory=list)
    searches: dict[str, Any] = field(default_factory=dict)
    """Per design: its :class:`~mattrace.search.SearchResult`, or why there was nothing to search."""
    report: Path | None = None
    seconds: float = 0.0
    runs: int = 0
    per_seed: list[SeedRun] = field(default_factory=list)
    """Every (design, task, seed) run with its outcome, steps, tokens, cost and first violation."""
    designs_summary: list[DesignSummary] = field(default_factory=list)
    """Per design: the differences the rates leave out (steps, tokens, cost, first violations)."""
    separation: str | None = None
    """None when the designs' outcomes differ; else why this comparison does not separate them."""


def load_suite(spec: str) -> ModuleType:
    """The suite module named by a path (``examples/research_team``) or a dotted name.

    Raises:
        MatTraceError: it cannot be imported, or lacks DESIGNS, TASKS, run, oracle or CONTRACTS.
    """
    path = Path(spec)
    if path.exists():   # a path: the package it is in decides the module name and what goes on sys.path
        path = path.resolve()
        parts = [path.stem if path.suffix == ".py" else path.name]
        root = path.parent
        while (root / "__init__.py").exists():
            parts.insert(0, root.name)
            root = root.parent
        name = ".".join(parts)
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
    else:
        name = spec.rstrip("/").removesuffix(".py").replace(os.sep, ".").replace("/", ".")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())   # as `python -m` does: the suite resolves from here
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise MatTraceError(f"compare: cannot import the suite {spec!r} (as {name}): {exc}") from None
    missing = [a for a in ("DESIGNS", "TASKS", "run", "oracle", "CONTRACTS") if not hasattr(module, a)]
    if missing:
        raise MatTraceError(f"compare: the suite {name} lacks {', '.join(missing)}; a suite defines DESIGNS, "
                            "TASKS, run(design, question, seed=...), oracle(result, steps) and CONTRACTS")
    return module


def _check_names(kind: str, wanted: Sequence[str], known: Sequence[str], suite: str) -> tuple[str, ...]:
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise MatTraceError(f"compare: {suite} has no {kind} {unknown[0]!r}; it has {', '.join(known)}")
    return tuple(wanted)


def compare(suite: ModuleType, designs: Sequence[str] | None = None, seeds: int | Sequence[int] = 10, *,
            tasks: Sequence[str] | None = None, faults: Any = None, governed: bool = False, search: bool = False,
            store: str | Path = ".mattrace/mattrace.duckdb", traces_dir: str | Path | None = None,
            report: str | Path | None = None, model: str | None = None,
            on_run: Callable[[str, str, int], None] | None = None) -> Comparison:
    """Run every (design, task, seed) of ``suite``, check, ingest and measure them per design.

    Raises:
        MatTraceError: an unknown design or task, or a suite without a governor/search
            space when ``governed``/``search`` asks for one.
    """
    from mattrace.report.html import write_report
    from mattrace.store import Store
    from mattrace.store.results import ResultsWriter, new_run

    name = suite.__name__
    chosen = _check_names("design", designs or suite.DESIGNS, suite.DESIGNS, name)
    task_names = _check_names("task", tasks or list(suite.TASKS), list(suite.TASKS), name)
    seed_list = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    if governed and not hasattr(suite, "governor"):
        raise MatTraceError(f"compare: {name} defines no governor() for --governed")
    started = time.perf_counter()
    run_id = f"compare-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    out_dir = Path(traces_dir) if traces_dir is not None else Path(store).parent / "traces" / run_id
    run = new_run(run_id, source="compare", argv=["mattrace", "compare", name], worker="compare")
    results = Path(store).parent / "results" / run_id / "compare.jsonl"
    result = Comparison(run_id, name, chosen, seed_list, task_names, out_dir, Path(store))
    short = name.rsplit(".", 1)[-1]
    ran: list[tuple[str, str, int, str, str, str | None]] = []
    with ResultsWriter(results, run) as writer:
        for design in chosen:
            for task in task_names:
                for seed in seed_list:
                    config = {"design": design, "task": task, "seed": seed, "model": model or "scripted"}
                    labels = {"mattrace.run": run_id, "mattrace.test": f"{short}/{task}", "mattrace.trial": str(seed)}
                    with mattrace.record(f"{short}/{task}", config=config, labels=labels, dir=out_dir,
                                         faults=faults, governor=suite.governor() if governed else None) as rec:
                        try:
                            answer = suite.run(design, suite.TASKS[task], seed=seed, model=model)
                        except Exception as exc:   # the run's error is its outcome; the others go on
                            rec.set_outcome("error", reason=f"{type(exc).__name__}: {exc}")
                        else:
                            said = rec.outcome
                            if said is None or said.status == "success":   # a run cut off says so itself
                                ok = bool(suite.oracle(answer, rec.steps))
                                rec.set_outcome(success=ok, output=str(answer)[:2000],
                                                reason=None if ok else "the oracle judged the task failed")
                    trace = rec.trace
                    verdicts = check(trace, suite.CONTRACTS)
                    writer.write_check(trace_id=trace.trace_id, trace_file=rec.path,
                                       report=verdicts, test=f"{short}/{task}", trial=seed,
                                       seed=seed, factuality=factuality_of(trace.steps, suite.CONTRACTS))
                    ran.append((design, task, seed, trace.trace_id, _outcome(trace), _first(verdicts)))
                    result.runs += 1
                    if on_run is not None:
                        on_run(design, task, seed)
    if search:
        result.searches = _searches(suite, chosen, task_names[0], out_dir.parent / "search" / run_id, model)
    with Store.open(store) as db:
        db.ingest([out_dir, results], run=run)
        result.metrics = db.metrics(by=("config.design",), run_id=run_id)
        result.containment = db.containment(by=("config.design",), run_id=run_id) if faults else []
        _, rows = db.query("SELECT trace_id, n_steps, tokens, cost_usd FROM traces WHERE run_id = ?", [run_id])
        sizes = {r[0]: r[1:] for r in rows}
        result.per_seed = [SeedRun(design, task, seed, outcome, int(sizes.get(tid, (0,))[0] or 0),
                                   int((sizes.get(tid, (0, 0))[1]) or 0), float(sizes.get(tid, (0, 0, 0.0))[2] or 0.0),
                                   violation)
                           for design, task, seed, tid, outcome, violation in ran]
        result.designs_summary = summarize(result.per_seed, chosen)
        result.separation = separation(result.designs_summary)
        if report is not None:
            result.report = write_report(db, report, run_id=run_id, by=("config.design",),
                                         title=f"mattrace compare: {name}")
    result.seconds = time.perf_counter() - started
    return result


def _outcome(trace: Any) -> str:
    """A run's outcome in a word: ``ok``, ``failed`` (the oracle said no), or its status."""
    status = trace.outcome.status if trace.outcome is not None else "unfinished"
    return {"success": "ok", "failure": "failed"}.get(status, status)


def _first(report: Any) -> str | None:
    """The earliest violation as ``contract @ step N`` (or without a step), None when all held."""
    found = report.first_violation
    if found is None:
        return None
    return str(found.contract) + (f" @ step {found.step}" if found.step is not None else "")


def _searches(suite: ModuleType, designs: Sequence[str], task: str, dir: Path, model: str | None) -> dict[str, Any]:
    """A small budgeted search per design, for the injection a design lets through most easily."""
    from mattrace.search import Budget, P, find_counterexample

    space = getattr(suite, "SEARCH", None) or P.inject("retrieval:*")
    found: dict[str, Any] = {}
    for design in designs:
        def one_run(design: str = design) -> None:
            suite.run(design, suite.TASKS[task], seed=0, model=model)

        try:
            found[design] = find_counterexample(one_run, space, list(suite.CONTRACTS), Budget(runs=20), seed=0,
                                                name=f"{suite.__name__.rsplit('.', 1)[-1]}/{design}/search",
                                                config={"design": design, "task": task, "search": True},
                                                dir=dir / design, database=None)
        except SearchError as exc:   # this design gives the space nothing to perturb: a finding, not a crash
            found[design] = str(exc)
    return found
