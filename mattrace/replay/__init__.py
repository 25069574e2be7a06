"""Deterministic replay: cassettes for every nondeterministic boundary, and comparing traces.

Every ``mattrace.record()`` block stores its boundary results (LLM responses, tool,
retrieval and memory results and errors, the clock and the seed) in a cassette next to
the trace; re-running the same code under that cassette serves them back, so the new
trace has the same fingerprint. See docs/replay.md.
"""

from mattrace.replay._cassette import MODES, Cassette, RecordMode, cassette_path
from mattrace.replay._codec import ReplayedError
from mattrace.replay._diff import MISSING, STEP_FIELDS, Divergence, describe_step, diff_summary, first_divergence
from mattrace.replay._extension import active_cassette, join_run, now, random
from mattrace.replay._file import CassetteFile, read_cassette
from mattrace.replay._rerun import ReplayResult, replay_trace

__all__ = [
    "active_cassette",
    "Cassette",
    "cassette_path",
    "CassetteFile",
    "describe_step",
    "diff_summary",
    "Divergence",
    "first_divergence",
    "join_run",
    "MISSING",
    "MODES",
    "now",
    "random",
    "read_cassette",
    "RecordMode",
    "replay_trace",
    "ReplayedError",
    "ReplayResult",
    "STEP_FIELDS",
]
