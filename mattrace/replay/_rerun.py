"""Re-running a recorded run under its cassette, and saying whether it came out the same.

A trace whose header names its entry point (``module:function`` and JSON-able
arguments) can be run again, when the program registered that function or the user
named it (a trace is data: see :mod:`mattrace.replay._trust`): it is called inside a ``record()``
block with the recorded name, config and labels, and with the cassette in ``none`` mode,
so every boundary answer comes from the recording (no model, no network, no API key).
The new trace is then compared with the old one by :func:`first_divergence`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mattrace.errors import MatTraceError, ReplayMismatch
from mattrace.recording import RecordMode, record, unrecorded
from mattrace.recording.extensions import instrument
from mattrace.recording.options import record_mode
from mattrace.replay import _trust as trust
from mattrace.replay._cassette import Cassette, cassette_path
from mattrace.replay._diff import Divergence, first_divergence
from mattrace.replay._extension import active_cassette
from mattrace.replay._file import read_cassette
from mattrace.trace import REPLAY_LABEL, StepKind, Trace
from mattrace.tracefile import read_trace_file

__all__ = ["REPLAY_LABEL", "ReplayResult", "replay_trace"]


@dataclass
class ReplayResult:
    """What a replay found: both traces, the first divergence, and the cassette's loose ends."""

    original: Trace
    replayed: Trace
    path: Path
    cassette: Path
    divergence: Divergence | None
    unused: list[dict[str, Any]] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    error: str | None = None
    unfinished: list[str] = field(default_factory=list)
    """The recordings that never finished (the trace or the cassette has no seal): what the replay
    matched is only what they hold, so "identical" vouches for that part of the run alone."""

    @property
    def identical(self) -> bool:
        return self.divergence is None

    @property
    def incomplete(self) -> bool:
        """Whether the replay was compared against a recording that never finished."""
        return bool(self.unfinished)

    def to_json_dict(self) -> dict[str, Any]:
        return {"identical": self.identical, "trace": str(self.path), "cassette": str(self.cassette),
                "fingerprint": self.replayed.fingerprint(),
                "divergence": self.divergence.to_json_dict() if self.divergence else None,
                "unused": self.unused, "mismatches": self.mismatches, "error": self.error,
                "incomplete": self.incomplete, "unfinished": self.unfinished}


def replay_trace(path: str | Path, *, out_dir: str | Path | None = None, cassette: str | Path | None = None,
                 mode: RecordMode | str = RecordMode.NONE, entrypoint: str | Callable[..., Any] | None = None,
                 allow_modules: Iterable[str] = ()) -> ReplayResult:
    """Re-run the recorded run of the trace at ``path`` under its cassette and compare.

    The trace and the cassette are data: the entry point the header names runs only if the
    program registered it (``@mattrace.record``, ``@mattrace.replayable``) or the caller names
    it here, and cassette values are rebuilt only into allowed classes (docs/replay.md).

    Args:
        path: a trace file whose header has an ``entrypoint``.
        out_dir: where the new trace goes (default: ``replays/`` beside the trace).
        cassette: the cassette (default: the one next to the trace).
        mode: the cassette's record mode; ``none`` (default) answers only from the recording.
        entrypoint: the entry point you allow, as ``"module:function"`` or the function
            itself; it must be the one the trace names.
        allow_modules: modules (with their submodules) replay may import for their registered
            entry points, and whose dataclasses and pydantic models it may rebuild.

    Raises:
        TraceFormatError: the trace or the cassette is corrupt (file and line).
        ReplayRefused: the entry point is neither registered, in an allowed module, nor named.
        ReplayMismatch: the trace has no entry point, or it no longer imports.
    """
    path = Path(path)
    found = read_trace_file(path)
    original = found.trace
    entry = original.entrypoint
    if not entry:
        raise ReplayMismatch(f"{path}: this trace records no entry point, so it cannot be re-run; record it "
                             "with @mattrace.record or mattrace.record(..., entrypoint={'target': 'module:fn', "
                             "'args': [...], 'kwargs': {...}})")
    with trust.allow_modules(*allow_modules) as allowance:
        # a function recorded with @mattrace.record opens its own block; replay provides it
        fn = unrecorded(trust.entrypoint_function(entry, path=path, named=entrypoint, allowance=allowance))
        args, kwargs = entry.get("args") or [], entry.get("kwargs") or {}
        if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise ReplayMismatch(f"{path}: the entry point's args must be a list and its kwargs an object")
        result = _rerun(path, original, fn, args, kwargs, cassette, out_dir, mode)
    if not found.sealed:
        result.unfinished.append(f"the trace {path} is not sealed")
    if result.cassette.is_file() and not read_cassette(result.cassette).sealed:
        result.unfinished.append(f"the cassette {result.cassette} is not sealed")
    return result


def _rerun(path: Path, original: Trace, fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any],
           cassette: str | Path | None, out_dir: str | Path | None, mode: RecordMode | str) -> ReplayResult:
    entry = original.entrypoint
    if any(s.kind is StepKind.LLM for s in original.steps):
        # record() instruments litellm only if the program imported it already; the recorded
        # program may import it later, inside the run, so the LLM path is wrapped up front
        instrument("litellm")
    tape = Path(cassette) if cassette is not None else cassette_path(path)
    out = Path(out_dir) if out_dir is not None else path.parent / "replays"
    error: str | None = None
    used: Cassette | None = None
    try:
        labels = {**original.labels, REPLAY_LABEL: original.trace_id}   # volatile: not in the fingerprint
        with record(original.name, config=original.config, labels=labels, entrypoint=entry,
                    dir=out, cassette=tape, record_mode=record_mode(mode)) as rec:
            used = active_cassette()
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                asyncio.run(_await(result))
    except MatTraceError as exc:
        if used is None:
            raise
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:   # the recorded run may have raised as well: the traces will say
        error = f"{type(exc).__name__}: {exc}"
    replayed = rec.trace
    return ReplayResult(original, replayed, rec.path, tape, first_divergence(original, replayed),
                        unused=used.unused() if used else [],
                        mismatches=[str(m) for m in used.mismatches] if used else [], error=error)


async def _await(awaitable: Any) -> Any:
    return await awaitable
