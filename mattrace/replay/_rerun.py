"""Re-running a recorded run under its cassette, and saying whether it came out the same.

A trace whose header names its entry point (``module:function`` and JSON-able
arguments) can be run again: the function is imported and called inside a ``record()``
block with the recorded name, config and labels, and with the cassette in ``none`` mode,
so every boundary answer comes from the recording (no model, no network, no API key).
The new trace is then compared with the old one by :func:`first_divergence`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mattrace.errors import MatTraceError, ReplayMismatch
from mattrace.recording import RecordMode, record, unrecorded
from mattrace.recording.extensions import instrument
from mattrace.recording.options import record_mode
from mattrace.replay._cassette import Cassette, cassette_path
from mattrace.replay._diff import Divergence, first_divergence
from mattrace.replay._extension import active_cassette
from mattrace.trace import StepKind, Trace
from mattrace.tracefile import read_trace_file

__all__ = ["REPLAY_LABEL", "ReplayResult", "replay_trace"]

REPLAY_LABEL = "mattrace.replay_of"
"""The label a replayed trace carries: the trace id it reproduces (filter replays out with it)."""


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

    @property
    def identical(self) -> bool:
        return self.divergence is None

    def to_json_dict(self) -> dict[str, Any]:
        return {"identical": self.identical, "trace": str(self.path), "cassette": str(self.cassette),
                "fingerprint": self.replayed.fingerprint(),
                "divergence": self.divergence.to_json_dict() if self.divergence else None,
                "unused": self.unused, "mismatches": self.mismatches, "error": self.error}


def _target(entrypoint: dict[str, Any], where: str) -> Any:
    spec = entrypoint.get("target")
    if not isinstance(spec, str) or ":" not in spec:
        raise ReplayMismatch(f"{where}: the entry point {spec!r} is not module:function")
    module_name, _, qualname = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except ImportError as exc:
        raise ReplayMismatch(f"{where}: cannot import the entry point {spec} ({exc}); run from the project "
                             "root or set PYTHONPATH") from None
    except AttributeError:
        raise ReplayMismatch(f"{where}: the entry point {spec} no longer exists") from None
    # a function recorded with @mattrace.record opens its own block; replay provides it
    return unrecorded(obj)


def replay_trace(path: str | Path, *, out_dir: str | Path | None = None, cassette: str | Path | None = None,
                 mode: RecordMode | str = RecordMode.NONE) -> ReplayResult:
    """Re-run the recorded run of the trace at ``path`` under its cassette and compare.

    Args:
        path: a trace file whose header has an ``entrypoint``.
        out_dir: where the new trace goes (default: ``replays/`` beside the trace).
        cassette: the cassette (default: the one next to the trace).
        mode: the cassette's record mode; ``none`` (default) answers only from the recording.

    Raises:
        TraceFormatError: the trace or the cassette is corrupt (file and line).
        ReplayMismatch: the trace has no entry point, or it no longer imports.
    """
    path = Path(path)
    original = read_trace_file(path).trace
    entry = original.entrypoint
    if not entry:
        raise ReplayMismatch(f"{path}: this trace records no entry point, so it cannot be re-run; record it "
                             "with @mattrace.record or mattrace.record(..., entrypoint={'target': 'module:fn', "
                             "'args': [...], 'kwargs': {...}})")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))   # the recorded program is usually the project in cwd
    fn = _target(entry, str(path))
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
            result = fn(*entry.get("args", []), **entry.get("kwargs", {}))
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
