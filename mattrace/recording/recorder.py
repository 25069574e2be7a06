"""The recorder: turns events of a run into steps, in order, and writes them as they happen.

One :class:`Recorder` per run. It assigns step indices under a lock (so concurrent agents
in threads get one total order), fills in the agent, links each tool call to the LLM call
that requested it, redacts secrets, writes each step to the trace file at once, and on
exit records the ``end`` step and seals the file. ``record()``
(:mod:`mattrace.recording.blocks`) is the public entry that creates one.

It records facts only: the ``reads`` a caller states and the request edges above. Which
earlier outputs a step's input held (the rest of the context flow) is inferred at analysis
time by :mod:`mattrace.provenance`, so the hot path pays nothing for it and a better
analysis applies to traces already recorded.

Request edges: an ``llm`` step lists the calls its answer requested in
``attrs["tool_calls_requested"]`` (tool names) and, where the model gave them ids,
``attrs["tool_call_ids"]`` (the same order; ``None`` for a call without one). A step whose
``attrs["tool_call_id"]`` names a requested call (set by :func:`~mattrace.tool_call_id`
around the call) reads the step that requested it; a ``tool`` step without a known id
reads the oldest unanswered request of its tool name.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
import warnings
from array import array
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Unpack

import orjson
from pydantic import ValidationError

from mattrace._moved import moved_names as _moved_names
from mattrace.errors import RecordingError, TraceWriteWarning
from mattrace.recording.context import current_agent
from mattrace.recording.escapes import close_run, open_run
from mattrace.recording.extensions import run_extensions
from mattrace.recording.interceptors import Interceptor
from mattrace.recording.options import DEFAULT_DIR, RecordOptions, check_options
from mattrace.recording.plain_steps import MemoryOnlyWriter, flat_copies, read_back, recorded_step, step_json
from mattrace.recording.redact import Redactor
from mattrace.recording.tool_requests import PendingRequests
from mattrace.recording.unattributed import close_governed, open_governed
from mattrace.trace import (
    Outcome,
    OutcomeStatus,
    Source,
    Step,
    StepError,
    StepKind,
    Trace,
    fast_canonical_bytes,
    float_free_canonical_bytes,
    validation_summary,
)
from mattrace.tracefile import TraceWriter

__all__ = ["Recorder", "slug"]

_LLM, _TOOL = StepKind.LLM, StepKind.TOOL   # a member looked up on its enum costs a step ~0.1 µs
_NO_EDGES: frozenset[int] = frozenset()


def _step_kind(kind: StepKind | str) -> StepKind:
    try:
        return StepKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in StepKind)
        raise RecordingError(f"unknown step kind {kind!r}; expected one of: {known}") from None


def slug(name: str) -> str:
    """``name`` as a safe file-name part (what a trace file of that run is called)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:80] or "trace"


_KEEP = 1024   # steps a recorder writing a file keeps in memory (the file holds them all)
_DROP = 64
_SOURCE_CACHE = 1024   # sources' JSON remembered per run (speakers and documents repeat)


class Recorder:
    """Records one run into one trace file. Thread-safe; create it through :func:`record`.

    Attributes:
        trace_id: random id of this run.
        path: the trace file (not written when ``persist=False``, which keeps the trace
            in memory only: for building traces in tests).
        redactor: applied to everything recorded (the run's name, config and labels, and
            every field of every step) before it is written.
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
        self.redactor = redact = redact if redact is not None else Redactor.default()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        recorded_name = redact.text(name)   # a secret in the name reaches neither the file nor its name
        self.path = Path(path) if path else Path(dir) / f"{slug(recorded_name)}-{stamp}-{self.trace_id[:8]}.jsonl"
        try:
            self._header = Trace(trace_id=self.trace_id, name=recorded_name,
                                 config=redact.jsonable(config or {}),
                                 labels=redact.jsonable(dict(labels)) if labels else {},
                                 entrypoint=redact.jsonable(entrypoint) if entrypoint else None)
        except (ValidationError, TypeError, ValueError) as exc:
            summary = validation_summary(exc) if isinstance(exc, ValidationError) else str(exc)
            raise RecordingError(f"record({name!r}): invalid run metadata: {summary}") from None
        self._lock = threading.RLock()
        # the latest steps; those before `_base` were dropped from memory once the file held
        # them (a long run's memory stays flat: the file is the truth, read back on demand)
        self._steps: list[Step] = []
        self._base = 0
        self._offsets = array("q")   # where each step's line starts in the file
        self._sources_json: dict[Source, dict[str, Any]] = {}
        self._requests = PendingRequests()
        self._chain: tuple[Interceptor, ...] = ()
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
        self._writer: TraceWriter | MemoryOnlyWriter = (
            TraceWriter(self.path, self._header, fsync=fsync) if persist else MemoryOnlyWriter())
        self._header_written = True
        open_run(self)   # LLM calls no run's context reaches are judged against its interceptors too
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
        """A snapshot of the steps recorded so far (read back from the file for a long run)."""
        return self.steps_since(0)

    def steps_since(self, start: int) -> list[Step]:
        """The steps recorded from index ``start`` on (cheap for recent steps: those still in
        memory are not copied from the file)."""
        with self._lock:
            base, recent = self._base, self._steps[max(start - self._base, 0):]
            if start >= base:
                return recent
            begin, end = self._offsets[max(start, 0)], self._offsets[base]
        return read_back(self.path, max(start, 0), begin, end) + recent

    @property
    def trace(self) -> Trace:
        """The trace as recorded so far (complete, with its outcome, once the run ended).

        Until the ``end`` step is recorded the trace says so (:attr:`Trace.incomplete`), so a
        check of a run still going leaves what needs its end undecided. For a long run the
        steps no longer in memory are read back from its file.
        """
        # not under the lock: reading a long run back from its file must not stall the threads
        # recording it. The outcome is read after the steps: a run sets it before its end step.
        steps = self.steps_since(0)
        trace = self._header.model_copy(update={"steps": steps, "outcome": self._outcome})
        ended = bool(steps) and steps[-1].kind is StepKind.END
        if not ended:
            trace.mark_incomplete(f"run {self.name!r} " + ("was abandoned before its end step" if self._closed
                                                          else "has not ended yet"))
        return trace

    @property
    def outcome(self) -> Outcome | None:
        """The outcome declared so far (cheap, unlike :attr:`trace`): None until one is set or the run ends."""
        return self._outcome

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def persistent(self) -> bool:
        """Whether this run is written to a file (not kept in memory only, and no write failed)."""
        return not isinstance(self._writer, MemoryOnlyWriter)

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
            self._chain = tuple(sorted((*self._chain, interceptor), key=lambda i: i.order))

    @property
    def interceptors(self) -> list[Interceptor]:
        return list(self._chain)

    @property
    def chain(self) -> tuple[Interceptor, ...]:
        """The interceptors in order, as the boundary calls run them (replaced whole, never changed)."""
        return self._chain

    # -- writing ---------------------------------------------------------------------------

    def append(self, kind: StepKind | str, *, agent: str | None = None, target: str | None = None,
               content: str | None = None, args: dict[str, Any] | None = None,
               result: Any = None, error: BaseException | StepError | None = None,
               sources: Iterable[Source] = (), reads: Iterable[int] = (),
               side_effect: bool = False, attrs: dict[str, Any] | None = None,
               t_start: int | None = None, t_end: int | None = None) -> Step:
        """Record one step now and return it.

        Fills the agent from the enclosing ``agent()`` block, adds the edge from a tool call
        to the LLM call that requested it, redacts secrets (in every field: agent, target,
        content, args, result, error, source refs and attrs), and writes the step to the file
        before returning. ``reads`` are the edges the caller knows; no others are inferred
        here (:mod:`mattrace.provenance` does that at analysis time).

        If the trace file cannot be written (disk full, I/O error), the run goes on: the
        step is kept in :attr:`trace`, and a :class:`~mattrace.errors.TraceWriteWarning`
        says the file stops there (its complete lines still load).

        Raises:
            RecordingError: the run has ended, the kind is unknown, a ``reads`` entry is not
                an earlier step index, or a field has the wrong type.
        """
        kind = kind if type(kind) is StepKind else _step_kind(kind)
        agent = agent or current_agent()
        sources = sources if type(sources) is tuple else tuple(sources)
        now = time.time_ns()
        # the common case (text and plain JSON data, no error) is encoded once, scanned once
        # for anything secret-like, and written as is; anything else takes the general path
        fast = (error is None and type(agent) is str and (target is None or type(target) is str)
                and (content is None or type(content) is str) and (args is None or type(args) is dict)
                and (attrs is None or type(attrs) is dict) and type(side_effect) is bool
                and (t_start is None or type(t_start) is int) and (t_end is None or type(t_end) is int)
                and (not sources or all(type(s) is Source for s in sources)))
        with self._lock:
            if self._closed:
                raise RecordingError(f"{self.path}: a {kind.value} step was recorded after the "
                                     "run ended; record steps inside the record() block")
            index = self._base + len(self._steps)
            edges = set(reads) if reads else _NO_EDGES
            bad = [r for r in edges if type(r) is not int or not 0 <= r < index] if edges else None
            if bad:
                raise RecordingError(f"step {index} ({kind.value}) reads {sorted(map(repr, bad))}, "
                                     f"which are not earlier steps (0..{index - 1})")
            step = self._append_plain(index, kind, agent, target, content, args, result, sources, edges,
                                      side_effect, attrs, t_start if t_start is not None else now,
                                      t_end if t_end is not None else now) if fast else None
            if step is None:
                step = self._append_general(index, kind, agent, target, content, args, result, error, sources,
                                            set(edges), side_effect, attrs, t_start if t_start is not None else now,
                                            t_end if t_end is not None else now)
            self._steps.append(step)
            if len(self._steps) >= _KEEP + _DROP:
                self._drop_oldest()
            if kind is _LLM:
                self._requests.add(step)
            return step

    def _append_plain(self, index: int, kind: StepKind, agent: str, target: str | None, content: str | None,
                      args: dict[str, Any] | None, result: Any, sources: tuple[Source, ...],
                      edges: set[int] | frozenset[int], side_effect: bool, attrs: dict[str, Any] | None,
                      t_start: int, t_end: int) -> Step | None:
        """Record a step of plain values in one encode, one scan and one parse; None when a value
        needs converting or redacting (nothing is recorded then; the general path does it)."""
        asks = kind is _TOOL or (attrs is not None and "tool_call_id" in attrs)
        requester = self._requests.requester(kind, target, agent, attrs or {}, answer=False) if asks else None
        if requester is not None:
            edges = edges | {requester}
        reads = tuple(sorted(edges)) if edges else ()
        data = step_json(index, kind, agent, target, content, args, result,
                         [self._source_json(s) for s in sources] if sources else [], reads, side_effect, attrs,
                         t_start, t_end)
        flat = flat_copies(args, result, attrs)
        # sources and the other fields hold no float: flat values without one need no scan
        body = (float_free_canonical_bytes if flat is not None and flat[1] else fast_canonical_bytes)(
            {"step": data, "type": "step"})
        if body is None or self.redactor.may_hold_secret(body):
            return None
        if requester is not None:
            self._requests.requester(kind, target, agent, attrs or {}, answer=True)
        if flat is not None:
            values = flat[0]
        else:
            parsed = orjson.loads(body)["step"]
            values = (parsed.get("args"), parsed.get("result"), parsed.get("attrs", {}))
        step = recorded_step(index, kind, agent, target, content, values, sources, reads, side_effect,
                              t_start, t_end)
        self._offsets.append(self._writer.size)   # step `index` starts here (kept aligned even if the write fails)
        try:
            self._writer.write_step_record(index, body)
        except OSError as exc:
            self._lose_file(exc, index)
        return step

    def _append_general(self, index: int, kind: StepKind, agent: str, target: str | None, content: str | None,
                        args: dict[str, Any] | None, result: Any, error: BaseException | StepError | None,
                        sources: tuple[Source, ...], edges: set[int], side_effect: bool,
                        attrs: dict[str, Any] | None, t_start: int, t_end: int) -> Step:
        """Record any step: every field converted to JSON-able data and redacted, then validated."""
        fields = self.redactor.step_fields(kind, agent=agent, target=target, content=content, args=args,
                                           result=result, error=error, sources=sources, attrs=attrs)
        requester = self._requests.requester(kind, fields["target"], fields["agent"], fields["attrs"], answer=True)
        if requester is not None:
            edges.add(requester)
        try:
            step = Step(index=index, kind=kind, reads=tuple(sorted(edges)), side_effect=side_effect, **fields,
                        t_start=t_start, t_end=t_end)
        except ValidationError as exc:
            raise RecordingError(f"step {index} ({kind.value}) is invalid: "
                                 f"{validation_summary(exc)}") from None
        self._offsets.append(self._writer.size)   # step `index` starts here (kept aligned even if the write fails)
        try:
            self._writer.write_step(step)
        except OSError as exc:
            self._lose_file(exc, index)
        return step

    def _source_json(self, source: Source) -> dict[str, Any]:
        found = self._sources_json.get(source)
        if found is None:
            if len(self._sources_json) >= _SOURCE_CACHE:
                self._sources_json.clear()
            found = self._sources_json[source] = source.model_dump(mode="json", exclude_defaults=True)
        return found

    def _drop_oldest(self) -> None:
        """Past ``_KEEP + _DROP`` steps in memory, drop the ``_DROP`` oldest (the file holds them).
        Small drops keep the cost of freeing them spread over the steps."""
        if isinstance(self._writer, TraceWriter):
            del self._steps[:_DROP]
            self._base += _DROP

    def preview(self, kind: StepKind | str, *, agent: str | None = None, target: str | None = None,
                content: str | None = None, args: dict[str, Any] | None = None,
                sources: Iterable[Source] = (), side_effect: bool = False,
                attrs: dict[str, Any] | None = None) -> Step:
        """The step that recording this action now would produce (with the edge to the LLM call
        that requested it), without recording it: what run-time guards judge before an action
        runs (their contracts infer the rest of its context as they do for recorded steps)."""
        kind = _step_kind(kind)
        redact = self.redactor
        args_j = redact.jsonable(args) if args is not None else None
        attrs_j = redact.jsonable(attrs) if attrs else {}
        content = redact.text(content) if content else content
        agent = redact.text(agent or current_agent())
        target = redact.text(target) if target else target
        with self._lock:
            requester = self._requests.requester(kind, target, agent, attrs_j, answer=False)
            return Step(index=self._base + len(self._steps), kind=kind, agent=agent, target=target,
                        content=content, args=args_j, sources=tuple(sources),
                        reads=() if requester is None else (requester,), side_effect=side_effect,
                        attrs=attrs_j)

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
        self._outcome = Outcome(status=status, output=self.redactor.jsonable(output),
                                reason=self.redactor.text(reason) if reason else reason)
        return self._outcome

    def close(self, error: BaseException | None = None) -> Trace:
        """Record the ``end`` step and seal the file. Idempotent.

        Without an explicit :meth:`set_outcome`, a run that returned normally ends as
        ``success`` and one that raised as ``error`` (``timeout`` for timeouts).
        """
        self.finish(error)
        return self.trace

    def finish(self, error: BaseException | None = None) -> None:
        """:meth:`close` without building the trace (a long run's would be read back from its file)."""
        if self._closed:
            return
        for callback in self._before_end:
            try:
                callback()
            except Exception as exc:   # what a callback failed to record must not lose the run's end
                warnings.warn(f"mattrace: a before_end callback of {self.name!r} failed: "
                              f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
        if error is not None and (self._outcome is None or self._outcome.status == "success"):
            status: OutcomeStatus = "timeout" if isinstance(error, TimeoutError) else "error"
            self._outcome = Outcome(status=status, reason=self.redactor.for_error(error).text(
                                        f"{type(error).__name__}: {error}"),
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
                self._lose_file(exc, self._base + len(self._steps))
        try:
            for interceptor in self.interceptors:
                close = getattr(interceptor, "close", None)   # optional at run time, see add_interceptor
                if callable(close):
                    close()
        finally:
            close_governed(self)   # last: a call racing the end is refused, never let through
            close_run(self)

    def before_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the run is about to end, before its ``end`` step: the last
        moment steps can still be recorded (a span processor writes the spans still pending)."""
        with self._lock:
            self._before_end.append(callback)

    @property
    def next_index(self) -> int:
        """The index the next recorded step will get."""
        with self._lock:
            return self._base + len(self._steps)

    def _lose_file(self, exc: OSError, index: int) -> None:
        """Keep recording in memory after the file failed; say so once, loudly."""
        self.write_error = exc
        warnings.warn(TraceWriteWarning(self.path, index, exc), stacklevel=3)
        self._writer.close()
        self._writer = MemoryOnlyWriter()

    def abandon(self) -> None:
        """Close the file without an ``end`` step or seal (it reads as an interrupted run)."""
        with self._lock:
            self._closed = True
            self._writer.close()
        close_governed(self)
        close_run(self)


# names this module held before record() and the extension tables got modules of their own
__getattr__ = _moved_names(__name__, {
    "record": "mattrace.recording.blocks", "unrecorded": "mattrace.recording.blocks",
    "recorder_extension": "mattrace.recording.extensions", "RecorderExtension": "mattrace.recording.extensions",
    "AUTO_INSTRUMENT": "mattrace.recording.extensions", "auto_instrument": "mattrace.recording.extensions"})
