"""The ``mat`` fixture: record runs of the code under test, judge them, remember the verdicts.

One :class:`Mat` per trial. Each ``with mat.run():`` block is one recorded run (one trace
file); when the block ends, the oracle decides task success (unless the test said so with
:meth:`MatRun.outcome`), the contracts are checked, and the verdicts go to the results
file. Failing the test is left to the end of the test body (or an explicit
:meth:`Mat.check`), so a test sees every run's verdicts, and k trials are judged alike.
"""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mattrace.contracts import Report, check, factuality_of
from mattrace.errors import RecordingError
from mattrace.faults import FaultPlan, containment
from mattrace.recording import RecordMode, record
from mattrace.recording.recorder import Recorder
from mattrace.trace import OutcomeStatus, Step, Trace

if TYPE_CHECKING:
    from mattrace.pytest_plugin._marker import MarkerSpec
    from mattrace.pytest_plugin._session import MatSession
    from mattrace.search import RunRequest

__all__ = ["ContractFailure", "Mat", "MatRun"]

_UNSET: Any = object()


class ContractFailure(AssertionError):
    """Raised by :meth:`Mat.check`: a contract failed on a run of this test."""


class MatRun:
    """One recorded run inside a test: ``with mat.run(config=...) as run:``.

    Attributes (after the block): ``trace``, ``path`` (its file), ``report`` (the check).
    """

    def __init__(self, mat: Mat, config: dict[str, Any], name: str, number: int,
                 faults: tuple[Any, ...] = ()) -> None:
        self.mat = mat
        self.number = number
        self.faults = faults
        self.config = config
        self.name = name
        self.output: Any = None
        self.recorder: Recorder | None = None
        self.trace: Trace | None = None
        self.path: Path | None = None
        self.report: Report | None = None
        self._explicit: dict[str, Any] | None = None
        self._block: Any = None

    @property
    def seed(self) -> int:
        return self.mat.seed

    @property
    def steps(self) -> list[Step]:
        """The steps recorded so far: what an oracle should judge (under replay, tools do not
        run, so their in-process side effects do not happen; the steps are the same)."""
        return self.recorder.steps if self.recorder is not None else []

    def outcome(self, success: bool | None = None, *, output: Any = _UNSET,
                status: OutcomeStatus | None = None, reason: str | None = None) -> None:
        """Say how the run went (this overrides the marker's oracle) and what it produced.

        ``outcome(output=x)`` alone only records the output; the oracle, if any, still
        judges success from it.
        """
        if output is not _UNSET:
            self.output = output
        if success is not None or status is not None:
            self._explicit = {"success": success, "status": status, "reason": reason}

    def __enter__(self) -> MatRun:
        if self._block is not None:
            raise RecordingError("this mat.run() block is already active; use a new mat.run() per run")
        mat = self.mat
        session = mat.session
        request = mat.search_request
        if request is None:
            self._block = record(self.name, config=self.config, dir=session.traces_dir,
                                 labels=session.labels(mat.test, mat.trial),
                                 cassette=session.cassette(mat.test, mat.trial, self.number),
                                 record_mode=RecordMode(session.settings.record_mode),
                                 faults=list(self.faults) or None, governor=mat.governor,
                                 match=session.matcher(mat.spec))
            self.recorder = self._block.__enter__()
            return self
        # one run of a search: its own directory and cassette, the perturbation's faults on top
        faults = FaultPlan((*self.faults, *request.faults), self.seed) if self.faults or request.faults else None
        self._block = record(f"{self.name}#{request.number}" + (f".{self.number}" if self.number else ""),
                             config=self.config, dir=request.dir,
                             labels={**session.labels(mat.test, mat.trial), **request.labels},
                             cassette=request.cassette, record_mode=request.record_mode,
                             faults=faults, governor=mat.governor)
        self.recorder = self._block.__enter__()
        request.join(self.recorder)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self.recorder is not None
        try:
            if exc is None:
                self._decide()
        finally:
            self._block.__exit__(exc_type, exc, tb)
        self.trace, self.path = self.recorder.trace, self.recorder.path
        if self.recorder.write_error is not None:
            self.path = None
        self.mat._judge(self)

    def _decide(self) -> None:
        assert self.recorder is not None
        if self._explicit is not None:
            self.recorder.set_outcome(self._explicit["status"], success=self._explicit["success"],
                                      output=self.output, reason=self._explicit["reason"])
            return
        oracle = self.mat.spec.oracle
        if oracle is None:
            if self.output is not None:
                self.recorder.set_outcome("success", output=self.output)
            return
        verdict = oracle(self)
        if not isinstance(verdict, bool):
            raise RecordingError(f"the oracle {getattr(oracle, '__name__', oracle)!r} returned {verdict!r}; "
                                 "it must return True (task succeeded) or False")
        self.recorder.set_outcome(success=verdict, output=self.output,
                                  reason=None if verdict else "the oracle judged the task failed")


class Mat:
    """The ``mat`` fixture of one trial of one test.

    Attributes:
        seed: this trial's seed (``--mattrace-seed`` + trial index); also in each run's config.
        trial: the trial index, 0..trials-1.
        random: a ``random.Random`` seeded with ``seed``, private to this trial (the global
            ``random`` is shared by concurrent trials, so it cannot be reproducible).
        runs: the runs recorded so far, in order.
    """

    def __init__(self, session: MatSession, spec: MarkerSpec, test: str, trial: int, seed: int) -> None:
        self.session = session
        self.spec = spec
        self.test = test
        self.trial = trial
        self.seed = seed
        self.random = random.Random(seed)
        self.runs: list[MatRun] = []
        self.search_request: RunRequest | None = None
        """Set while this ``mat`` makes one run of a search (``search=`` on the marker)."""
        self._lock = threading.Lock()
        self._checked = 0
        self._started = 0
        self._governor: Any = spec.governor

    @property
    def contracts(self) -> tuple[Any, ...]:
        return self.spec.contracts

    @property
    def governor(self) -> Any:
        """The governor mediating this trial's runs (the marker's ``governor=``), or None.

        Assign one to govern the later runs of this trial: ``mat.governor = Governor([...])``.
        """
        return self._governor

    @governor.setter
    def governor(self, value: Any) -> None:
        from mattrace.governance import Governor

        if value is not None and not isinstance(value, Governor):
            raise RecordingError(f"mat.governor takes a mattrace.governance.Governor, got {value!r}")
        self._governor = value

    def perturb(self, text: str) -> str:
        """``text`` as the current search perturbs it (unchanged outside a search).

        The input perturbations of a ``search=`` space (``P.typos``, ``P.paraphrase``,
        ``P.distractor``) act on what the test passes through here; the first run of a
        search tells the search what the unperturbed input is.
        """
        if not isinstance(text, str):
            raise RecordingError(f"mat.perturb(text) takes the input text, got {text!r}")
        return self.search_request.edit(text) if self.search_request is not None else text

    def faults(self, *faults: Any) -> None:
        """Inject ``faults`` into every later ``mat.run()`` of this trial (on top of the marker's)."""
        extra = FaultPlan.of(list(faults)).faults
        self.spec = replace(self.spec, faults=(*self.spec.faults, *extra))

    def run(self, config: dict[str, Any] | None = None, *, name: str | None = None,
            faults: Any = None) -> MatRun:
        """A ``with`` block recording one run of the code under test.

        Args:
            config: what this run is configured with; merged over the marker's ``config``,
                with ``seed`` added. Metrics are grouped by it.
            name: the trace name (default: the test's node id).
            faults: faults to inject into this run, added to the marker's ``faults``; they
                draw their schedules from the trial's seed.
        """
        if config is not None and not isinstance(config, dict):
            raise RecordingError(f"mat.run(config=...) takes a dict, got {config!r}")
        merged = {**self.spec.config, **(config or {}), "seed": self.seed}
        with self._lock:
            number = self._started
            self._started += 1
        extra = FaultPlan.of(faults).faults if faults else ()
        return MatRun(self, merged, name or self.test, number, (*self.spec.faults, *extra))

    def _judge(self, run: MatRun) -> None:
        assert run.trace is not None
        run.report = check(run.trace, self.spec.contracts)
        if self.session.settings.strict:   # a vacuous pass is a failure in strict mode
            run.report = run.report.strict()
        with self._lock:
            self.runs.append(run)
        if self.search_request is not None:
            return   # a search's runs are judged by the search; only its result is reported
        contained = containment(run.trace, run.report)
        self.session.record_check(trace_id=run.trace.trace_id, trace_file=run.path, report=run.report,
                                  test=self.test, trial=self.trial, seed=self.seed,
                                  factuality=factuality_of(run.trace.steps, self.spec.contracts),
                                  containment=None if contained is None else {
                                      "class": contained.cls, "reason": contained.reason,
                                      "step": contained.step, "faults": list(contained.faults)})

    def _failing(self, runs: list[MatRun]) -> list[MatRun]:
        """Runs that fail the test: a safety violation (quality too when strict), or a trace
        that does not hold the end of its run (contracts that need it are undecided)."""
        strict = self.session.settings.strict
        return [r for r in runs if r.report is not None and (not r.report.complete or any(
            v.severity == "safety" or strict for v in r.report.violations))]

    def check(self) -> list[Report]:
        """Fail now if a run so far broke a contract that fails tests; return every report.

        Runs already judged by an earlier ``check()`` are not reported twice; the check
        after the test body covers the rest.

        Raises:
            ContractFailure: with the first violating step of each failing run.
        """
        from mattrace.pytest_plugin._failure import failure_message

        failing = self.unchecked_failures()
        if failing:
            raise ContractFailure(failure_message(self, failing))
        return [r.report for r in self.runs if r.report is not None]

    def unchecked_failures(self) -> list[MatRun]:
        """Failing runs no earlier :meth:`check` reported; they count as reported from now on."""
        with self._lock:
            fresh = self.runs[self._checked:]
            self._checked = len(self.runs)
        return self._failing(fresh)
