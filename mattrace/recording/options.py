"""The options of a recorded run: one definition of ``record()``'s keyword arguments.

``record()``, :class:`~mattrace.recording.Recorder` and the recorder extensions (replay,
faults) all take these options; they are declared once here as a ``TypedDict`` (so a type
checker and an editor know every keyword of ``record(...)``) and checked at run time, where
a misspelled option is an error with a did-you-mean instead of a silently ignored keyword.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from mattrace.errors import RecordingError

if TYPE_CHECKING:
    from mattrace.faults import Fault, FaultPlan
    from mattrace.recording.interceptors import Interceptor
    from mattrace.recording.redact import Redactor
    from mattrace.replay import Matcher

__all__ = ["DEFAULT_DIR", "check_options", "RecordMode", "RecordOptions", "record_mode"]

DEFAULT_DIR = ".mattrace/traces"
"""Where trace files go unless ``dir=`` says otherwise."""


class RecordMode(StrEnum):
    """How a run uses its cassette (vcrpy's modes). A plain string (``"none"``) works too."""

    NONE = "none"
    """Replay only: every boundary call is answered from the cassette; one it lacks is an error."""
    ONCE = "once"
    """Record when there is no cassette yet, else replay it (the default)."""
    NEW = "new"
    """Replay the calls the cassette has, record the ones it lacks."""
    ALL = "all"
    """Record afresh, replacing the cassette."""


class RecordOptions(TypedDict, total=False):
    """The keyword arguments of ``record()`` (every one optional).

    Attributes:
        config: what this run was configured with (model, seed, orchestration, ...).
        dir: directory for the trace file (default ``.mattrace/traces``).
        fsync: ``os.fsync`` every step (durable against power loss; much slower).
        entrypoint: ``{"target": "module:function", "args": [...], "kwargs": {...}}`` so
            the run can be re-run; the decorator fills it in when the arguments are JSON-able.
        governor: an interceptor put in front of every boundary call.
        labels: free-form string labels stored with the trace.
        redact: the :class:`~mattrace.recording.Redactor` for everything recorded: trace,
            cassette and audit log (default redacts common secrets, docs/security.md).
        cassette: where the run's boundary results are stored for replay: ``True`` (default)
            next to the trace file (``x.jsonl`` → ``x.cassette``), a path, or ``False``.
        record_mode: a :class:`RecordMode` (default ``once``).
        faults: faults to inject (:mod:`mattrace.faults`): a list, or a ``FaultPlan`` with
            its seed; each hit is recorded as a ``fault`` step.
        match: how replay matches a call with a recorded one, a
            :class:`mattrace.replay.Matcher` (default: kind, target, agent and arguments, all
            equal); ``Matcher.of(ignore=["re:\\d{4}-\\d{2}-\\d{2}"])`` leaves dates out.
    """

    config: dict[str, Any] | None
    dir: str | Path
    fsync: bool
    entrypoint: dict[str, Any] | None
    governor: Interceptor | None
    labels: dict[str, str] | None
    redact: Redactor | None
    cassette: str | Path | bool
    record_mode: RecordMode | Literal["none", "once", "new", "all"]
    faults: Sequence[Fault] | FaultPlan | None
    match: Matcher | None


_NAMES = tuple(RecordOptions.__annotations__)


def check_options(options: Mapping[str, Any], where: str = "record()") -> None:
    """Refuse an option ``record()`` does not have, naming the closest one it does.

    Raises:
        RecordingError: an unknown option (``record(fautls=...)`` would otherwise be ignored,
            and the run would pass without the faults it was meant to survive).
    """
    unknown = sorted(set(options) - set(_NAMES))
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, _NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RecordingError(f"{where} got an unknown option {name!r}{hint}; its options are: {', '.join(_NAMES)}")
    if "record_mode" in options:
        record_mode(options["record_mode"])


def record_mode(value: Any) -> RecordMode:
    """``value`` as a :class:`RecordMode`; a string that is not one is an error listing the modes."""
    try:
        return RecordMode(value)
    except ValueError:
        modes = ", ".join(m.value for m in RecordMode)
        raise RecordingError(f"unknown record mode {value!r}; expected one of {modes}") from None
