"""``find_counterexample``: a budgeted search for the smallest perturbation that breaks a contract.

The order: a canary run says where text can be planted and which of it reaches a model;
counterexamples kept from earlier searches and the space's extreme perturbations
(*probes*) are tried next, because many failures grow likelier with a bigger
perturbation; then hypothesis is the engine: it searches the edits of a failing probe
(or the whole space), never tries the same choice sequence twice, climbs the run's
margins through ``target()``, shrinks a failure to a minimal one, and keeps it in its
example database. mattrace supplies what hypothesis cannot know: the canary, the budget
(read from recorded LLM usage) that stops it, and a memo so a perturbation reached twice
is paid for once.

``strategy="random"`` samples the same space uniformly (with replacement, over every
point the canary found, reachable or not) under the same budget: the baseline a guided
search has to beat.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.errors import HypothesisException

from mattrace.contracts import Violation
from mattrace.errors import SearchError
from mattrace.faults import FaultPlan
from mattrace.recording import record, unrecorded
from mattrace.search._budget import Budget, Spend
from mattrace.search._margin import Margin
from mattrace.search._perturbations import Perturbation, combine
from mattrace.search._runner import Attempt, Executor, Runner, RunRequest, Stop
from mattrace.search._saved import load_saved, save
from mattrace.search._sites import Sites, canary_faults, read_canary
from mattrace.search._space import MAX_PROBES, Context, Space
from mattrace.trace import Trace

__all__ = ["SearchResult", "check_arguments", "database_for", "find_counterexample", "record_executor",
           "run_search", "search_key"]

DEFAULT_DIR = Path(".mattrace") / "search"


@dataclass
class SearchResult:
    """What a search found, what it spent, and why it stopped."""

    found: bool
    strategy: str
    space: str
    stopped: str
    runs: int = 0
    llm_calls: int = 0
    tokens: int = 0
    usd: float = 0.0
    seconds: float = 0.0
    perturbation: Perturbation | None = None
    """The minimal perturbation that breaks a contract (None when the unperturbed run already does)."""
    violation: Violation | None = None
    trace: Trace | None = None
    trace_path: Path | None = None
    cassette: Path | None = None
    runs_to_find: int | None = None
    """The run (counting the canary) at which the first counterexample turned up."""
    sites: Sites | None = None
    attempts: list[Attempt] = field(default_factory=list, repr=False)
    _replay: Callable[[], Trace] | None = field(default=None, repr=False)

    def replay(self) -> Trace:
        """Re-run the counterexample under its cassette (no live call is made) and return the trace."""
        if self._replay is None:
            raise SearchError("this search found no counterexample to replay")
        return self._replay()

    def __str__(self) -> str:
        spent = (f"{self.runs} runs, {self.llm_calls} LLM calls, {self.tokens} tokens, "
                 f"${self.usd:.4f}, {self.seconds:.1f} s")
        if not self.found:
            return f"no counterexample ({self.strategy} search of {self.space}): {self.stopped}; spent {spent}"
        v = self.violation
        what = "the unperturbed run" if self.perturbation is None else f"{self.perturbation}"
        lines = [f"counterexample ({self.strategy} search of {self.space}, found at run {self.runs_to_find}):",
                 f"  perturbation: {what}" + (f" (size {self.perturbation.size})" if self.perturbation else ""),
                 f"  breaks: {v.contract} [{v.severity}] at step {v.step}: {v.reason}" if v else "  breaks: ?",
                 f"  trace: {self.trace_path}" if self.trace_path else "  trace: (in memory)",
                 f"  spent: {spent}; {self.stopped}"]
        return "\n".join(lines)


class _Counterexample(AssertionError):
    """Raised in the hypothesis test body when a run breaks a contract."""


def record_executor(run: Callable[..., Any], name: str, input: str | None,
                    config: dict[str, Any] | None) -> Executor:
    """Run a plain callable inside its own ``record()`` block, perturbed as the request says."""
    fn = unrecorded(run)
    if inspect.iscoroutinefunction(fn):
        raise SearchError(f"{name}: find_counterexample runs a plain function; wrap the coroutine "
                          "in asyncio.run(...)")

    def execute(request: RunRequest) -> None:
        plan = FaultPlan(request.faults, request.seed) if request.faults else None
        with record(f"{name}#{request.number}", config=config, dir=request.dir, labels=request.labels,
                    faults=plan, cassette=request.cassette, record_mode=request.record_mode) as rec:
            request.join(rec)
            if input is None:
                fn()
            else:
                fn(request.edit(input))
    return execute


def _hypothesis(runner: Runner, strategy: st.SearchStrategy[Perturbation], seed: int,
                database: ExampleDatabase | None, key: bytes) -> str | None:
    """Let hypothesis generate, target and shrink; None when it finished by itself, else why it stopped."""
    remaining = None if runner.budget.runs is None else max(1, runner.budget.runs - runner.spend.runs)

    def body(perturbation: Perturbation) -> None:
        attempt = runner.attempt(perturbation)
        for label, value in attempt.margins.items():
            target(value, label=label)
        if attempt.violation is not None:
            raise _Counterexample(str(attempt.violation))

    # max_examples counts distinct choice sequences, and several can make one perturbation
    # (paid for once): allow more than the runs left, the budget stops it in time
    # @seed first: it switches the database off, and the settings applied after switch it back on
    test = hypothesis_seed(seed)(given(strategy)(body))
    test = settings(max_examples=10_000 if remaining is None else 4 * remaining, deadline=None,
                    database=database, derandomize=False, report_multiple_bugs=False,
                    phases=(Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
                    suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, print_blob=False)(test)
    test.hypothesis.inner_test._hypothesis_internal_add_digest = key  # type: ignore[attr-defined]
    try:
        test()
    except Stop as stop:
        return stop.reason
    except (_Counterexample, HypothesisException):
        return None
    return None


def _guided(runner: Runner, space: Space, ctx: Context, seed: int,
            database: ExampleDatabase | None, key: bytes, saved: list[Perturbation]) -> str | None:
    """Kept counterexamples and probes first, then hypothesis: over the atoms of a failing
    probe, or over the whole space."""
    rng = random.Random(seed)
    cap = MAX_PROBES if runner.budget.runs is None else min(MAX_PROBES, max(1, runner.budget.runs // 3))
    failing: Attempt | None = None
    try:
        for probe in [*saved, *space.probes(rng, ctx)[:cap]]:
            attempt = runner.attempt(probe)
            if attempt.violation is not None:
                failing = attempt
                break
    except Stop as stop:
        return stop.reason
    if failing is None or failing.perturbation is None:
        return _hypothesis(runner, space.strategy(ctx), seed, database, key)
    # a probe broke a contract: hypothesis searches the subsets of its edits and shrinks
    atoms = failing.perturbation.parts()
    # one flag per edit: hypothesis shrinks flags towards False, so towards fewer edits
    keep = st.lists(st.booleans(), min_size=len(atoms), max_size=len(atoms)).filter(any)
    return _hypothesis(runner, keep.map(lambda flags: combine(a for a, k in zip(atoms, flags, strict=True) if k)),
                       seed, database, key + b"/probe")


def _random(runner: Runner, space: Space, ctx: Context, seed: int) -> str:
    rng = random.Random(seed)
    try:
        while True:
            attempt = runner.attempt(space.sample(rng, ctx), memo=False)
            if attempt.violation is not None:
                return "stopped at the first counterexample (random search does not shrink)"
    except Stop as stop:
        return stop.reason


def run_search(execute: Executor, space: Space, contracts: list[Any], budget: Budget, seed: int, *,
               input: str | None, strategy: str, margin: Margin | None, dir: Path,
               database: ExampleDatabase | None, key: bytes, saved: Path | None = None,
               on_run: Callable[[Attempt, Spend], None] | None = None) -> SearchResult:
    """The search itself, for any executor (``find_counterexample`` and the pytest plugin's search tests).

    ``saved``: the directory where counterexamples are kept between searches (tried first).
    """
    runner = Runner(execute, contracts, budget, seed, dir, margin, on_run)
    runner.input = input

    def result(found: Attempt | None, stopped: str, sites: Sites | None, first: int | None) -> SearchResult:
        s = runner.spend
        out = SearchResult(found is not None, strategy, repr(space), stopped, s.runs, s.llm_calls, s.tokens,
                           s.usd, s.seconds, sites=sites, runs_to_find=first, attempts=runner.attempts)
        if found is not None:
            out.perturbation, out.violation, out.trace = found.perturbation, found.violation, found.trace
            out.trace_path, out.cassette = found.path, found.cassette
            out._replay = functools.partial(runner.replay, found)
        return out

    sites: Sites | None = None
    try:
        if space.needs_sites:
            log, canary = canary_faults()
            probe = runner.attempt(None, extra=canary, role="canary", memo=False)
            sites = read_canary(log, probe.trace)
            if probe.violation is not None:   # the markers may be to blame: try the plain run
                plain = runner.attempt(None, role="unperturbed", memo=False)
                if plain.violation is not None:
                    return result(plain, "the unperturbed run already breaks a contract", sites, plain.number)
        elif space.perturbs_input and runner.input is None:   # learn the input from a plain run
            plain = runner.attempt(None, role="unperturbed", memo=False)
            if plain.violation is not None:
                return result(plain, "the unperturbed run already breaks a contract", None, plain.number)
    except Stop as stop:
        return result(None, stop.reason, sites, None)
    if space.perturbs_input and runner.input is None:
        raise SearchError(f"{space!r} perturbs the run's input, and the run never asked for it "
                          "(in pytest: text = mat.perturb(text))")
    ctx = Context(input=runner.input, sites=sites or Sites(), reachable_only=strategy == "guided")
    empty = space.empty_reason(ctx)
    if empty is not None:
        found_where = f" (canary run: {sites.summary()})" if sites is not None else ""
        raise SearchError(f"nothing to search: {empty}{found_where}")

    if strategy == "random":
        stopped = _random(runner, space, ctx, seed)
    else:
        stopped = _guided(runner, space, ctx, seed, database, key, load_saved(saved, key)) or ""
    failures = [a for a in runner.attempts if a.violation is not None and a.perturbation is not None]
    if not failures:
        return result(None, stopped or f"no counterexample among {len(runner.memo)} distinct perturbations "
                      "(hypothesis found nothing new to try)", sites, None)
    first = min(a.number for a in failures)
    best = min(failures, key=lambda a: (a.perturbation.order_key() if a.perturbation else (0, 0), a.number))
    if strategy == "guided":
        stopped = f"shrunk; {stopped}" if stopped else "shrunk to a minimal perturbation"
        if best.perturbation is not None:
            save(saved, key, best.perturbation)
    return result(best, stopped, sites, first)


def check_arguments(space: Any, strategy: Any, budget: Any) -> Budget:
    """Validate what every search is given; the budget, defaulted.

    Shared by :func:`find_counterexample` and the pytest plugin's search tests, so both
    refuse a bad space, strategy or budget with the same message.

    Raises:
        SearchError: the space is not built with ``P``, the strategy is unknown, or the budget is not a Budget.
    """
    if not isinstance(space, Space):
        raise SearchError(f"search: the space must be built with P (P.inject(...), P.typos(...) ...), got {space!r}")
    if strategy not in ("guided", "random"):
        raise SearchError(f"search: strategy must be 'guided' or 'random', got {strategy!r}")
    budget = budget if budget is not None else Budget()
    if not isinstance(budget, Budget):
        raise SearchError(f"search: budget must be a Budget(...), got {budget!r}")
    return budget


def database_for(database: bool | str | Path | ExampleDatabase | None,
                 default: Path) -> tuple[ExampleDatabase | None, Path | None]:
    """hypothesis's example database and the directory counterexamples are kept in: True means
    ``default``, a path that directory, a database object itself (nothing kept), None/False none.

    Used by :func:`find_counterexample` and the pytest plugin's search tests.
    """
    if database is None or database is False:
        return None, None
    if database is True:
        return DirectoryBasedExampleDatabase(str(default)), default
    if isinstance(database, str | Path):
        return DirectoryBasedExampleDatabase(str(database)), Path(database)
    if isinstance(database, ExampleDatabase):
        return database, None
    raise SearchError(f"search: database must be True, False, None, a path or a hypothesis ExampleDatabase, "
                      f"got {database!r}")


def search_key(name: str, space: Space, contracts: list[Any], input: str | None) -> bytes:
    """What the example database files a search under: the same search finds its examples again.

    Used by :func:`find_counterexample` and the pytest plugin's search tests (``name`` is the test's node id).
    """
    described = [getattr(c, "name", None) or repr(c) for c in contracts]
    return hashlib.sha256(repr((name, repr(space), described, input)).encode()).digest()


def find_counterexample(run: Callable[..., Any], space: Space, contracts: Any, budget: Budget | None = None,
                        seed: int = 0, *, input: str | None = None,
                        strategy: Literal["guided", "random"] = "guided", margin: Margin | None = None,
                        name: str | None = None, dir: str | Path | None = None,
                        config: dict[str, Any] | None = None,
                        database: bool | str | Path | ExampleDatabase | None = True,
                        on_run: Callable[[Attempt, Spend], None] | None = None) -> SearchResult:
    """Search ``space`` for the smallest perturbation under which a run breaks ``contracts``.

    Args:
        run: the code under test: ``run()`` when the space only perturbs boundaries (the
            injector applies those), ``run(text)`` with the perturbed ``input`` otherwise.
            Each call is recorded as its own trace (a ``@mattrace.record`` decorator on it
            is looked through).
        space: what may change (``P.inject(...)``, ``P.one_of(...)`` ...).
        contracts: one contract, a list, or anything ``mattrace.check`` takes.
        budget: limits on runs, LLM calls, tokens, USD and seconds (default 100 runs).
        seed: seeds hypothesis (or the random sampler) and the fault plans: the same seed
            gives the same counterexample.
        input: the unperturbed input text, for spaces that perturb it.
        strategy: ``guided`` (probes, then hypothesis with margins and shrinking) or ``random``.
        margin: ``fn(trace) -> float`` (or a dict of named floats): how close a run came to
            a violation, higher is closer; added to the built-in taint and length margins.
        name: the runs' name (default: the function's qualified name).
        dir: where the runs' traces and cassettes go (default ``.mattrace/search/<id>``).
        config: recorded as every run's config.
        database: hypothesis's example database: ``True`` (``.mattrace/search/examples``
            next to the runs), a path, a database object, or ``None``/``False`` for none.
        on_run: called after every run with the attempt and the spending so far.

    Raises:
        SearchError: a malformed space, budget or argument, or a space with nothing to
            perturb in this run (the message says what the canary run found).
    """
    budget = check_arguments(space, strategy, budget)
    if not callable(run):
        raise SearchError(f"find_counterexample: run must be callable, got {run!r}")
    if input is not None and not isinstance(input, str):
        raise SearchError(f"find_counterexample: input must be text, got {input!r}")
    if space.perturbs_input and input is None:
        raise SearchError(f"find_counterexample: {space!r} perturbs the run's input; pass input=... "
                          "(the unperturbed text) and a run that takes it")
    contract_list = list(contracts) if isinstance(contracts, list | tuple) else [contracts]
    label: str = name or str(getattr(unrecorded(run), "__qualname__", "run"))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    where = Path(dir) if dir is not None else DEFAULT_DIR / f"{stamp}-{uuid.uuid4().hex[:6]}"
    examples, saved = database_for(database, where.parent / "examples")
    return run_search(record_executor(run, label, input, config), space, contract_list, budget, seed,
                      input=input, strategy=strategy, margin=margin, dir=where, database=examples,
                      key=search_key(label, space, contract_list, input), saved=saved, on_run=on_run)
