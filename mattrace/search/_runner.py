"""One run of a search: the perturbation applied, the run recorded, budgeted and judged.

How the code under test is called is left to an *executor*: ``find_counterexample`` wraps
a plain callable in ``record()``, the pytest plugin runs the test body with a ``mat``
fixture whose ``mat.run()`` blocks pick the perturbation up. Either way the executor gets
a :class:`RunRequest` and hands every recorder the run opens to :meth:`RunRequest.join`,
which is where the budget guard goes in and where the runner finds the traces to judge.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mattrace.contracts import Violation, check
from mattrace.errors import SearchError
from mattrace.faults import Fault
from mattrace.recording import RecordMode
from mattrace.recording.recorder import Recorder
from mattrace.replay import cassette_path
from mattrace.search._budget import Budget, BudgetGuard, OutOfBudget, Spend
from mattrace.search._margin import Margin, margins
from mattrace.search._perturbations import Perturbation
from mattrace.trace import Trace

__all__ = ["Attempt", "Executor", "RunRequest", "Runner", "Stop"]


@dataclass(frozen=True)
class Attempt:
    """One run of a search: the perturbation tried and what came of it.

    A run that opened several ``record()`` blocks is judged on all of them; ``trace`` is
    the first that broke a contract (else the last).
    """

    number: int
    perturbation: Perturbation | None
    trace: Trace
    violation: Violation | None
    margins: dict[str, float]
    path: Path | None = None
    cassette: Path | None = None
    role: str = "candidate"


@dataclass
class RunRequest:
    """What an executor needs to make one run of the code under test.

    :func:`~mattrace.search.run_search` hands one to its executor per run; the pytest plugin's ``mat`` fixture
    keeps it to perturb its ``mat.run()`` blocks and to join their recorders to the search.
    """

    number: int
    role: str
    perturbation: Perturbation | None
    faults: tuple[Fault, ...]
    seed: int
    labels: dict[str, str]
    dir: Path
    cassette: Path | bool = True
    record_mode: RecordMode = RecordMode.ALL
    recorders: list[Recorder] = field(default_factory=list)
    input_seen: str | None = None
    _join: Callable[[Recorder], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def join(self, recorder: Recorder) -> None:
        """Every recorder the run opens must be handed here (it is budgeted and judged)."""
        with self._lock:
            self.recorders.append(recorder)
        if self._join is not None:
            self._join(recorder)

    def edit(self, text: str) -> str:
        """The run's input under this run's perturbation (noted: the search learns its input)."""
        if self.input_seen is None:
            self.input_seen = text
        return self.perturbation.edit_input(text) if self.perturbation is not None else text


Executor = Callable[[RunRequest], None]


class Stop(BaseException):
    """The budget ran out: unwinds through hypothesis, which must not treat it as a failure."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Runner:
    """Runs the code under test once per perturbation (paying once per distinct one)."""

    def __init__(self, execute: Executor, contracts: list[Any], budget: Budget, seed: int, dir: Path,
                 margin: Margin | None, on_run: Callable[[Attempt, Spend], None] | None) -> None:
        self.execute = execute
        self.contracts = contracts
        self.budget = budget
        self.seed = seed
        self.dir = dir
        self.margin = margin
        self.on_run = on_run
        self.spend = Spend()
        self.attempts: list[Attempt] = []
        self.memo: dict[Perturbation, Attempt] = {}
        self.input: str | None = None

    def _check_budget(self) -> None:
        reason = self.spend.over(self.budget, runs=1)
        if reason is None and self.spend.llm_calls:
            reason = self.spend.over(self.budget, calls=1, tokens=self.spend.dearest_tokens,
                                     usd=self.spend.dearest_usd)
        if reason is not None:
            raise Stop(reason)

    def attempt(self, perturbation: Perturbation | None, *, extra: Iterable[Fault] = (),
                role: str = "candidate", memo: bool = True) -> Attempt:
        if memo and perturbation is not None and perturbation in self.memo:
            return self.memo[perturbation]
        self._check_budget()
        self.spend.runs += 1
        number = self.spend.runs
        guards: list[BudgetGuard] = []

        def join(recorder: Recorder) -> None:
            guard = BudgetGuard(self.budget, self.spend, recorder)
            guards.append(guard)
            recorder.add_interceptor(guard)

        request = RunRequest(number, role, perturbation,
                             (*extra, *(perturbation.faults() if perturbation is not None else ())), self.seed,
                             {"mattrace.search": self.dir.name, "mattrace.search.role": role}, self.dir, _join=join)
        stop: str | None = None
        try:
            self.execute(request)
        except OutOfBudget as exc:
            stop = exc.reason
        except Exception:   # the error is the run's recorded outcome; contracts judge it
            pass
        for guard in guards:
            guard.catch_up()
        if self.input is None and request.input_seen is not None:
            self.input = request.input_seen
        if stop is not None:
            raise Stop(f"{stop} (run {number} was cut short and is not counted as a result)")
        attempt = self._judge(number, perturbation, request.recorders, role)
        self.attempts.append(attempt)
        if memo and perturbation is not None:
            self.memo[perturbation] = attempt
        if self.on_run is not None:
            self.on_run(attempt, self.spend)
        return attempt

    def _judge(self, number: int, perturbation: Perturbation | None, recorders: list[Recorder],
               role: str) -> Attempt:
        if not recorders:
            raise SearchError(f"search run {number} recorded nothing: the code under test opened no "
                              "record() block the search could see (in pytest: use `with mat.run():`)")
        judged: list[tuple[Recorder, Trace, Violation | None]] = []
        for recorder in recorders:
            trace = recorder.trace
            judged.append((recorder, trace, check(trace, self.contracts).first_violation))
        recorder, trace, violation = next((j for j in judged if j[2] is not None), judged[-1])
        scores: dict[str, float] = {}
        for _, t, _ in judged:
            for label, value in margins(t, self.contracts, self.margin).items():
                scores[label] = max(scores.get(label, 0.0), value)
        path = recorder.path if recorder.persistent else None
        cassette = cassette_path(path) if path is not None and cassette_path(path).exists() else None
        return Attempt(number, perturbation, trace, violation, scores, path, cassette, role)

    def replay(self, attempt: Attempt) -> Trace:
        """The attempt again, its boundaries served from its cassette (record mode ``none``)."""
        request = RunRequest(attempt.number, attempt.role, attempt.perturbation,
                             attempt.perturbation.faults() if attempt.perturbation is not None else (),
                             self.seed, dict(attempt.trace.labels), self.dir / "replays",
                             cassette=attempt.cassette or False, record_mode=RecordMode.NONE)
        try:
            self.execute(request)
        except Exception:   # recorded as the replayed run's outcome
            pass
        if not request.recorders:
            raise SearchError("the replayed run recorded nothing")
        return request.recorders[-1].trace
