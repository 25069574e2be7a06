"""Trace files written from traces the test builds (with mattrace.testing), as a recorder writes them."""

from __future__ import annotations

from pathlib import Path

from mattrace.trace import Trace
from mattrace.tracefile import TraceWriter


def write_trace_file(t: Trace, path: Path) -> Path:
    """``t`` as a sealed trace file at ``path`` (signed when ``MATTRACE_HMAC_KEY`` is set)."""
    writer = TraceWriter(path, t)
    for s in t.steps:
        writer.write_step(s)
    writer.seal(t.outcome)
    return path
