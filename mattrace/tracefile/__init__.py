"""The on-disk trace format: append-only JSONL, hash-chained, sealed, crash-recoverable.

Why this shape: the trace file is the source of truth for everything derived later (the
DuckDB store, OTel export, reports), so it has to survive the recording process being
killed at any instant and has to show when anyone edited it afterwards.

* One line per record: a header, one line per step, a seal. Each line is written with a
  single ``write(2)`` as soon as it exists (``fsync`` optional), so a crash loses at most
  the line being written.
* Every line ends with ``"h": H(previous h + the line's bytes without h)``; H is sha256, or
  HMAC-SHA256 when ``MATTRACE_HMAC_KEY`` is set. The hash covers the raw bytes, not a
  re-serialisation, so no byte can change unnoticed.
* With a key, every reader accepts only files signed with it: anyone can recompute a plain
  sha256 chain over a cut or edited file. The rule is in the one reader loop every reader
  (check, show, the store, replay, governance, verify) goes through. An empty key is
  refused, reading and writing: it is a configuration mistake, not "no key".
* The seal records the step count and the last hash: a sealed file that lost lines at the
  end is detected as truncated.
* A partial last line (no newline) is the signature of a crash: readers recover every
  complete line and warn (:class:`~mattrace.errors.TornTailWarning`). Anything else that
  does not verify is a :class:`~mattrace.errors.TraceFormatError` naming file and line.

Thread-safety: a :class:`TraceWriter` is not locked; the recorder serialises calls to it.
"""

from mattrace.tracefile._format import (
    AUDIT_LOG,
    CASSETTE,
    FORMAT,
    FORMATS,
    HMAC_ENV,
    TRACE,
    VERSION,
    FileFormat,
    hmac_key_from_env,
)
from mattrace.tracefile._json import MAX_DEPTH, JSONInputError, parse_json, too_deep
from mattrace.tracefile._read import (
    ReadResult,
    RecordFile,
    TraceStream,
    VerifyReport,
    load,
    open_trace,
    read_records,
    read_trace_file,
    verify,
)
from mattrace.tracefile._write import ChainedWriter, RecordWriter, TraceWriter

__all__ = [
    "AUDIT_LOG",
    "CASSETTE",
    "ChainedWriter",
    "FileFormat",
    "FORMAT",
    "FORMATS",
    "HMAC_ENV",
    "hmac_key_from_env",
    "JSONInputError",
    "load",
    "MAX_DEPTH",
    "open_trace",
    "parse_json",
    "read_records",
    "read_trace_file",
    "ReadResult",
    "RecordFile",
    "RecordWriter",
    "too_deep",
    "TRACE",
    "TraceStream",
    "TraceWriter",
    "verify",
    "VerifyReport",
    "VERSION",
]
