"""Deterministic replay: cassettes for every nondeterministic boundary, and comparing traces.

Every ``mattrace.record()`` block stores its boundary results (LLM responses, tool,
retrieval and memory results and errors, the clock and the seed) in a cassette next to
the trace; re-running the same code under that cassette serves them back, so the new
trace has the same fingerprint. See docs/replay.md.

A trace and its cassette are data: replay never runs, imports or builds code a file names
unless the program registered it (``@mattrace.replayable``, ``@mattrace.record``) or the user
allowed it (``entrypoint=``, :func:`allow_modules`); see ``_trust``.
"""

import warnings as _warnings
from typing import Any as _Any

from mattrace.errors import RecordedError as _RecordedError
from mattrace.replay._cassette import MODES, Cassette, RecordMode, cassette_path
from mattrace.replay._diff import MISSING, STEP_FIELDS, Divergence, describe_step, diff_summary, first_divergence
from mattrace.replay._extension import active_cassette, join_run, now, random
from mattrace.replay._file import CassetteFile, read_cassette
from mattrace.replay._match import MATCH_FIELDS, Matcher
from mattrace.replay._rerun import ReplayResult, replay_trace
from mattrace.replay._trust import BUILTIN_MODULES, allow_modules

__all__ = [
    "active_cassette",
    "allow_modules",
    "BUILTIN_MODULES",
    "Cassette",
    "cassette_path",
    "CassetteFile",
    "describe_step",
    "diff_summary",
    "Divergence",
    "first_divergence",
    "join_run",
    "MATCH_FIELDS",
    "Matcher",
    "MISSING",
    "MODES",
    "now",
    "random",
    "read_cassette",
    "RecordMode",
    "replay_trace",
    "ReplayResult",
    "STEP_FIELDS",
]


def __getattr__(name: str) -> _Any:
    # ReplayedError was the stand-in for an exception whose class did not import
    if name == "ReplayedError":
        _warnings.warn("mattrace.replay.ReplayedError is now mattrace.errors.RecordedError", DeprecationWarning,
                       stacklevel=2)
        return _RecordedError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
