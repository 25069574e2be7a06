"""Writing chained files: one ``write`` per line, the chain advanced only once a line is on disk."""

from __future__ import annotations

import os
from hashlib import sha256 as _sha256
from pathlib import Path
from typing import Any

from mattrace.errors import RecordingError
from mattrace.trace import Outcome, Step, Trace, float_free_canonical_bytes
from mattrace.tracefile._format import _HASH_PREFIX, TRACE, FileFormat, _Chain, _encode, _writing_key
from mattrace.tracefile._read import read_trace_file

__all__ = ["ChainedWriter", "RecordWriter", "TraceWriter"]


class ChainedWriter:
    """Writes hash-chained JSONL records to a new file, one ``write`` per line.

    The mechanics every mattrace evidence file shares (traces, cassettes): the chain, the
    one-``write`` lines, ``fsync``, and cutting a failed write back off. Not locked: the
    owner serialises calls.

    Args:
        path: the file to create; with ``replace`` an existing file is truncated first,
            otherwise it must not exist.
        fsync: call ``os.fsync`` after every line (durable against power loss, ~100x slower).
        key: HMAC key; defaults to ``MATTRACE_HMAC_KEY``. An empty one raises
            :class:`~mattrace.errors.RecordingError` before the file is created.
    """

    def __init__(self, path: str | Path, *, fsync: bool = False, key: bytes | None = None,
                 replace: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._chain = _Chain(_writing_key(self.path, key))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = os.O_TRUNC if replace else os.O_EXCL
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | mode | os.O_APPEND, 0o644)
        self._size = 0

    def _append(self, record: dict[str, Any]) -> None:
        """Write one record whole, or leave the file as it was and raise."""
        self._append_body(_encode(record))

    def _append_body(self, body: bytes) -> None:
        """Write one record, given as its canonical bytes, whole, or leave the file as it was and raise.

        A failed write (disk full, I/O error) is cut back off the file, so the partial
        bytes never glue onto the next record and the chain never covers a lost line.
        """
        chain = self._chain
        h = chain.digest(body) if chain.key is not None else _sha256(chain.prev.encode("ascii") + body).hexdigest()
        line = b"".join((body[:-1], _HASH_PREFIX, h.encode("ascii"), b'"}\n'))
        try:
            written = os.write(self._fd, line)
            if written < len(line):   # os.write may write less than asked (signals, full disks)
                view = memoryview(line)[written:]
                while view:
                    view = view[os.write(self._fd, view):]
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

    @property
    def size(self) -> int:
        """Bytes written so far: where the next line starts."""
        return self._size

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

    def write_entry(self, entry: dict[str, Any], *, float_free: bool = False) -> None:
        """Append one entry. ``float_free``: the caller knows it holds no float, so its canonical
        bytes come from the C encoder unchecked (:func:`~mattrace.trace.float_free_canonical_bytes`)."""
        self.write_entry_bytes(self.entry_bytes(entry, float_free=float_free))

    def entry_bytes(self, entry: dict[str, Any], *, float_free: bool = False) -> bytes:
        """The canonical bytes of ``entry``'s record, for a caller that looks at the line before
        it writes it with :meth:`write_entry_bytes` (the cassette scans it for secrets once).

        Raises:
            ValueError: NaN or Infinity in ``entry``.
        """
        record = {"type": self.format.record, self.format.record: entry}
        body = float_free_canonical_bytes(record) if float_free else None
        return body if body is not None else _encode(record)

    def write_entry_bytes(self, body: bytes) -> None:
        """Append an entry given as :meth:`entry_bytes` made it."""
        self._append_body(body)
        self.count += 1

    def seal(self) -> None:
        if self._fd < 0:
            return
        self._append({"type": "seal", self.format.counted: self.count, "final": self._chain.prev})
        self.close()


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
        record. Raises RecordingError if the file is already sealed or the key is empty, and
        TraceFormatError if it does not read: with a key, a file not signed with it is
        refused (its continuation would be a file no reader with the key accepts).
        """
        key = _writing_key(path, key)
        result = read_trace_file(path, key=key)
        if result.sealed:
            raise RecordingError(f"{path}: trace file is sealed; a sealed trace cannot be appended to")
        self = cls.__new__(cls)
        self.path = Path(path)
        self.fsync = fsync
        # the reader accepted the file, so its algorithm is the key's: HMAC with one, sha256 without
        self._chain = _Chain(key, prev=result.last_hash)
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

    def write_step_record(self, index: int, body: bytes) -> None:
        """Append step ``index`` given as the canonical bytes of its record
        (``{"step": step.to_json_dict(), "type": "step"}``), which the recorder has already encoded."""
        if self.sealed:
            raise RecordingError(f"{self.path}: step {index} recorded after the trace was sealed")
        if index != self.steps_written:
            raise RecordingError(f"{self.path}: step index {index} out of order (expected {self.steps_written})")
        self._append_body(body)
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

