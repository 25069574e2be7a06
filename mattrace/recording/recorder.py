"""The recorder: turns events of a run into steps, in order, and writes them as they happen.

One :class:`Recorder` per run. It assigns step indices under a lock (so concurrent agents
in threads get one total order), fills in the agent and inferred ``reads``, redacts
secrets, writes each step to the trace file at once, and on exit records the ``end``
step and seals the file. :class:`record` is the public entry: a context manager (sync and
async) and a decorator (sync and async functions).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import re
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from contextvars import Token
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast, overload

from pydantic import ValidationError

from mattrace.errors import RecordingError, TraceWriteWarning
from mattrace.recording.context import _recorder, current_agent
from mattrace.recording.interceptors import Interceptor
from mattrace.recording.jsonable import to_jsonable
from mattrace.recording.provenance import OutputIndex
from mattrace.recording.redact import Redactor
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

__all__ = [
    "AUTO_INSTRUMENT",
    "auto_instrument",
    "DEFAULT_DIR",
    "record",
    "Recorder",
    "recorder_extension",
    "RecorderExtension",
    "unrecorded",
]

DEFAULT_DIR = ".mattrace/traces"
F = TypeVar("F", bound=Callable[..., Any])

# steps whose inputs are searched for earlier outputs (see provenance.py)
_INFER_READS = frozenset({StepKind.MESSAGE, StepKind.DELEGATE, StepKind.LLM, StepKind.TOOL,
                          StepKind.MEMORY_WRITE})
# steps whose outputs later steps may read
_PRODUCES = frozenset({StepKind.MESSAGE, StepKind.DELEGATE, StepKind.LLM, StepKind.TOOL,
                       StepKind.RETRIEVAL, StepKind.MEMORY_READ})


AUTO_INSTRUMENT: dict[str, str] = {
    "litellm": "mattrace.integrations.litellm:instrument",
}
"""Libraries whose calls ``record()`` records without being asked: when the library (the key)
is already imported, the function (``module:name``) is called on entering a ``record()`` block.

Named as strings so the core never imports an integration (or the library it adapts):
a program that does not use litellm never pays for importing it.
"""


def auto_instrument() -> None:
    """Instrument every library of :data:`AUTO_INSTRUMENT` that the program has imported.

    Idempotent (each instrument function is). Raises:
        RecordingError: a table entry does not name an importable function.
    """
    for library, target in AUTO_INSTRUMENT.items():
        if library in sys.modules:
            module, _, attr = target.partition(":")
            try:
                instrument = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise RecordingError(f"cannot instrument {library}: {target} is not importable ({exc})") from None
            instrument()


RecorderExtension = Callable[["Recorder", dict[str, Any]], Interceptor | None]
"""Called for every new recorder with the ``record()`` options; may return an interceptor."""

_EXTENSIONS: dict[str, RecorderExtension] = {}


def recorder_extension(name: str) -> Callable[[RecorderExtension], RecorderExtension]:
    """Register a function that joins every recorder (replay, faults and governance plug in so).

    ``recording`` imports none of those packages; they register here when imported. The
    returned interceptor joins the recorder's chain; if it has a ``close()`` method, the
    recorder calls it after sealing the trace.
    """
    if not isinstance(name, str) or not name:
        raise RecordingError(f"a recorder extension needs a name, got {name!r}")

    def register(fn: RecorderExtension) -> RecorderExtension:
        if not callable(fn):
            raise RecordingError(f"recorder extension {name!r} must be callable, got {fn!r}")
        _EXTENSIONS[name] = fn
        return fn
    return register


def _step_kind(kind: StepKind | str) -> StepKind:
    try:
        return StepKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in StepKind)
        raise RecordingError(f"unknown step kind {kind!r}; expected one of: {known}") from None


def _slug(name: str) -> str:
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

    def __init__(self, name: str, *, config: dict[str, Any] | None = None,
                 dir: str | Path = DEFAULT_DIR, fsync: bool = False,
                 entrypoint: dict[str, Any] | None = None,
                 governor: Interceptor | None = None, labels: dict[str, str] | None = None,
                 redact: Redactor | None = None, path: str | Path | None = None,
                 persist: bool = True, cassette: str | Path | bool = True,
                 record_mode: str = "once", faults: Any = None) -> None:
        if not isinstance(name, str) or not name:
            raise RecordingError(f"record() needs a non-empty run name, got {name!r}")
        self.trace_id = uuid.uuid4().hex
        self.redactor = redact if redact is not None else Redactor()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        self.path = Path(path) if path else Path(dir) / f"{_slug(name)}-{stamp}-{self.trace_id[:8]}.jsonl"
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
        self._tool_requests: dict[str, int] = {}
        self._interceptors: list[Interceptor] = []
        self._before_end: list[Callable[[], None]] = []
        self._outcome: Outcome | None = None
        self._closed = False
        self.write_error: OSError | None = None
        if governor is not None:
            self.add_interceptor(governor)
        # extensions first: one that refuses the run (a missing cassette to replay) must do so
        # before a trace file exists, or an empty unsealed trace would be left behind
        options = {"cassette": cassette if persist else False, "record_mode": record_mode, "fsync": fsync,
                   "faults": faults}
        for extension in list(_EXTENSIONS.values()):
            joined = extension(self, options)
            if joined is not None:
                self.add_interceptor(joined)
        self._writer: TraceWriter | _NullWriter = (
            TraceWriter(self.path, self._header, fsync=fsync) if persist else _NullWriter())

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

    # -- interceptors ----------------------------------------------------------------------

    def add_interceptor(self, interceptor: Interceptor) -> None:
        """Put ``interceptor`` into this run's boundary chain, at its ``order``."""
        if not isinstance(interceptor, Interceptor):
            raise RecordingError(f"{interceptor!r} is not an Interceptor (needs name, order, "
                                 "before(call) and after(call, outcome))")
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
            if kind is StepKind.TOOL and target in self._tool_requests:
                edges.add(self._tool_requests.pop(target))
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
                self._tool_requests[name] = index
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
            if kind is StepKind.TOOL and target in self._tool_requests:
                edges.add(self._tool_requests[target])
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
        for interceptor in self.interceptors:
            close = getattr(interceptor, "close", None)
            if callable(close):
                close()
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


def _read_inputs(kind: StepKind, args: dict[str, Any] | None) -> dict[str, Any] | None:
    """The inputs a step's ``reads`` are inferred from: an LLM call's list of offered tools is
    not text it read (a tool named like an earlier output must not link the two)."""
    if kind is StepKind.LLM and args and "tools" in args:
        return {k: v for k, v in args.items() if k != "tools"}
    return args


class _Record:
    """A ``record()`` block: context manager (sync and async) and decorator factory."""

    def __init__(self, name: str | None, options: dict[str, Any]) -> None:
        self._name = name
        self._options = options
        self._recorder: Recorder | None = None
        self._token: Token[Recorder | None] | None = None

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> Recorder:
        if self._recorder is not None:
            raise RecordingError("this record() block is already active; use a new record() per run")
        if self._name is None:
            raise RecordingError("record() used as a context manager needs a run name")
        auto_instrument()
        self._recorder = Recorder(self._name, **self._options)
        self._token = _recorder.set(self._recorder)
        return self._recorder

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        assert self._recorder is not None and self._token is not None
        try:
            self._recorder.close(error=exc)
        finally:
            _recorder.reset(self._token)

    async def __aenter__(self) -> Recorder:
        return self.__enter__()

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- decorator -------------------------------------------------------------------------

    def __call__(self, *args: Any) -> Any:
        if len(args) != 1 or not callable(args[0]):
            raise RecordingError("record(...) as a decorator takes exactly one function, "
                                 f"got {args!r}")
        return self._decorate(args[0])

    def _decorate(self, fn: F) -> F:
        name = self._name or fn.__qualname__
        options = self._options

        def make(call_args: tuple[Any, ...], call_kwargs: dict[str, Any]) -> _Record:
            entry = options["entrypoint"] or _entrypoint(fn, call_args, call_kwargs)
            return _Record(name, options | {"entrypoint": entry})

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*a: Any, **kw: Any) -> Any:
                async with make(a, kw):
                    return await fn(*a, **kw)
            async_wrapper.__mattrace_record__ = True  # type: ignore[attr-defined]
            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            with make(a, kw):
                return fn(*a, **kw)
        # replay calls the function inside its own record() block, so it unwraps this one
        wrapper.__mattrace_record__ = True  # type: ignore[attr-defined]
        return cast(F, wrapper)


@overload
def record(name: F, /) -> F: ...
@overload
def record(name: str | None = None, /, *, config: dict[str, Any] | None = None,
           dir: str | Path = DEFAULT_DIR, fsync: bool = False,
           entrypoint: dict[str, Any] | None = None, governor: Interceptor | None = None,
           labels: dict[str, str] | None = None, redact: Redactor | None = None,
           cassette: str | Path | bool = True, record_mode: str = "once", faults: Any = None) -> _Record: ...
def record(name: str | Callable[..., Any] | None = None, /, *,
           config: dict[str, Any] | None = None, dir: str | Path = DEFAULT_DIR,
           fsync: bool = False, entrypoint: dict[str, Any] | None = None,
           governor: Interceptor | None = None, labels: dict[str, str] | None = None,
           redact: Redactor | None = None, cassette: str | Path | bool = True,
           record_mode: str = "once", faults: Any = None) -> Any:
    """Record a run: ``with record(name) as rec:``, ``async with``, ``@record(name)`` or ``@record``.

    Args:
        name: the run's name (e.g. the test's node id); a decorator defaults to the
            function's qualified name.
        config: what this run was configured with (model, seed, orchestration, ...).
        dir: directory for the trace file (default ``.mattrace/traces``).
        fsync: ``os.fsync`` every step (durable against power loss; much slower).
        entrypoint: ``{"target": "module:function", "args": [...], "kwargs": {...}}`` so
            the run can be re-run; the decorator fills it in when the arguments are JSON-able.
        governor: an interceptor put in front of every boundary call.
        labels: free-form string labels stored with the trace.
        redact: the :class:`Redactor` for everything recorded (default redacts common secrets).
        cassette: where the run's boundary results are stored for replay: ``True`` (default)
            next to the trace file (``x.jsonl`` → ``x.cassette``), a path, or ``False`` for none.
        record_mode: ``once`` (default: record unless the cassette exists, else replay it),
            ``none`` (replay only), ``new`` (replay known calls, record new ones), ``all``.
        faults: faults to inject (``mattrace.faults``: a list, or a ``FaultPlan`` with a seed);
            each hit is recorded as a ``fault`` step.

    As a decorator each call of the function is one run in its own trace file; inside it,
    ``mattrace.active_recorder()`` returns the recorder. The decorated function stays a
    plain (or coroutine) function, so it works as a method and ``inspect`` sees it as async.
    """
    options: dict[str, Any] = dict(config=config, dir=dir, fsync=fsync, entrypoint=entrypoint,
                                   governor=governor, labels=labels, redact=redact, cassette=cassette,
                                   record_mode=record_mode, faults=faults)
    if callable(name):  # bare @record
        return _Record(None, options)._decorate(name)
    return _Record(name, options)


def unrecorded(fn: Any) -> Any:
    """``fn`` without its ``@record`` decorator: for callers that open the record() block
    themselves (replay, a search), so the run is not recorded twice in nested blocks."""
    while getattr(fn, "__mattrace_record__", False) and hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return fn


def _entrypoint(fn: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """``module:qualname`` plus arguments, when the arguments survive JSON unchanged."""
    if "<locals>" in fn.__qualname__:
        return None
    try:
        if json.loads(json.dumps([list(args), kwargs])) != [list(args), kwargs]:
            return None
    except (TypeError, ValueError):
        return None
    return {"target": f"{fn.__module__}:{fn.__qualname__}", "args": list(args), "kwargs": kwargs}
