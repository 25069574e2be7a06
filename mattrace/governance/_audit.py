"""The governance audit log: every decision of a run, in a file a reviewer can verify.

The trace holds the decisions too, but a reviewer asked to prove which actions were
mediated and how wants a record of the governor alone, signed like the trace: the same
hash chain (HMAC with ``MATTRACE_HMAC_KEY``) and seal, checked by ``mattrace verify``.
One log per governed run, next to its trace: ``x.jsonl`` → ``x.governance``.
"""

from __future__ import annotations

from pathlib import Path

from mattrace.tracefile import AUDIT_LOG, RecordFile, RecordWriter, read_records

__all__ = ["AUDIT_FORMAT", "AUDIT_VERSION", "audit_path", "read_audit_log"]

AUDIT_FORMAT = AUDIT_LOG.name
AUDIT_VERSION = AUDIT_LOG.version


def audit_path(trace_path: str | Path) -> Path:
    """Where a run's audit log lives: next to its trace, ``x.jsonl`` → ``x.governance``."""
    path = Path(trace_path)
    return path.with_name(path.name.removesuffix(".jsonl") + ".governance")


def open_audit_log(trace_path: str | Path, trace_id: str, name: str) -> RecordWriter:
    return RecordWriter(audit_path(trace_path), AUDIT_LOG, {"trace_id": trace_id, "name": name})


def read_audit_log(path: str | Path) -> RecordFile:
    """Read and verify an audit log (``TraceFormatError`` with file and line if it was altered)."""
    return read_records(path, AUDIT_LOG)
