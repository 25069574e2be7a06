"""The cassette file: the trace file's crash-safe, hash-chained JSONL, holding call results.

A cassette is evidence in the same way a trace is (a replay is only as good as the
answers it serves), so it is written and verified exactly like one: the chain, the seal,
torn-tail recovery and HMAC signing all come from :mod:`mattrace.tracefile`; only the
records differ. One header (``format: mattrace-cassette``), one ``entry`` line per
recorded boundary call, one seal counting them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from mattrace.tracefile import CASSETTE, RecordFile, RecordWriter, read_records

__all__ = ["CASSETTE_FORMAT", "CASSETTE_VERSION", "CassetteFile", "CassetteWriter", "read_cassette"]

CASSETTE_FORMAT = CASSETTE.name
CASSETTE_VERSION = CASSETTE.version


class CassetteWriter(RecordWriter):
    """Appends entries to a new cassette file (an existing one at ``path`` is replaced)."""

    def __init__(self, path: str | Path, header: dict[str, Any], *, fsync: bool = False,
                 key: bytes | None = None) -> None:
        super().__init__(path, CASSETTE, header, fsync=fsync, key=key)


CassetteFile = RecordFile


def read_cassette(path: str | Path, *, key: bytes | None = None) -> RecordFile:
    """Read and verify a cassette; a torn tail (crashed recording) keeps every complete entry.

    Raises:
        TraceFormatError: missing, not a cassette, another format version, or a line that
            does not verify (altered, removed, reordered, truncated), naming file and line.
    """
    return read_records(path, CASSETTE, key=key)


def load_cassette(path: str | Path) -> CassetteFile:
    """:func:`read_cassette`, with a torn tail reported as a warning."""
    found = read_cassette(path)
    for warning in found.warnings:
        warnings.warn(warning, stacklevel=2)
    return found
