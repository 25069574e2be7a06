"""The injector: applies a fault plan to a run's boundary calls, and records what it did.

It is an interceptor (order ``FAULTS_ORDER``: after governance, before replay), so code
under test needs no change and unfaulted calls still replay from the cassette. Each hit
is recorded as a ``fault`` step (which fault, its parameters and schedule, the call
number) just before the step it affects; that step ``reads`` the fault step and carries a
``fault:<name>`` source (untrusted for poisoned results), so the taint contracts and the
containment check follow faulty data into whatever consumed it.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mattrace.errors import FaultSpecError
from mattrace.faults._specs import Fault
from mattrace.recording.interceptors import FAULTS_ORDER, Answer, Call, CallOutcome
from mattrace.recording.options import RecordOptions
from mattrace.recording.recorder import Recorder
from mattrace.trace import Source, SourceKind, StepKind

__all__ = ["FaultInjector", "FaultPlan", "INJECTOR_AGENT"]

INJECTOR_AGENT = "mattrace"
"""Who fault steps are attributed to (the affected call's agent is in the step's args)."""

_SOURCE_KIND: dict[StepKind, SourceKind] = {StepKind.TOOL: "tool", StepKind.RETRIEVAL: "retrieval",
                                            StepKind.MEMORY_READ: "memory", StepKind.MEMORY_WRITE: "memory",
                                            StepKind.LLM: "agent"}


@dataclass(frozen=True)
class FaultPlan:
    """Faults to inject into a run, and the seed their ``probability`` schedules draw from."""

    faults: tuple[Fault, ...] = ()
    seed: int = 0

    @classmethod
    def of(cls, faults: FaultPlan | Fault | Iterable[Fault], seed: int | None = None) -> FaultPlan:
        if isinstance(faults, FaultPlan):
            return faults if seed is None else FaultPlan(faults.faults, seed)
        items = (faults,) if isinstance(faults, Fault) else tuple(faults)
        bad = [f for f in items if not isinstance(f, Fault)]
        if bad:
            raise FaultSpecError(f"a fault plan holds faults (Timeout(...), Poisoned(...) ...), got {bad[0]!r}")
        return cls(items, 0 if seed is None else seed)

    def __str__(self) -> str:
        return "; ".join(str(f) for f in self.faults) or "no faults"


@dataclass
class _Hit:
    fault: Fault
    step: int


class FaultInjector:
    """Applies a :class:`FaultPlan` to one run. Thread-safe."""

    name = "faults"
    order = FAULTS_ORDER

    def __init__(self, plan: FaultPlan, recorder: Recorder) -> None:
        self.plan = plan
        self.recorder = recorder
        self._rng = random.Random(plan.seed)
        self._lock = threading.Lock()
        self._counts: dict[int, int] = defaultdict(int)          # fault position -> matching calls seen
        self._history: dict[tuple[str, str], list[Any]] = defaultdict(list)
        self._hits: dict[int, list[_Hit]] = {}                   # id(call) -> faults that fired on it
        self.injected: list[dict[str, Any]] = []                 # what fired, where: for reports

    def _fire(self, call: Call) -> list[Fault]:
        fired = []
        with self._lock:
            for position, fault in enumerate(self.plan.faults):
                if fault.applies_to(call):
                    self._counts[position] += 1
                    if fault.fires(self._counts[position], self._rng.random):
                        fired.append((fault, self._counts[position]))
        hits = []
        for fault, n in fired:
            # the fault is mattrace's doing, not the agent's: role contracts must not blame the agent
            step = self.recorder.append(
                StepKind.FAULT, agent=INJECTOR_AGENT, target=f"{call.kind.value}:{call.target}", content=str(fault),
                args={"fault": type(fault).__name__, "params": fault.params(), "schedule": fault.schedule(),
                      "target": fault.target, "call": n, "agent": call.agent},
                attrs={"fault_class": fault.name})
            call.reads.append(step.index)
            call.sources.append(Source(kind=_SOURCE_KIND.get(call.kind, "tool"), ref=f"fault:{fault.name}",
                                       trusted=not fault.untrusted))
            call.attrs.setdefault("faults", []).append(fault.name)
            hits.append(_Hit(fault, step.index))
            self.injected.append({"fault": fault.name, "step": step.index, "target": call.target})
        return [h.fault for h in hits]

    def before(self, call: Call) -> Answer | None:
        faults = self._fire(call)
        if not faults:
            return None
        with self._lock:
            self._hits[id(call)] = [_Hit(f, -1) for f in faults]
        key = (call.kind.value, call.target)
        for fault in faults:
            answer = fault.before(call, list(self._history[key]))
            if answer is not None:
                return answer
        return None

    def on_escape(self, call: Call) -> str | None:
        """A call that bypassed the chain: refused when a fault of the plan targets it (it could
        never be injected)."""
        targeting = [str(f) for f in self.plan.faults if f.applies_to(call)]
        if targeting:
            return f"the fault plan targets it ({'; '.join(targeting)}), and a fault cannot be injected into it"
        return None

    def after(self, call: Call, outcome: CallOutcome) -> CallOutcome:
        with self._lock:
            hits = self._hits.pop(id(call), [])
        key = (call.kind.value, call.target)
        with self._lock:
            history = list(self._history[key])
            if outcome.error is None and call.kind is not StepKind.MEMORY_WRITE:
                self._history[key].append(outcome.result)   # the real answer: what a stale cache held
        for hit in hits:
            outcome = hit.fault.after(call, outcome, history)
        return outcome

    def close(self) -> None:
        """Nothing to write: every injected fault is already a step of the trace."""


def join_run(recorder: Recorder, options: RecordOptions) -> FaultInjector | None:
    """The fault injector of a new run with ``faults=``: the recorder extension named in
    ``mattrace.recording.extensions.EXTENSIONS``."""
    faults = options.get("faults")
    if not faults:
        return None
    if isinstance(faults, FaultPlan):
        return FaultInjector(faults, recorder)
    # a plain list draws from the run's configured seed, so each trial faults differently
    config_seed = recorder.config.get("seed")
    return FaultInjector(FaultPlan.of(faults, config_seed if type(config_seed) is int else 0), recorder)
