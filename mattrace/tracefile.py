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
* The seal records the step count and the last hash: a sealed file that lost lines at the
  end is detected as truncated.
* A partial last line (no newline) is the signature of a crash: readers recover every
  complete line and warn (:class:`~mattrace.errors.TornTailWarning`). Anything else that
  does not verify is a :class:`~mattrace.errors.TraceFormatError` naming file and line.

Thread-safety: a :class:`TraceWriter` is not locked; the recorder serialises calls to it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mattrace.errors import RecordingError, TornTailWarning, TraceFormatError
from mattrace.trace import Outcome, Step, Trace, canonical_json, validation_summary

__all__ = [
    "AUDIT_LOG",
    "CASSETTE",
    "ChainedWriter",
    "FileFormat",
    "FORMAT",
    "FORMATS",
    "HMAC_ENV",
    "hmac_key_from_env",
    "load",
    "read_records",
    "read_trace_file",
    "ReadResult",
    "RecordFile",
    "RecordWriter",
    "TRACE",
    "TraceWriter",
    "verify",
    "VerifyReport",
    "VERSION",
]

HMAC_ENV = "MATTRACE_HMAC_KEY"
_SHA = "sha256"
_HMAC = "hmac-sha256"
_HASH_PREFIX = b',"h":"'
_HASH_SUFFIX_LEN = len(_HASH_PREFIX) + 64 + 2  # ,"h":"<64 hex>"}


@dataclass(frozen=True)
class FileFormat:
    """One kind of chained JSONL file: a header, body records of one type, a seal counting them.

    Traces, cassettes and governance audit logs share the chain, the seal, torn-tail
    recovery and HMAC signing; they differ only in the names below. The table of them is
    static (:data:`FORMATS`), so any reader in any process knows every format without
    importing the package that writes it.
    """

    name: str
    """The header's ``format``."""
    version: int
    noun: str
    """What a person calls the file, in messages."""
    header_key: str
    """The header field holding the file's metadata object."""
    record: str
    """The ``type`` of a body record (``step`` or ``entry``), whose payload is under the same key."""
    counted: str
    """The seal's count field (``steps`` or ``entries``)."""
    suffix: str


TRACE = FileFormat("mattrace-trace", 1, "trace", "trace", "step", "steps", ".jsonl")
CASSETTE = FileFormat("mattrace-cassette", 1, "cassette", "cassette", "entry", "entries", ".cassette")
AUDIT_LOG = FileFormat("mattrace-governance", 1, "governance audit log", "governance", "entry", "entries",
                       ".governance")
FORMATS: dict[str, FileFormat] = {f.name: f for f in (TRACE, CASSETTE, AUDIT_LOG)}
"""Every format mattrace writes, by the header's ``format`` name."""
FORMAT = TRACE.name
VERSION = TRACE.version


def hmac_key_from_env() -> bytes | None:
    """The HMAC key from ``MATTRACE_HMAC_KEY``, or None when unset or empty."""
    key = os.environ.get(HMAC_ENV)
    return key.encode("utf-8") if key else None


class _Chain:
    """The running hash of a file: H(prev + body), sha256 or keyed HMAC-SHA256."""

    def __init__(self, key: bytes | None, prev: str = "") -> None:
        self.key = key
        self.prev = prev
        self.algorithm = _HMAC if key else _SHA

    def digest(self, body: bytes) -> str:
        data = self.prev.encode("ascii") + body
        if self.key is not None:
            return hmac.new(self.key, data, hashlib.sha256).hexdigest()
        return hashlib.sha256(data).hexdigest()


def _encode(body_obj: dict[str, Any]) -> bytes:
    """The canonical bytes of a record; ASCII-escaped when text holds lone surrogates.

    Undecodable file names (``os.listdir`` on non-UTF-8 names) carry lone surrogates,
    which UTF-8 cannot encode; ``\\udcxx`` escapes keep them exactly, so the record still
    reads back as it was.
    """
    text = canonical_json(body_obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return canonical_json(body_obj, ascii_only=True).encode("ascii")


def _seal_line(body_obj: dict[str, Any], chain: _Chain) -> tuple[bytes, str]:
    """The line to write and its hash; the chain advances only once the line is written."""
    body = _encode(body_obj)
    h = chain.digest(body)
    return body[:-1] + _HASH_PREFIX + h.encode("ascii") + b'"}\n', h


class ChainedWriter:
    """Writes hash-chained JSONL records to a new file, one ``write`` per line.

    The mechanics every mattrace evidence file shares (traces, cassettes): the chain, the
    one-``write`` lines, ``fsync``, and cutting a failed write back off. Not locked: the
    owner serialises calls.

    Args:
        path: the file to create; with ``replace`` an existing file is truncated first,
            otherwise it must not exist.
        fsync: call ``os.fsync`` after every line (durable against power loss, ~100x slower).
        key: HMAC key; defaults to ``MATTRACE_HMAC_KEY``.
    """

    def __init__(self, path: str | Path, *, fsync: bool = False, key: bytes | None = None,
                 replace: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._chain = _Chain(key if key is not None else hmac_key_from_env())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = os.O_TRUNC if replace else os.O_EXCL
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | mode | os.O_APPEND, 0o644)
        self._size = 0

    def _append(self, record: dict[str, Any]) -> None:
        """Write one record whole, or leave the file as it was and raise.

        A failed write (disk full, I/O error) is cut back off the file, so the partial
        bytes never glue onto the next record and the chain never covers a lost line.
        """
        line, h = _seal_line(record, self._chain)
        view = memoryview(line)
        try:
            while view:  # os.write may write less than asked (signals, full disks)
                written = os.write(self._fd, view)
                view = view[written:]
            if self.fsync:
                os.fsync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass  # the reader will see a torn tail, which it recovers from
            raise
        self._size += len(line)
        self._chain.prev = h

    def close(self) -> None:
        """Close the file without sealing it (it then reads as interrupted)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class RecordWriter(ChainedWriter):
    """A chained file of one header, ``entry`` records and a seal counting them.

    The shape cassettes and governance audit logs share. An existing file at ``path`` is
    replaced (they are rewritten whole, never appended to after a crash).
    """

    def __init__(self, path: str | Path, fmt: FileFormat, header: dict[str, Any], *,
                 fsync: bool = False, key: bytes | None = None) -> None:
        super().__init__(path, fsync=fsync, key=key, replace=True)
        self.format = fmt
        self.count = 0
        self._append({"type": "header", "format": fmt.name, "version": fmt.version, "alg": self._chain.algorithm,
                      fmt.header_key: header})

    def write_entry(self, entry: dict[str, Any]) -> None:
        self._append({"type": self.format.record, self.format.record: entry})
        self.count += 1

    def seal(self) -> None:
        if self._fd < 0:
            return
        self._append({"type": "seal", self.format.counted: self.count, "final": self._chain.prev})
        self.close()


@dataclass
class RecordFile:
    """What a record file (cassette, audit log) holds: its header and entries, verified."""

    path: Path
    header: dict[str, Any]
    entries: list[dict[str, Any]]
    sealed: bool
    algorithm: str = _SHA
    warnings: list[TornTailWarning] = field(default_factory=list)


class TraceWriter(ChainedWriter):
    """Appends a trace's records to its file: the header, then steps in order, then the seal.

    Args:
        path: the file to create (must not exist) or, with :meth:`resume`, to continue.
        fsync: call ``os.fsync`` after every line (durable against power loss, ~100x slower).
        key: HMAC key; defaults to ``MATTRACE_HMAC_KEY``.
    """

    def __init__(self, path: str | Path, trace: Trace, *, fsync: bool = False,
                 key: bytes | None = None) -> None:
        super().__init__(path, fsync=fsync, key=key)
        self.steps_written = 0
        self.sealed = False
        self._append({"type": "header", "format": TRACE.name, "version": TRACE.version,
                      "alg": self._chain.algorithm, TRACE.header_key: trace.header_dict()})

    @classmethod
    def resume(cls, path: str | Path, *, fsync: bool = False,
               key: bytes | None = None) -> TraceWriter:
        """Reopen an unsealed file to append more steps, cutting a torn tail first.

        Cutting the tail is what keeps a half-written line from being glued to the next
        record. Raises RecordingError if the file is already sealed.
        """
        key = key if key is not None else hmac_key_from_env()
        result = read_trace_file(path, key=key)
        if result.sealed:
            raise RecordingError(f"{path}: trace file is sealed; a sealed trace cannot be appended to")
        self = cls.__new__(cls)
        self.path = Path(path)
        self.fsync = fsync
        # continue with the file's own algorithm, whatever the environment says now
        self._chain = _Chain(key if result.algorithm == _HMAC else None, prev=result.last_hash)
        self.steps_written = len(result.trace.steps)
        self.sealed = False
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        os.truncate(self.path, result.valid_bytes)
        self._size = result.valid_bytes
        return self

    def write_step(self, step: Step) -> None:
        """Append one step; its index must be the next one."""
        if self.sealed:
            raise RecordingError(f"{self.path}: step {step.index} recorded after the trace was sealed")
        if step.index != self.steps_written:
            raise RecordingError(
                f"{self.path}: step index {step.index} out of order (expected {self.steps_written})")
        try:
            self._append({"type": "step", "step": step.to_json_dict()})
        except ValueError as exc:  # NaN/Infinity: JSON has no form for them
            raise RecordingError(f"{self.path}: step {step.index} holds a value JSON cannot "
                                 f"represent ({exc}); record NaN/Infinity as strings") from exc
        self.steps_written += 1

    def seal(self, outcome: Outcome | None) -> None:
        """Write the seal (step count, final hash, outcome) and close the file."""
        if self.sealed:
            return
        seal = {"type": "seal", "steps": self.steps_written, "final": self._chain.prev,
                "outcome": outcome.model_dump(mode="json") if outcome else None}
        self._append(seal)
        self.sealed = True
        self.close()

@dataclass
class ReadResult:
    """What reading a trace file found, beyond the trace itself."""

    trace: Trace
    sealed: bool
    algorithm: str
    last_hash: str
    valid_bytes: int
    torn_line: int | None = None
    warnings: list[TornTailWarning] = field(default_factory=list)


def _split_hash(path: Path, lineno: int, raw: bytes) -> tuple[bytes, str]:
    if len(raw) < _HASH_SUFFIX_LEN or not raw.endswith(b'"}'):
        raise TraceFormatError(path, lineno, "line has no hash; the file was altered or is not a trace")
    cut = len(raw) - _HASH_SUFFIX_LEN
    if raw[cut:cut + len(_HASH_PREFIX)] != _HASH_PREFIX:
        raise TraceFormatError(path, lineno, "line has no hash; the file was altered or is not a trace")
    h = raw[cut + len(_HASH_PREFIX):-2].decode("ascii", errors="replace")
    return raw[:cut] + b"}", h


@dataclass
class _Scan:
    """How far a chained file verified, and what its header and seal said."""

    header: dict[str, Any]
    algorithm: str
    last_hash: str = ""
    count: int = 0
    seal: dict[str, Any] | None = None
    valid_bytes: int = 0
    lines: int = 0
    torn_line: int | None = None

    @property
    def sealed(self) -> bool:
        return self.seal is not None


def _header_chain(path: Path, record: dict[str, Any], fmt: FileFormat, key: bytes | None) -> _Chain:
    """The chain a file's header line asks for: its format, version and hash algorithm checked."""
    noun = fmt.noun
    if record.get("type") != "header" or record.get("format") != fmt.name:
        raise TraceFormatError(path, 1, f"not a mattrace {noun} file (no {noun} header line)")
    if record.get("version") != fmt.version:
        raise TraceFormatError(path, 1, f"{noun} format version {record.get('version')!r}, but this mattrace "
                                        f"reads version {fmt.version}; record it again with this version")
    if not isinstance(record.get(fmt.header_key), dict):
        raise TraceFormatError(path, 1, f"the {noun} header has no {fmt.header_key!r} object")
    alg = record.get("alg")
    if alg == _HMAC:
        if key is None:
            raise TraceFormatError(path, 1, f"{noun} is HMAC-signed; set {HMAC_ENV} to the key to read it")
        return _Chain(key)
    if alg == _SHA:
        return _Chain(None)
    raise TraceFormatError(path, 1, f"unknown hash algorithm {alg!r}")


def _scan(path: Path, fmt: FileFormat, key: bytes | None,
          on_record: Callable[[int, Any, int], None]) -> _Scan:
    """The one reader loop of every chained file: verify each line's hash against the chain,
    hand each body record's payload to ``on_record(lineno, payload, position)`` in order, and
    check the seal's count. Reads line by line, so memory does not grow with the file.

    A partial last line of an unsealed file is a torn tail (a crash), reported in the
    result, not raised; everything else that does not verify raises
    :class:`~mattrace.errors.TraceFormatError` naming the file and line.
    """
    noun = fmt.noun
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise TraceFormatError(path, None, f"cannot read {noun}: {exc.strerror or exc}") from exc
    with handle:
        scan: _Scan | None = None
        chain = _Chain(None)
        lineno = 0
        for lineno, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):   # the last line, cut short by a crash
                if scan is not None and scan.sealed:
                    raise TraceFormatError(path, lineno, f"data after the seal; lines were appended to a sealed {noun}")
                if scan is None:
                    raise TraceFormatError(path, 1, "the header line is incomplete; the recording died at once")
                scan.torn_line = lineno
                break
            if scan is not None and scan.sealed:
                raise TraceFormatError(path, lineno, f"data after the seal; lines were appended to a sealed {noun}")
            line = raw[:-1]
            body, h = _split_hash(path, lineno, line)
            record = _parse(path, lineno, body)
            if scan is None:   # the header names the hash algorithm, so it is read before its hash
                chain = _header_chain(path, record, fmt, key)
                scan = _Scan(header=record[fmt.header_key], algorithm=chain.algorithm)
            if chain.digest(body) != h:
                raise TraceFormatError(path, lineno, "hash chain broken: this line or one before it was altered, "
                                                     "removed, reordered or inserted")
            chain.prev = h
            kind = record.get("type")
            if lineno == 1:
                pass
            elif kind == fmt.record:
                on_record(lineno, record.get(fmt.record), scan.count)
                scan.count += 1
            elif kind == "seal":
                if record.get(fmt.counted) != scan.count:
                    raise TraceFormatError(path, lineno, f"seal counts {record.get(fmt.counted)} {fmt.counted} but "
                                                         f"the {noun} holds {scan.count}: {fmt.counted} were "
                                                         "removed or added")
                scan.seal = record
            else:
                raise TraceFormatError(path, lineno, f"unknown record type {kind!r} in a {noun}")
            scan.valid_bytes += len(raw)
            scan.last_hash = h
        if scan is None:
            raise TraceFormatError(path, None, f"{noun} is empty; no header was ever written")
        scan.lines = lineno
        return scan


def read_records(path: str | Path, fmt: FileFormat, *, key: bytes | None = None) -> RecordFile:
    """Read and verify a record file (cassette, audit log); a torn tail keeps every complete entry.

    Raises:
        TraceFormatError: missing, another format or version, or a line that does not
            verify (altered, removed, reordered, truncated), naming file and line.
    """
    path = Path(path)
    entries: list[dict[str, Any]] = []

    def keep(lineno: int, entry: Any, position: int) -> None:
        if not isinstance(entry, dict):
            raise TraceFormatError(path, lineno, f"a {fmt.noun} entry is not a JSON object")
        entries.append(entry)

    scan = _scan(path, fmt, key if key is not None else hmac_key_from_env(), keep)
    found = RecordFile(path, scan.header, entries, scan.sealed, scan.algorithm)
    if not scan.sealed:
        found.warnings.append(TornTailWarning(path, scan.torn_line or scan.lines + 1, len(entries),
                                              torn=scan.torn_line is not None))
    return found


def read_trace_file(path: str | Path, *, key: bytes | None = None) -> ReadResult:
    """Read and verify a trace file line by line.

    Returns every complete, verified step; a partial final line of an unsealed file is
    reported in ``torn_line``. Raises TraceFormatError for anything that does not verify.
    """
    path = Path(path)
    steps: list[Step] = []
    scan = _scan(path, TRACE, key if key is not None else hmac_key_from_env(),
                 lambda lineno, raw, position: steps.append(_parse_step(path, lineno, raw, position)))
    try:
        trace = Trace.model_validate(scan.header)
    except ValidationError as exc:
        raise TraceFormatError(path, 1, f"invalid header: {validation_summary(exc)}") from exc
    outcome = _parse_outcome(path, scan.lines, scan.seal) if scan.seal else None
    result = ReadResult(trace=trace, sealed=scan.sealed, algorithm=scan.algorithm,
                        last_hash=scan.last_hash, valid_bytes=scan.valid_bytes, torn_line=scan.torn_line)
    if not scan.sealed:
        result.warnings.append(TornTailWarning(path, scan.torn_line or scan.lines + 1, len(steps),
                                               torn=scan.torn_line is not None))
    trace.steps = steps
    trace.outcome = outcome
    return result


def _parse(path: Path, lineno: int, body: bytes) -> dict[str, Any]:
    try:
        record = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TraceFormatError(path, lineno, f"line is not valid JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise TraceFormatError(path, lineno, "line is not a JSON object")
    return record


def _parse_step(path: Path, lineno: int, raw: Any, expected: int) -> Step:
    try:
        step = Step.model_validate(raw)
    except ValidationError as exc:
        raise TraceFormatError(path, lineno, f"invalid step: {validation_summary(exc)}") from exc
    if step.index != expected:
        raise TraceFormatError(path, lineno, f"step index {step.index} where {expected} was expected")
    return step


def _parse_outcome(path: Path, lineno: int, seal: dict[str, Any]) -> Outcome | None:
    raw = seal.get("outcome")
    try:
        return Outcome.model_validate(raw) if raw is not None else None
    except ValidationError as exc:
        raise TraceFormatError(path, lineno, f"invalid outcome in seal: {validation_summary(exc)}") from exc


def load(path: str | Path) -> Trace:
    """Read a trace file, verifying every line.

    An unsealed file (the recording process died) loads with every complete step and a
    :class:`~mattrace.errors.TornTailWarning`; a corrupt or tampered one raises
    :class:`~mattrace.errors.TraceFormatError` naming the file and line.
    """
    result = read_trace_file(path)
    for warning in result.warnings:
        warnings.warn(warning, stacklevel=2)
    return result.trace


@dataclass
class VerifyReport:
    """The verdict of :func:`verify` on one file."""

    path: str
    ok: bool
    steps: int = 0
    algorithm: str | None = None
    line: int | None = None
    reason: str | None = None


def _format_of(path: str | Path) -> str | None:
    """The ``format`` of a file's header line, when it has a readable one."""
    try:
        with open(path, "rb") as f:
            first = f.readline()
        header = json.loads(first[: first.rfind(b',"h":')] + b"}") if b',"h":' in first else None
    except (OSError, ValueError):
        return None
    return header.get("format") if isinstance(header, dict) else None


def verify(path: str | Path, *, key: bytes | None = None) -> VerifyReport:
    """Check that a file is a complete, unaltered, sealed trace (or cassette, or audit log).

    Stricter than :func:`load`: an unsealed file fails (it may have been truncated), and
    with an HMAC key available a plain-sha256 file fails (anyone can recompute sha256).
    Every format of :data:`FORMATS` is checked the same way (the file's header says which
    it is); ``steps`` then counts a cassette's or audit log's entries.
    """
    key = key if key is not None else hmac_key_from_env()
    format = _format_of(path)
    try:
        if format in FORMATS and format != TRACE.name:
            records = read_records(path, FORMATS[format], key=key)
            count, sealed, algorithm, torn = len(records.entries), records.sealed, records.algorithm, None
        else:
            result = read_trace_file(path, key=key)
            count, sealed, algorithm, torn = (len(result.trace.steps), result.sealed, result.algorithm,
                                              result.torn_line)
    except TraceFormatError as exc:
        return VerifyReport(str(path), ok=False, line=exc.line, reason=exc.reason)
    if not sealed:
        return VerifyReport(str(path), False, count, algorithm, torn or (count + 2),
                            "file is not sealed: it was truncated, or its recording never finished")
    if key is not None and algorithm != _HMAC:
        return VerifyReport(str(path), False, count, algorithm, 1,
                            f"{HMAC_ENV} is set but the file is not HMAC-signed")
    return VerifyReport(str(path), True, count, algorithm)
