"""Reading chained files: one loop verifies every line of every format, streaming."""

from __future__ import annotations

import errno
import os
import stat
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mattrace.errors import TornTailWarning, TraceFormatError
from mattrace.trace import Outcome, Step, StepKind, Trace, validation_summary
from mattrace.tracefile._format import (
    _HASH_PREFIX,
    _HASH_SUFFIX_LEN,
    _HMAC,
    _OTHER_KEY,
    _SHA,
    _UNSIGNED,
    FORMATS,
    HMAC_ENV,
    TRACE,
    FileFormat,
    _Chain,
    _reading_key,
)
from mattrace.tracefile._json import JSONInputError, parse_json

__all__ = ["load", "open_trace", "read_records", "read_trace_file", "ReadResult", "RecordFile", "TraceStream", "verify",
           "VerifyReport"]


@dataclass
class RecordFile:
    """What a record file (cassette, audit log) holds: its header and entries, verified."""

    path: Path
    header: dict[str, Any]
    entries: list[dict[str, Any]]
    sealed: bool
    algorithm: str = _SHA
    warnings: list[TornTailWarning] = field(default_factory=list)


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
    steps: int = 0
    """How many steps the file holds (a streamed read's ``trace`` holds none of them)."""


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
    """The chain a file's header line asks for: its format, version and hash algorithm checked.

    The integrity rule of every reader lives here: with a key, only a file signed with it
    reads. Anyone can cut a file, add lines and recompute a plain sha256 chain, so with a
    key a sha256 file is refused, whoever reads it (check, show, the store, replay,
    governance, verify); a file signed with another key fails its header's hash in
    :func:`_scan`.
    """
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
        if key is not None:
            raise TraceFormatError(path, 1, _UNSIGNED)
        return _Chain(None)
    raise TraceFormatError(path, 1, f"unknown hash algorithm {alg!r}")


class _Lines:
    """The one reader loop of every chained file, as an iterator: it verifies each line's hash
    against the chain and yields each body record's ``(lineno, payload, position)`` in order,
    then checks the seal's count. Reads line by line, so memory does not grow with the file.

    The header line is read and verified when the reader is made, so what it says is known
    before any body record; :attr:`scan` holds how far the file verified, complete once
    :meth:`records` is exhausted. A partial last line of an unsealed file is a torn tail (a
    crash), reported in the scan, not raised; everything else that does not verify raises
    :class:`~mattrace.errors.TraceFormatError` naming the file and line. The file is closed
    when the records are exhausted, when reading raises, or by :meth:`close`.
    """

    def __init__(self, path: Path, fmt: FileFormat, key: bytes | None) -> None:
        self.path, self.fmt = path, fmt
        try:
            _regular(path)
            self._handle = open(path, "rb")
        except OSError as exc:
            raise TraceFormatError(path, None, f"cannot read {fmt.noun}: {exc.strerror or exc}") from exc
        try:
            self.scan, self._chain = self._header(key)
        except BaseException:
            self._handle.close()
            raise

    def close(self) -> None:
        """Close the file (reading stops; what was read stays valid)."""
        self._handle.close()

    def fileno(self) -> int:
        """The open file's descriptor."""
        return self._handle.fileno()

    def _header(self, key: bytes | None) -> tuple[_Scan, _Chain]:
        path, fmt = self.path, self.fmt
        raw = self._handle.readline()
        if not raw:
            raise TraceFormatError(path, None, f"{fmt.noun} is empty; no header was ever written")
        if not raw.endswith(b"\n"):
            raise TraceFormatError(path, 1, "the header line is incomplete; the recording died at once")
        body, h = _split_hash(path, 1, raw[:-1])
        record = _parse(path, 1, body)   # the header names the hash algorithm, so it is read before its hash
        chain = _header_chain(path, record, fmt, key)
        if chain.digest(body) != h:
            raise TraceFormatError(path, 1, _OTHER_KEY if chain.key is not None else _BROKEN)
        chain.prev = h
        scan = _Scan(header=record[fmt.header_key], algorithm=chain.algorithm, last_hash=h,
                     valid_bytes=len(raw), lines=1)
        return scan, chain

    def records(self) -> Iterator[tuple[int, Any, int]]:
        """Each body record's ``(lineno, payload, position)``, verified, in file order."""
        with self._handle:
            path, fmt, scan, chain = self.path, self.fmt, self.scan, self._chain
            noun = fmt.noun
            lineno = 1
            for lineno, raw in enumerate(self._handle, start=2):
                if scan.sealed:
                    raise TraceFormatError(path, lineno, f"data after the seal; lines were appended to a sealed {noun}")
                if not raw.endswith(b"\n"):   # the last line, cut short by a crash
                    scan.torn_line = lineno
                    break
                body, h = _split_hash(path, lineno, raw[:-1])
                if chain.digest(body) != h:
                    raise TraceFormatError(path, lineno, _BROKEN)
                record = _parse(path, lineno, body)   # parsed only once its hash holds: no edit reaches the parser
                chain.prev = h
                kind = record.get("type")
                if kind == fmt.record:
                    yield lineno, record.get(fmt.record), scan.count
                    scan.count += 1
                elif kind == "seal":
                    if record.get(fmt.counted) != scan.count:
                        raise TraceFormatError(path, lineno, f"seal counts {record.get(fmt.counted)} {fmt.counted} "
                                                             f"but the {noun} holds {scan.count}: {fmt.counted} were "
                                                             "removed or added")
                    scan.seal = record
                else:
                    raise TraceFormatError(path, lineno, f"unknown record type {kind!r} in a {noun}")
                scan.valid_bytes += len(raw)
                scan.last_hash = h
            scan.lines = lineno


_BROKEN = "hash chain broken: this line or one before it was altered, removed, reordered or inserted"


def _scan(path: Path, fmt: FileFormat, key: bytes | None,
          on_record: Callable[[int, Any, int], None]) -> _Scan:
    """Run :class:`_Lines` over a whole file, handing each body record to ``on_record``."""
    lines = _Lines(path, fmt, key)
    for lineno, payload, position in lines.records():
        on_record(lineno, payload, position)
    return lines.scan


def read_records(path: str | Path, fmt: FileFormat, *, key: bytes | None = None) -> RecordFile:
    """Read and verify a record file (cassette, audit log); a torn tail keeps every complete entry.

    ``key`` defaults to ``MATTRACE_HMAC_KEY``; with a key, only a file signed with it reads.

    Raises:
        TraceFormatError: missing, another format or version, a line that does not verify
            (altered, removed, reordered, truncated), or, with a key, a file not signed with
            it; or the key is empty. The error names file and line.
    """
    path = Path(path)
    entries: list[dict[str, Any]] = []

    def keep(lineno: int, entry: Any, position: int) -> None:
        if not isinstance(entry, dict):
            raise TraceFormatError(path, lineno, f"a {fmt.noun} entry is not a JSON object")
        entries.append(entry)

    scan = _scan(path, fmt, _reading_key(path, key), keep)
    found = RecordFile(path, scan.header, entries, scan.sealed, scan.algorithm)
    if not scan.sealed:
        found.warnings.append(TornTailWarning(path, scan.torn_line or scan.lines + 1, len(entries),
                                              torn=scan.torn_line is not None))
    return found


class TraceStream:
    """A trace file read a step at a time: every step verified along the hash chain, then dropped.

    Why: a trace of hundreds of thousands of steps is hundreds of megabytes as ``Step``
    objects, while verifying it, checking contracts over it or printing it needs one step at
    a time. The header line is read and verified when the stream opens, so :attr:`trace`
    (the run's metadata, no steps) is known before the first step; iterating yields each
    step once, in order, under the same rules as :func:`read_trace_file`, which is this
    stream collected into a list. Once the steps are exhausted :attr:`result` says how the
    file ended: sealed or not, a torn line, and for an unsealed file without its end step
    :attr:`trace` is marked incomplete and ``warnings`` holds the torn-tail warning.

    Use it as a context manager, so a reader that stops early closes the file::

        with open_trace(path) as stream:
            for step in stream:
                ...
        stream.result.sealed

    Raises:
        TraceFormatError: as :func:`read_trace_file`; a bad header when the stream opens,
            a line that does not verify when iteration reaches it.
    """

    def __init__(self, path: str | Path, *, key: bytes | None = None) -> None:
        self.path = Path(path)
        self._lines = _Lines(self.path, TRACE, _reading_key(self.path, key))
        try:
            self.trace = Trace.model_validate(self._lines.scan.header)
        except ValidationError as exc:
            self._lines.close()
            raise TraceFormatError(self.path, 1, f"invalid header: {validation_summary(exc)}") from exc
        self._result: ReadResult | None = None
        self._started = False

    def __iter__(self) -> Iterator[Step]:
        if self._started:
            raise RuntimeError(f"{self.path}: a trace stream is read once; open the file again")
        self._started = True
        return self._steps()

    def _steps(self) -> Iterator[Step]:
        path = self.path
        last: StepKind | None = None
        for lineno, raw, position in self._lines.records():
            step = _parse_step(path, lineno, raw, position)
            last = step.kind
            yield step
        self._result = self._finish(last)

    def _finish(self, last: StepKind | None) -> ReadResult:
        scan, trace, path = self._lines.scan, self.trace, self.path
        trace.outcome = _parse_outcome(path, scan.lines, scan.seal) if scan.seal else None
        result = ReadResult(trace=trace, sealed=scan.sealed, algorithm=scan.algorithm,
                            last_hash=scan.last_hash, valid_bytes=scan.valid_bytes, torn_line=scan.torn_line,
                            steps=scan.count)
        if not scan.sealed:
            result.warnings.append(TornTailWarning(path, scan.torn_line or scan.lines + 1, scan.count,
                                                   torn=scan.torn_line is not None))
            if last is not StepKind.END:   # an end step kept: only the seal was lost
                trace.mark_incomplete(f"{path} is not sealed" + (f" and its line {scan.torn_line} is torn"
                                                                  if scan.torn_line is not None else "")
                                      + ": the recording stopped before the run ended, or the file was cut")
        return result

    @property
    def result(self) -> ReadResult:
        """How the file ended (its ``trace`` holds no steps); available once every step was read."""
        if self._result is None:
            raise RuntimeError(f"{self.path}: the trace stream has not been read to its end")
        return self._result

    def estimated_steps(self) -> int:
        """How many steps the file likely holds, judged from its size and the lines read so far."""
        scan = self._lines.scan
        try:
            size = os.fstat(self._lines.fileno()).st_size
        except (OSError, ValueError):   # closed
            return scan.count
        return int(scan.count * size / scan.valid_bytes) if scan.count else 0

    def close(self) -> None:
        """Stop reading and close the file."""
        self._lines.close()

    def __enter__(self) -> TraceStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_trace(path: str | Path, *, key: bytes | None = None) -> TraceStream:
    """Open a trace file to read it a step at a time (see :class:`TraceStream`).

    ``key`` defaults to ``MATTRACE_HMAC_KEY``; with a key, only a file signed with it reads.

    Raises:
        TraceFormatError: the file is missing or unreadable, or its header line does not verify.
    """
    return TraceStream(path, key=key)


def read_trace_file(path: str | Path, *, key: bytes | None = None) -> ReadResult:
    """Read and verify a trace file line by line.

    Returns every complete, verified step; a partial final line of an unsealed file is
    reported in ``torn_line``. Raises TraceFormatError for anything that does not verify:
    with a key (``key``, else ``MATTRACE_HMAC_KEY``) that includes a file not signed with
    it, and an empty key. :func:`open_trace` reads the same steps one at a time.
    """
    with open_trace(path, key=key) as stream:
        steps = list(stream)
    result = stream.result
    result.trace.steps = steps
    return result


def _parse(path: Path, lineno: int, body: bytes) -> dict[str, Any]:
    try:
        record = parse_json(body)
    except JSONInputError as exc:
        raise TraceFormatError(path, lineno, f"line is not usable JSON: {exc}") from None
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
    :class:`~mattrace.errors.TraceFormatError` naming the file and line, and so does, with
    ``MATTRACE_HMAC_KEY`` set, one not signed with that key.
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
    entrypoint: dict[str, Any] | None = None
    """The entry point a trace's header names, as stored: integrity says nothing of what it would run."""
    unsealed: bool = False
    """Not ok only because the file has no seal: every line present verified, but its end is missing."""


def _regular(path: str | Path) -> None:
    """Refuse what is not a regular file before opening it: a FIFO blocks the open until someone
    writes, and ``/dev/zero`` is a line that never ends.

    Raises:
        OSError: the path is missing or unreadable, or not a regular file.
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode) else "a device or socket"
        raise OSError(errno.EINVAL, f"not a regular file ({what})")


_HEADER_LIMIT = 1 << 20   # a header line is a few hundred bytes; a megabyte is no header


def _format_of(path: str | Path) -> str | None:
    """The ``format`` of a file's header line, when it has a readable one."""
    try:
        _regular(path)
        with open(path, "rb") as f:
            first = f.readline(_HEADER_LIMIT)
        header = parse_json(first[: first.rfind(b',"h":')] + b"}") if b',"h":' in first else None
    except (OSError, JSONInputError):
        return None
    return header.get("format") if isinstance(header, dict) else None


def verify(path: str | Path, *, key: bytes | None = None) -> VerifyReport:
    """Check that a file is a complete, unaltered, sealed trace (or cassette, or audit log).

    Stricter than :func:`load` in one way: an unsealed file fails (it may have been
    truncated). Like every reader, with an HMAC key (``key``, else ``MATTRACE_HMAC_KEY``) a
    file not signed with it fails (anyone can recompute sha256), and an empty key fails.
    Every format of :data:`FORMATS` is checked the same way (the file's header says which
    it is); ``steps`` then counts a cassette's or audit log's entries.
    """
    format = _format_of(path)
    entrypoint: dict[str, Any] | None = None
    try:
        if format in FORMATS and format != TRACE.name:
            records = read_records(path, FORMATS[format], key=key)
            count, sealed, algorithm, torn = len(records.entries), records.sealed, records.algorithm, None
        else:
            with open_trace(path, key=key) as stream:   # each step verified and dropped: memory stays flat
                for _ in stream:
                    pass
            result = stream.result
            count, sealed, algorithm, torn = result.steps, result.sealed, result.algorithm, result.torn_line
            entrypoint = result.trace.entrypoint
    except TraceFormatError as exc:
        return VerifyReport(str(path), ok=False, line=exc.line, reason=exc.reason)
    if not sealed:
        return VerifyReport(str(path), False, count, algorithm, torn or (count + 2),
                            "file is not sealed: it was truncated, or its recording never finished", unsealed=True,
                            entrypoint=entrypoint)
    return VerifyReport(str(path), True, count, algorithm, entrypoint=entrypoint)
