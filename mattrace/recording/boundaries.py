"""Boundary wrappers: ``@tool``, ``@retriever`` and :class:`Memory`.

This is the one choke point where actions are recorded. Every call goes through the
active recorder's interceptor chain (governance, faults, replay register there), then
becomes exactly one step — with its result, or with its error, which is re-raised to the
caller unchanged. Outside a ``record()`` block the wrappers call straight through, so
instrumented code runs the same in production; except while a governed run is open, when
a side effect from code that lost the run's context (a thread) is refused or joins that run
(:mod:`mattrace.recording.unattributed`).
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar, cast, overload

from pydantic import BaseModel, ConfigDict, Field

from mattrace.errors import RecordingError
from mattrace.recording.context import active_recorder, current_agent, restore_tool_call_id, take_tool_call_id
from mattrace.recording.interceptors import Call, CallOutcome, run_call, run_call_async
from mattrace.recording.recorder import Recorder
from mattrace.recording.unattributed import attributed_to, claim, governed_runs_open
from mattrace.trace import Source, Step, StepKind

__all__ = [
    "Doc",
    "Memory",
    "retriever",
    "tool",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_HIDDEN_PARAMS = frozenset({"self", "cls"})


class Doc(BaseModel):
    """A retrieved document: its id (the ref claims cite), text, and whether it is trusted.

    ``trusted=None`` takes the retriever's default.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    trusted: bool | None = None
    score: float | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


def _record(rec: Recorder, call: Call, original: dict[str, Any], result: Any, error: BaseException | None,
            t_start: int, sources: list[Source], reads: tuple[int, ...] = ()) -> Step | None:
    if call.refused:
        return None   # the action never happened; the interceptor that refused it recorded why
    attrs = call.attrs   # the recorder copies what it records
    if call.args != original:
        attrs = {**attrs, "original_args": _shown(original)}
    return rec.append(call.kind, agent=call.agent, target=call.target, args=_shown(call.args),
                      result=result if error is None else None, error=error,
                      sources=[*sources, *call.sources] if call.sources else sources,
                      reads=(*reads, *call.reads) if call.reads else reads,
                      side_effect=call.side_effect, attrs=attrs, t_start=t_start, t_end=time.time_ns())


def _shown(args: dict[str, Any]) -> dict[str, Any]:
    """The arguments a step shows: a method's ``self`` or ``cls`` is left out."""
    if _HIDDEN_PARAMS.isdisjoint(args):
        return args
    return {k: v for k, v in args.items() if k not in _HIDDEN_PARAMS}


def _claimed(rec: Recorder | None, call: Call) -> tuple[Recorder | None, AbstractContextManager[Any]]:
    """The run ``call`` is recorded in, and the context to make it in.

    Inside a ``record()`` block that is the block's run. Outside one (a thread that did not
    inherit the context) while a governed run is open, :func:`claim` decides: the only
    governed run takes it, it runs unrecorded (None), or it is refused (raises).
    """
    if rec is not None:
        return rec, nullcontext()
    owner = claim(call)
    return owner, (attributed_to(owner) if owner is not None else nullcontext())


def _bind(sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _binder(sig: inspect.Signature) -> Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]:
    """``_bind`` for ``sig``: for the usual signature (parameters any call may pass by position
    or name) a dict built directly, in the signature's order, a tenth of ``Signature.bind``'s
    cost; any other signature, and any call that does not fit, goes through ``Signature.bind``
    (so its errors are Python's own)."""
    params = list(sig.parameters.values())
    if not all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params):
        return lambda args, kwargs: _bind(sig, args, kwargs)
    names = tuple(p.name for p in params)
    known = frozenset(names)
    defaults = {p.name: p.default for p in params if p.default is not p.empty}

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        n = len(args)
        if n > len(names) or not known.issuperset(kwargs) or any(name in kwargs for name in names[:n]):
            return _bind(sig, args, kwargs)
        arguments = dict(zip(names, args, strict=False))
        for name in names[n:]:
            if name in kwargs:
                arguments[name] = kwargs[name]
            elif name in defaults:
                arguments[name] = defaults[name]
            else:
                return _bind(sig, args, kwargs)   # missing: Python's TypeError
        return arguments
    return bind


def _invoker(fn: Callable[..., Any], sig: inspect.Signature) -> Callable[..., Any]:
    """Call ``fn`` from an arguments dict (interceptors may have rewritten it)."""
    if all(p.kind is p.POSITIONAL_OR_KEYWORD for p in sig.parameters.values()):
        known = frozenset(sig.parameters)

        def by_name(**arguments: Any) -> Any:   # every parameter can be passed by name
            if known.issuperset(arguments):
                return fn(**arguments)
            return fn(**{k: v for k, v in arguments.items() if k in known})   # as BoundArguments drops them
        return by_name

    def invoke(**arguments: Any) -> Any:
        bound = inspect.BoundArguments(sig, arguments)
        return fn(*bound.args, **bound.kwargs)
    return invoke


def _wrap(fn: _F, kind: StepKind, name: str, side_effect: bool,
          describe: Callable[[Any], tuple[Any, list[Source]]]) -> _F:
    """Wrap ``fn`` as a boundary; ``describe(result)`` gives what to record and its sources."""
    sig = inspect.signature(fn)
    invoke = _invoker(fn, sig)
    bind = _binder(sig)

    def prepare(args: tuple[Any, ...], kwargs: dict[str, Any], call_id: str | None) -> tuple[Call, dict[str, Any]]:
        arguments = bind(args, kwargs)
        attrs = {"tool_call_id": call_id} if call_id is not None else {}
        return Call(kind, name, dict(arguments), current_agent(), side_effect, attrs), arguments

    def finish(rec: Recorder, call: Call, original: dict[str, Any], outcome: CallOutcome,
               t_start: int) -> Any:
        if outcome.error is None:
            recorded, sources = describe(outcome.result)
            _record(rec, call, original, recorded, None, t_start, sources)
            return outcome.result
        _record(rec, call, original, None, outcome.error, t_start, [])
        raise outcome.error

    async def run_async(rec: Recorder, call: Call, original: dict[str, Any]) -> Any:
        t_start = time.time_ns()
        return finish(rec, call, original, await run_call_async(rec.chain, call, invoke), t_start)

    def run(rec: Recorder, call: Call, original: dict[str, Any]) -> Any:
        t_start = time.time_ns()
        return finish(rec, call, original, run_call(rec.chain, call, invoke), t_start)

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            rec = active_recorder()
            if rec is None and not governed_runs_open():
                return await fn(*args, **kwargs)
            call_id, token = take_tool_call_id()   # the calls this one makes answer no request
            try:
                call, original = prepare(args, kwargs, call_id)
                if rec is not None:
                    return await run_async(rec, call, original)
                rec, joined = _claimed(rec, call)
                if rec is None:
                    return await fn(*args, **kwargs)
                with joined:
                    return await run_async(rec, call, original)
            finally:
                restore_tool_call_id(token)
        wrapper: Callable[..., Any] = async_wrapper
    else:
        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            rec = active_recorder()
            if rec is None and not governed_runs_open():
                return fn(*args, **kwargs)
            call_id, token = take_tool_call_id()   # the calls this one makes answer no request
            try:
                call, original = prepare(args, kwargs, call_id)
                if rec is not None:   # inside a record() block: its run (the usual case)
                    return run(rec, call, original)
                rec, joined = _claimed(rec, call)
                if rec is None:
                    return fn(*args, **kwargs)
                with joined:
                    return run(rec, call, original)
            finally:
                restore_tool_call_id(token)
        wrapper = sync_wrapper
    wrapper.__mattrace__ = {"kind": kind.value, "name": name, "side_effect": side_effect}  # type: ignore[attr-defined]
    return cast(_F, wrapper)


@overload
def tool(fn: _F, /) -> _F: ...
@overload
def tool(*, name: str | None = None, side_effect: bool = False,
         trusted: bool = True) -> Callable[[_F], _F]: ...
def tool(fn: _F | None = None, /, *, name: str | None = None, side_effect: bool = False,
         trusted: bool = True) -> _F | Callable[[_F], _F]:
    """Record every call of a function as a ``tool`` step.

    Args:
        name: the tool name contracts and faults refer to (default: the function name).
        side_effect: the call changes the outside world (send, write, pay, delete); the
            taint contracts watch these.
        trusted: whether the tool's output is trusted text (False for web fetches, inboxes
            and anything a third party controls).
    """
    def decorate(f: _F) -> _F:
        _check_callable(f, "tool")
        tool_name = name or f.__name__
        source = [Source(kind="tool", ref=tool_name, trusted=trusted)]
        return _wrap(f, StepKind.TOOL, tool_name, side_effect, lambda result: (result, source))
    return decorate(fn) if fn is not None else decorate


@overload
def retriever(fn: _F, /) -> _F: ...
@overload
def retriever(*, name: str | None = None, trusted: bool = True) -> Callable[[_F], _F]: ...
def retriever(fn: _F | None = None, /, *, name: str | None = None,
              trusted: bool = True) -> _F | Callable[[_F], _F]:
    """Record every call of a search function as a ``retrieval`` step.

    The function returns a list of :class:`Doc` (or dicts with ``id`` and ``text``, or
    plain strings). Each document becomes a source of the step, with its own ``trusted``
    flag (the retriever's ``trusted`` is the default), so contracts can tell which
    retrieved text was untrusted.
    """
    def decorate(f: _F) -> _F:
        _check_callable(f, "retriever")
        index_name = name or f.__name__

        def describe(result: Any) -> tuple[Any, list[Source]]:
            docs = _docs(result, index_name, trusted)
            return docs, [Source(kind="retrieval", ref=d["id"], trusted=d["trusted"]) for d in docs]
        return _wrap(f, StepKind.RETRIEVAL, index_name, False, describe)
    return decorate(fn) if fn is not None else decorate


def _docs(result: Any, index_name: str, default_trusted: bool) -> list[dict[str, Any]]:
    if result is None:
        return []
    items = result if isinstance(result, list | tuple) else [result]
    docs = []
    for i, item in enumerate(items):
        if isinstance(item, Doc):
            doc = item.model_dump(exclude_defaults=True)
        elif isinstance(item, dict):
            doc = dict(item)
        else:
            doc = {"text": str(item)}
        doc.setdefault("id", f"{index_name}#{i}")
        doc["id"] = str(doc["id"])
        if doc.get("trusted") is None:
            doc["trusted"] = default_trusted
        docs.append(doc)
    return docs


def _check_callable(f: Any, what: str) -> None:
    if not callable(f):
        raise RecordingError(f"@mattrace.{what} decorates a function, got {f!r}")


class Memory(MutableMapping[str, Any]):
    """A dict-like shared memory whose reads and writes are recorded.

    ``memory[key]`` is a ``memory_read`` step (a miss is recorded with its KeyError),
    ``memory[key] = value`` and ``del memory[key]`` are ``memory_write`` steps. A read
    ``reads`` the step that last wrote its key, so taint flows through memory. Iteration,
    ``len`` and ``in`` are not recorded: they touch no value. Thread-safe.
    """

    def __init__(self, name: str = "memory", initial: dict[str, Any] | None = None) -> None:
        self.name = name
        self._data: dict[str, Any] = dict(initial or {})
        self._lock = threading.RLock()
        self._last_write: dict[tuple[str, str], int] = {}  # (trace_id, key) -> step

    def __repr__(self) -> str:
        return f"Memory({self.name!r}, keys={sorted(self._data)!r})"

    def _get(self, key: str) -> Any:
        with self._lock:
            return self._data[key]

    def _set(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = value

    def _delete(self, key: str) -> None:
        with self._lock:
            del self._data[key]

    def _through(self, kind: StepKind, key: str, args: dict[str, Any],
                 fn: Callable[..., Any], op: str) -> Any:
        rec = active_recorder()
        if rec is None and not governed_runs_open():
            return fn(**args)
        call = Call(kind, key, dict(args), current_agent(), attrs={"memory": self.name, "op": op})
        rec, joined = _claimed(rec, call)
        if rec is None:
            return fn(**args)
        with joined:
            return self._recorded(rec, call, kind, key, args, fn)

    def _recorded(self, rec: Recorder, call: Call, kind: StepKind, key: str, args: dict[str, Any],
                  fn: Callable[..., Any]) -> Any:
        t_start = time.time_ns()
        outcome = run_call(rec.chain, call, fn)
        last = self._last_write.get((rec.trace_id, key))
        reads = (last,) if kind is StepKind.MEMORY_READ and last is not None else ()
        sources = ([Source(kind="memory", ref=f"{self.name}:{key}")]
                   if kind is StepKind.MEMORY_READ and outcome.error is None else [])
        step = _record(rec, call, args, outcome.result, outcome.error, t_start, sources, reads)
        if kind is StepKind.MEMORY_WRITE and outcome.error is None and step is not None:
            self._last_write[(rec.trace_id, key)] = step.index
        if outcome.error is not None:
            raise outcome.error
        return outcome.result

    def __getitem__(self, key: str) -> Any:
        return self._through(StepKind.MEMORY_READ, key, {"key": key}, self._get, "get")

    def __setitem__(self, key: str, value: Any) -> None:
        self._through(StepKind.MEMORY_WRITE, key, {"key": key, "value": value}, self._set, "set")

    def __delitem__(self, key: str) -> None:
        self._through(StepKind.MEMORY_WRITE, key, {"key": key}, self._delete, "delete")

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._data))

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
