"""``record()``: a run as a ``with`` block (sync or async) or a decorated function.

Each block creates one :class:`~mattrace.recording.recorder.Recorder`, makes it the active
recorder of its context (threads and asyncio tasks started inside write to it), and
closes it on the way out: the ``end`` step, the seal, the extensions' ``close()``.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from contextvars import Token
from pathlib import Path
from typing import Any, TypeVar, Unpack, cast, overload

from mattrace.errors import RecordingError
from mattrace.recording.context import _recorder
from mattrace.recording.extensions import auto_instrument
from mattrace.recording.options import RecordOptions, check_options
from mattrace.recording.recorder import Recorder
from mattrace.recording.replayable import register_recorded

__all__ = ["record", "unrecorded"]

_F = TypeVar("_F", bound=Callable[..., Any])


class _Record:
    """A ``record()`` block: context manager (sync and async) and decorator factory."""

    def __init__(self, name: str | None, options: RecordOptions) -> None:
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
        auto_instrument()   # litellm, when the program imported it
        self._recorder = Recorder(self._name, **self._options)
        self._token = _recorder.set(self._recorder)
        return self._recorder

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        assert self._recorder is not None and self._token is not None
        try:
            self._recorder.finish(error=exc)
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

    def _decorate(self, fn: _F) -> _F:
        name = self._name or fn.__qualname__
        options = self._options

        def make(call_args: tuple[Any, ...], call_kwargs: dict[str, Any]) -> _Record:
            entry = options.get("entrypoint") or _entrypoint(fn, call_args, call_kwargs)
            return _Record(name, {**options, "entrypoint": entry})

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*a: Any, **kw: Any) -> Any:
                async with make(a, kw):
                    return await fn(*a, **kw)
            async_wrapper.__mattrace_record__ = True  # type: ignore[attr-defined]
            register_recorded(async_wrapper)
            return cast(_F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            with make(a, kw):
                return fn(*a, **kw)
        # replay calls the function inside its own record() block, so it unwraps this one
        wrapper.__mattrace_record__ = True  # type: ignore[attr-defined]
        # a recorded function is a replayable entry point: the program itself decorated it
        register_recorded(wrapper)
        return cast(_F, wrapper)


@overload
def record(name: _F, /) -> _F: ...
@overload
def record(name: str | None = None, /, **options: Unpack[RecordOptions]) -> _Record: ...
def record(name: str | Callable[..., Any] | None = None, /, **options: Unpack[RecordOptions]) -> Any:
    """Record a run: ``with record(name) as rec:``, ``async with``, ``@record(name)`` or ``@record``.

    Args:
        name: the run's name (e.g. the test's node id); a decorator defaults to the
            function's qualified name.
        **options: see :class:`~mattrace.recording.options.RecordOptions` (``config``,
            ``dir``, ``fsync``, ``entrypoint``, ``governor``, ``labels``, ``redact``,
            ``cassette``, ``record_mode``, ``faults``, ``match``).

    Raises:
        RecordingError: an unknown option (with a did-you-mean) or record mode.

    As a decorator each call of the function is one run in its own trace file; inside it,
    ``mattrace.active_recorder()`` returns the recorder. The decorated function stays a
    plain (or coroutine) function, so it works as a method and ``inspect`` sees it as async.
    """
    check_options(options)
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
    """``module:qualname`` plus arguments, when the arguments survive JSON unchanged.

    A function of the program's ``__main__`` is named after what another process can find:
    run as ``python -m pkg.app`` it is ``pkg.app:fn``; run as ``python app.py`` it stays
    ``__main__:fn`` (no module name reaches the file) and the script's absolute path is kept
    as ``script``, which replay loads only when the user names it (docs/replay.md).
    """
    if "<locals>" in fn.__qualname__:
        return None
    try:
        if json.loads(json.dumps([list(args), kwargs])) != [list(args), kwargs]:
            return None
    except (TypeError, ValueError):
        return None
    module, script = fn.__module__, None
    if module == "__main__":
        main = sys.modules.get("__main__")
        spec_name = getattr(getattr(main, "__spec__", None), "name", None)
        if isinstance(spec_name, str) and spec_name and spec_name != "__main__":
            module = spec_name
        else:
            file = getattr(main, "__file__", None)   # none for python -c and the REPL
            script = str(Path(file).resolve()) if isinstance(file, str) else None
    entry: dict[str, Any] = {"target": f"{module}:{fn.__qualname__}", "args": list(args), "kwargs": kwargs}
    if script is not None:
        entry["script"] = script
    return entry
