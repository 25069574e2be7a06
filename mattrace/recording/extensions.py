"""What joins a recorded run without the core importing it: extensions and auto-instrumentation.

The recording core sits below replay, faults and the integrations, so it never imports
them; it names them. Two tables, both of ``module:function`` strings resolved with
importlib when a run starts, so what a run does never depends on what happened to be
imported first:

* :data:`EXTENSIONS`: functions called for every new recorder with its options
  (:class:`~mattrace.recording.options.RecordOptions`); one may return an interceptor for
  the run's chain. Replay (the cassette) and fault injection join runs this way. Other
  code adds its own with an explicit :func:`recorder_extension` call.
* :data:`AUTO_INSTRUMENT`: libraries whose calls ``record()`` records without being asked,
  instrumented when the library is already imported (a program that never imports
  litellm never pays for importing it).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mattrace.errors import RecordingError

if TYPE_CHECKING:
    from mattrace.recording.interceptors import Interceptor
    from mattrace.recording.options import RecordOptions
    from mattrace.recording.recorder import Recorder

__all__ = [
    "AUTO_INSTRUMENT",
    "auto_instrument",
    "EXTENSIONS",
    "instrument",
    "recorder_extension",
    "RecorderExtension",
    "resolve",
    "run_extensions",
]

RecorderExtension = Callable[["Recorder", "RecordOptions"], "Interceptor | None"]
"""Called for every new recorder with the ``record()`` options; may return an interceptor."""

EXTENSIONS: dict[str, str | RecorderExtension] = {
    "faults": "mattrace.faults:join_run",
    "replay": "mattrace.replay:join_run",
}
"""The extensions every recorder runs, in this order: name → function or ``module:function``."""

AUTO_INSTRUMENT: dict[str, str] = {
    "litellm": "mattrace.integrations.litellm:instrument",
    "openai": "mattrace.integrations.openai:instrument",
    "anthropic": "mattrace.integrations.anthropic:instrument",
}
"""Library (a ``sys.modules`` name) → the ``module:function`` that instruments it."""


def resolve(target: str, what: str) -> Callable[..., Any]:
    """The function a ``module:function`` string names (mattrace's own tables only).

    Raises:
        RecordingError: the module or function does not exist.
    """
    module, _, attr = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise RecordingError(f"{what}: {target} is not importable ({exc})") from None
    if not callable(fn):
        raise RecordingError(f"{what}: {target} is not a function")
    return fn  # type: ignore[no-any-return]


def recorder_extension(name: str) -> Callable[[RecorderExtension], RecorderExtension]:
    """Register a function that joins every recorder from now on (an explicit call, not an
    import side effect of mattrace's own packages).

    The returned interceptor joins the recorder's chain; the recorder calls its ``close()``
    after sealing the trace.
    """
    if not isinstance(name, str) or not name:
        raise RecordingError(f"a recorder extension needs a name, got {name!r}")

    def register(fn: RecorderExtension) -> RecorderExtension:
        if not callable(fn):
            raise RecordingError(f"recorder extension {name!r} must be callable, got {fn!r}")
        EXTENSIONS[name] = fn
        return fn
    return register


def run_extensions(recorder: Recorder, options: RecordOptions) -> list[Interceptor]:
    """The interceptors the extensions contribute to a new recorder, in table order."""
    joined: list[Interceptor] = []
    for name, entry in list(EXTENSIONS.items()):
        fn = resolve(entry, f"recorder extension {name!r}") if isinstance(entry, str) else entry
        interceptor = fn(recorder, options)
        if interceptor is not None:
            joined.append(interceptor)
    return joined


def instrument(library: str) -> None:
    """Instrument ``library`` (a key of :data:`AUTO_INSTRUMENT`) now, imported or not: for a
    caller that knows the run will use it (replaying a trace with LLM steps)."""
    resolve(AUTO_INSTRUMENT[library], f"cannot instrument {library}")()


def auto_instrument() -> None:
    """Instrument every library of :data:`AUTO_INSTRUMENT` that the program has imported.

    Idempotent (each instrument function is).
    """
    for library, target in AUTO_INSTRUMENT.items():
        if library in sys.modules:
            resolve(target, f"cannot instrument {library}")()
