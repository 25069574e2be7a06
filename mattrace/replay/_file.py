"""The cassette file: the trace file's crash-safe, hash-chained JSONL, holding call results.

A cassette is evidence in the same way a trace is (a replay is only as good as the
answers it serves), so it is written and verified exactly like one: the chain, the seal,
torn-tail recovery and HMAC signing all come from :mod:`mattrace.tracefile`; only the
records differ. One header (``format: mattrace-cassette``), one ``entry`` line per
recorded boundary call, one seal counting them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mattrace.errors import TornTailWarning, TraceFormatError
from mattrace.tracefile import (
    _HMAC,
    _SHA,
    HMAC_ENV,
    ChainedWriter,
    _Chain,
    _parse,
    _split_hash,
    hmac_key_from_env,
)

__all__ = ["CASSETTE_FORMAT", "CASSETTE_VERSION", "CassetteFile", "CassetteWriter", "read_cassette"]

CASSETTE_FORMAT = "mattrace-cassette"
CASSETTE_VERSION = 1


class CassetteWriter(ChainedWriter):
    """Appends entries to a new cassette file (an existing one at ``path`` is replaced).

    Not locked: the cassette object serialises calls to it.
    """

    def __init__(self, path: str | Path, header: dict[str, Any], *, fsync: bool = False,
                 key: bytes | None = None) -> None:
        super().__init__(path, fsync=fsync, key=key, replace=True)
        self.count = 0
        self._append({"type": "header", "format": CASSETTE_FORMAT, "version": CASSETTE_VERSION,
                      "alg": self._chain.algorithm, "cassette": header})

    def write_entry(self, entry: dict[str, Any]) -> None:
        self._append({"type": "entry", "entry": entry})
        self.count += 1

    def seal(self) -> None:
        if self._fd < 0:
            return
        self._append({"type": "seal", "entries": self.count, "final": self._chain.prev})
        self.close()


@dataclass
class CassetteFile:
    """What a cassette file holds: its header and its entries in call order."""

    path: Path
    header: dict[str, Any]
    entries: list[dict[str, Any]]
    sealed: bool
    warnings: list[TornTailWarning] = field(default_factory=list)


def read_cassette(path: str | Path, *, key: bytes | None = None) -> CassetteFile:
    """Read and verify a cassette; a torn tail (crashed recording) keeps every complete entry.

    Raises:
        TraceFormatError: missing, not a cassette, another format version, or a line that
            does not verify (altered, removed, reordered, truncated), naming file and line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TraceFormatError(path, None, f"cannot read cassette: {exc.strerror or exc}") from exc
    if not data:
        raise TraceFormatError(path, None, "cassette is empty; no header was ever written")
    key = key if key is not None else hmac_key_from_env()
    lines = data.split(b"\n")
    tail = lines.pop()
    chain = _Chain(None)
    header: dict[str, Any] | None = None
    entries: list[dict[str, Any]] = []
    sealed = False
    for lineno, raw in enumerate(lines, start=1):
        if sealed:
            raise TraceFormatError(path, lineno, "data after the seal; lines were appended to a sealed cassette")
        body, h = _split_hash(path, lineno, raw)
        record = _parse(path, lineno, body)
        if lineno == 1:
            chain = _cassette_chain(path, record, key)
            header = record.get("cassette")
            if not isinstance(header, dict):
                raise TraceFormatError(path, 1, "the cassette header has no 'cassette' object")
        if chain.digest(body) != h:
            raise TraceFormatError(path, lineno, "hash chain broken: this line or one before it was altered, "
                                                 "removed, reordered or inserted")
        chain.prev = h
        kind = record.get("type")
        if lineno == 1:
            continue
        if kind == "entry" and isinstance(record.get("entry"), dict):
            entries.append(record["entry"])
        elif kind == "seal":
            if record.get("entries") != len(entries):
                raise TraceFormatError(path, lineno, f"seal counts {record.get('entries')} entries but the "
                                                     f"cassette holds {len(entries)}: entries were removed or added")
            sealed = True
        else:
            raise TraceFormatError(path, lineno, f"unknown cassette record {kind!r}")
    if header is None:
        raise TraceFormatError(path, 1, "the header line is incomplete; the recording died at once")
    found = CassetteFile(path, header, entries, sealed)
    if tail and sealed:
        raise TraceFormatError(path, len(lines) + 1, "data after the seal; lines were appended to a sealed cassette")
    if not sealed:
        found.warnings.append(TornTailWarning(path, len(lines) + 1, len(entries), torn=bool(tail)))
    return found


def _cassette_chain(path: Path, record: dict[str, Any], key: bytes | None) -> _Chain:
    if record.get("type") != "header" or record.get("format") != CASSETTE_FORMAT:
        raise TraceFormatError(path, 1, "not a mattrace cassette (no cassette header line)")
    if record.get("version") != CASSETTE_VERSION:
        raise TraceFormatError(path, 1, f"cassette format version {record.get('version')!r}, but this mattrace "
                                        f"reads version {CASSETTE_VERSION}; record it again with this version")
    alg = record.get("alg")
    if alg == _HMAC:
        if key is None:
            raise TraceFormatError(path, 1, f"cassette is HMAC-signed; set {HMAC_ENV} to the key to read it")
        return _Chain(key)
    if alg == _SHA:
        return _Chain(None)
    raise TraceFormatError(path, 1, f"unknown hash algorithm {alg!r}")


def load_cassette(path: str | Path) -> CassetteFile:
    """:func:`read_cassette`, with a torn tail reported as a warning."""
    found = read_cassette(path)
    for warning in found.warnings:
        warnings.warn(warning, stacklevel=2)
    return found
