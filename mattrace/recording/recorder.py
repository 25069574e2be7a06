"""The recorder: turns events of a run into steps, in order, and writes them as they happen.

One :class:`Recorder` per run. It assigns step indices under a lock (so concurrent agents
in threads get one total order), fills in the agent and inferred ``reads``, redacts
secrets, writes each step to the trace file at once, and on exit records the ``end``
step and seals the file. ``record()`` (:mod:`mattrace.recording.blocks`) is the public
entry that creates one.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
import warnings
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Unpack

from pydantic import ValidationError

from mattrace._moved import moved_names as _moved_names
from mattrace.errors import RecordingError, TraceWriteWarning
from mattrace.recording.context import current_agent
from mattrace.recording.extensions import run_extensions
from mattrace.recording.interceptors import Interceptor
from mattrace.recording.jsonable import to_jsonable
from mattrace.recording.options import DEFAULT_DIR, RecordOptions, check_options
from mattrace.recording.provenance import OutputIndex
from mattrace.recording.redact import Redactor
from mattrace.recording.unattributed import close_governed, open_governed
from mattrace.trace import (
    Outcome,
    OutcomeStatus,
    Source,
    Step,
    StepError,
    StepKind,
    Trace,
    validation_summary,
)
from mattrace.tracefile import TraceWriter

__all__ = ["Recorder", "slug"]


# steps whose inputs are searched for earlier outputs (see provenance.py)
_INFER_READS = frozenset({StepKind.MESSAGE, StepKind.DELEGATE, StepKind.LLM, StepKind.TOOL,
                          StepKind.MEMORY_WRITE})
# steps whose outputs later steps may read
_PRODUCES = frozenset({StepKind.MESSAGE, StepKind.DELEGATE, StepKind.LLM, StepKind.TOOL,
                       StepKind.RETRIEVAL, StepKind.MEMORY_READ})


def _step_kind(kind: StepKind | str) -> StepKind:
    try:
        return StepKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in StepKind)
        raise RecordingError(f"unknown step kind {kind!r}; expected one of: {known}") from None


def slug(name: str) -> str:
    """``name`` as a safe file-name part (what a trace file of that run is called)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:80] or "trace"


class _NullWriter:
    """Stands in for the trace file when a recorder keeps its trace in memory only."""

    def write_step(self, step: Step) -> None:
        pass

    def seal(self, outcome: Outcome | None) -> None:
        pass

    def close(self) -> None:
        pass


class Recorder:
    """Records one run into one trace file. Thread-safe; create it through :func:`record`.

    Attributes:
        trace_id: random id of this run.
        path: the trace file (not written when ``persist=False``, which keeps the trace
            in memory only: for building traces in tests).
        redactor: applied to everything recorded (args, attrs, results, text, config)
            before it is written.
        write_error: the OSError that stopped the file being written, if one did.
    """

    def __init__(self, name: str, *, path: str | Path | None = None, persist: bool = True,
                 **options: Unpack[RecordOptions]) -> None:
        if not isinstance(name, str) or not name:
            raise RecordingError(f"record() needs a non-empty run name, got {name!r}")
        check_options(options)
        config, labels, entrypoint = options.get("config"), options.get("labels"), options.get("entrypoint")
        redact, fsync = options.get("redact"), bool(options.get("fsync", False))
        dir = options.get("dir", DEFAULT_DIR)
        self.trace_id = uuid.uuid4().hex
        self.redactor = redact if redact is not None else Redactor()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.path = Path(path) if path else Path(dir) / f"{slug(name)}-{stamp}-{self.trace_id[:8]}.jsonl"
        try:
            self._header = Trace(trace_id=self.trace_id, name=name,
                                 config=self.redactor(to_jsonable(config or {})), labels=dict(labels or {}),
                                 entrypoint=self.redactor(to_jsonable(entrypoint)) if entrypoint else None)
        except (ValidationError, TypeError, ValueError) as exc:
            summary = validation_summary(exc) if isinstance(exc, ValidationError) else str(exc)
            raise RecordingError(f"record({name!r}): invalid run metadata: {summary}") from None
        self._lock = threading.RLock()
        self._steps: list[Step] = []
        self._outputs = OutputIndex()
        # tool name -> the LLM steps that requested a call of it, oldest first (one entry per
        # requested call, so an answer asking for the same tool twice links both calls)
        self._tool_requests: dict[str, deque[int]] = defaultdict(deque)
        self._interceptors: list[Interceptor] = []
        self._before_end: list[Callable[[], None]] = []
        self._outcome: Outcome | None = None
        self._closed = False
        self.write_error: OSError | None = None
        self._header_written = False
        governor = options.get("governor")
        if governor is not None:
            self.add_interceptor(governor)
        # extensions first: one that refuses the run (a missing cassette to replay) must do so
        # before a trace file exists, or an empty unsealed trace would be left behind
        cassette = options.get("cassette", True) if persist else False   # a run kept in memory has none
        for joined in run_extensions(self, {**options, "cassette": cassette}):
            self.add_interceptor(joined)
        self._writer: TraceWriter | _NullWriter = (
            TraceWriter(self.path, self._header, fsync=fsync) if persist else _NullWriter())
        self._header_written = True
        if governor is not None:   # from now until close, calls no run can claim are judged for it
            open_governed(self, governor)

    # -- reading ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._header.name

    @property
    def config(self) -> dict[str, Any]:
        """What the run was configured with (a copy; cheap, unlike :attr:`trace`)."""
        return dict(self._header.config)

    @property
    def steps(self) -> list[Step]:
        """A snapshot of the steps recorded so far."""
        with self._lock:
            return list(self._steps)

    def steps_since(self, start: int) -> list[Step]:
        """The steps recorded from index ``start`` on (cheap: no copy of the whole run)."""
        with self._lock:
            return self._steps[start:]

    @property
    def trace(self) -> Trace:
        """The trace as recorded so far (complete, with its outcome, once the run ended)."""
        with self._lock:
            return self._header.model_copy(update={"steps": list(self._steps),
                                                   "outcome": self._outcome})

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def persistent(self) -> bool:
        """Whether this run is written to a file (not kept in memory only, and no write failed)."""
        return not isinstance(self._writer, _NullWriter)

    def add_label(self, key: str, value: str) -> None:
        """Label the run while its header is not written yet; a label already set is kept.

        For recorder extensions: they join a run before its file exists, and learn things the
        header should say (a cassette that will answer every call makes the run a replay).

        Raises:
            RecordingError: the header is already written, so the label could not reach the file.
        """
        if self._header_written:
            raise RecordingError(f"{self.name!r}: labels go in the trace header, which is already written; "
                                 "pass labels= to record() instead")
        if key not in self._header.labels:
            self._header = self._header.model_copy(update={"labels": {**self._header.labels, key: str(value)}})

    # -- interceptors ----------------------------------------------------------------------

    def add_interceptor(self, interceptor: Interceptor) -> None:
        """Put ``interceptor`` into this run's boundary chain, at its ``order``.

        Checked by duck typing at run time: ``close()`` is part of the protocol (a type
        checker asks for it) but an object without one is accepted and simply not closed.
        """
        if not all(hasattr(interceptor, member) for member in ("name", "order", "before", "after")):
            raise RecordingError(f"{interceptor!r} is not an Interceptor (needs name, order, "
                                 "before(call), after(call, outcome) and close())")
        with self._lock:
            self._interceptors.append(interceptor)
            self._interceptors.sort(key=lambda i: i.order)

    @property
    def interceptors(self) -> list[Interceptor]:
        with self._lock:
            return list(self._interceptors)

    # -- writing ---------------------------------------------------------------------------

    def append(self, kind: StepKind | str, *, agent: str | None = None, target: str | None = None,
               content: str | None = None, args: dict[str, Any] | None = None,
               result: Any = None, error: BaseException | StepError | None = None,
               sources: Iterable[Source] = (), reads: Iterable[int] = (),
               side_effect: bool = False, attrs: dict[str, Any] | None = None,
               t_start: int | None = None, t_end: int | None = None) -> Step:
        """Record one step now and return it.

        Fills the agent from the enclosing ``agent()`` block, adds inferred ``reads``,
        redacts secrets (in args, attrs, result and content), and writes the step to the
        file before returning.

        If the trace file cannot be written (disk full, I/O error), the run goes on: the
        step is kept in :attr:`trace`, and a :class:`~mattrace.errors.TraceWriteWarning`
        says the file stops there (its complete lines still load).

        Raises:
            RecordingError: the run has ended, the kind is unknown, a ``reads`` entry is not
                an earlier step index, or a field has the wrong type.
        """
        kind = _step_kind(kind)
        redact = self.redactor
        args_j = redact(to_jsonable(args)) if args is not None else None
        attrs_j = redact(to_jsonable(attrs)) if attrs else {}
        result_j = redact(to_jsonable(result))
        content = redact(content) if content else content
        if isinstance(error, BaseException):
            error = StepError(type=type(error).__name__, message=redact(str(error)))
        now = time.time_ns()
        with self._lock:
            if self._closed:
                raise RecordingError(f"{self.path}: a {kind.value} step was recorded after the "
                                     "run ended; record steps inside the record() block")
            index = len(self._steps)
            edges = set(reads)
            bad = [r for r in edges if type(r) is not int or not 0 <= r < index]
            if bad:
                raise RecordingError(f"step {index} ({kind.value}) reads {sorted(map(repr, bad))}, "
                                     f"which are not earlier steps (0..{index - 1})")
            if kind in _INFER_READS:
                edges.update(self._outputs.found_in(content, _read_inputs(kind, args_j)))
            requested = self._tool_requests.get(target) if kind is StepKind.TOOL and target else None
            if requested:
                edges.add(requested.popleft())
            try:
                step = Step(index=index, kind=kind, agent=agent or current_agent(), target=target,
                            content=content, args=args_j, result=result_j, error=error,
                            sources=tuple(sources), reads=tuple(sorted(edges)),
                            side_effect=side_effect, attrs=attrs_j,
                            t_start=t_start if t_start is not None else now,
                            t_end=t_end if t_end is not None else now)
            except ValidationError as exc:
                raise RecordingError(f"step {index} ({kind.value}) is invalid: "
                                     f"{validation_summary(exc)}") from None
            try:
                self._writer.write_step(step)
            except OSError as exc:
                self._lose_file(exc, index)
            self._steps.append(step)
            if kind in _PRODUCES:
                self._outputs.add(index, content, result_j)
            for name in attrs_j.get("tool_calls_requested", ()) if kind is StepKind.LLM else ():
                self._tool_requests[name].append(index)
            return step

    def preview(self, kind: StepKind | str, *, agent: str | None = None, target: str | None = None,
                content: str | None = None, args: dict[str, Any] | None = None,
                sources: Iterable[Source] = (), side_effect: bool = False) -> Step:
        """The step that recording this action now would produce (with its inferred ``reads``),
        without recording it: what run-time guards judge before an action runs."""
        kind = _step_kind(kind)
        args_j = self.redactor(to_jsonable(args)) if args is not None else None
        with self._lock:
            edges: set[int] = set()
            if kind in _INFER_READS:
                edges.update(self._outputs.found_in(content, _read_inputs(kind, args_j)))
            requested = self._tool_requests.get(target) if kind is StepKind.TOOL and target else None
            if requested:
                edges.add(requested[0])
            return Step(index=len(self._steps), kind=kind, agent=agent or current_agent(), target=target,
                        content=content, args=args_j, sources=tuple(sources), reads=tuple(sorted(edges)),
                        side_effect=side_effect)

    # -- outcome and end -------------------------------------------------------------------

    def set_outcome(self, status: OutcomeStatus | None = None, *, success: bool | None = None,
                    output: Any = None, reason: str | None = None) -> Outcome:
        """Declare how the run ended (per the caller's oracle); recorded in the ``end`` step.

        Pass ``status`` or ``success`` (True → ``success``, False → ``failure``).
        """
        if status is None:
            if success is None:
                raise RecordingError("set_outcome() needs status=... or success=True/False")
            status = "success" if success else "failure"
        self._outcome = Outcome(status=status, output=self.redactor(to_jsonable(output)),
                                reason=self.redactor(reason) if reason else reason)
        return self._outcome

    def close(self, error: BaseException | None = None) -> Trace:
        """Record the ``end`` step and seal the file. Idempotent.

        Without an explicit :meth:`set_outcome`, a run that returned normally ends as
        ``success`` and one that raised as ``error`` (``timeout`` for timeouts).
        """
        if self._closed:
            return self.trace
        for callback in self._before_end:
            try:
                callback()
            except Exception as exc:   # what a callback failed to record must not lose the run's end
                warnings.warn(f"mattrace: a before_end callback of {self.name!r} failed: "
                              f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
        if error is not None and (self._outcome is None or self._outcome.status == "success"):
            status: OutcomeStatus = "timeout" if isinstance(error, TimeoutError) else "error"
            self._outcome = Outcome(status=status, reason=self.redactor(f"{type(error).__name__}: {error}"),
                                    output=self._outcome.output if self._outcome else None)
        outcome = self._outcome or Outcome(status="success")
        self._outcome = outcome
        self.append(StepKind.END, agent="main", content=outcome.reason,
                    result=outcome.model_dump(mode="json"), error=error)
        with self._lock:
            self._closed = True
            try:
                self._writer.seal(outcome)
            except OSError as exc:
                self._lose_file(exc, len(self._steps))
        try:
            for interceptor in self.interceptors:
                close = getattr(interceptor, "close", None)   # optional at run time, see add_interceptor
                if callable(close):
                    close()
        finally:
            close_governed(self)   # last: a call racing the end is refused, never let through
        return self.trace

    def before_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the run is about to end, before its ``end`` step: the last
        moment steps can still be recorded (a span processor writes the spans still pending)."""
        with self._lock:
            self._before_end.append(callback)

    @property
    def next_index(self) -> int:
        """The index the next recorded step will get."""
        with self._lock:
            return len(self._steps)

    def _lose_file(self, exc: OSError, index: int) -> None:
        """Keep recording in memory after the file failed; say so once, loudly."""
        self.write_error = exc
        warnings.warn(TraceWriteWarning(self.path, index, exc), stacklevel=3)
        self._writer.close()
        self._writer = _NullWriter()

    def abandon(self) -> None:
        """Close the file without an ``end`` step or seal (it reads as an interrupted run)."""
        with self._lock:
            self._closed = True
            self._writer.close()
        close_governed(self)


def _read_inputs(kind: StepKind, args: dict[str, Any] | None) -> dict[str, Any] | None:
    """The inputs a step's ``reads`` are inferred from: an LLM call's list of offered tools is
    not text it read (a tool named like an earlier output must not link the two)."""
    if kind is StepKind.LLM and args and "tools" in args:
        return {k: v for k, v in args.items() if k != "tools"}
    return args



# names this module held before record() and the extension tables got modules of their own
__getattr__ = _moved_names(__name__, {
    "record": "mattrace.recording.blocks", "unrecorded": "mattrace.recording.blocks",
    "recorder_extension": "mattrace.recording.extensions", "RecorderExtension": "mattrace.recording.extensions",
    "AUTO_INSTRUMENT": "mattrace.recording.extensions", "auto_instrument": "mattrace.recording.extensions"})
