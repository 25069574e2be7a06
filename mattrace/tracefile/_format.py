"""The formats of mattrace's chained files and the hash chain they share."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mattrace.errors import MatTraceError, RecordingError, TraceFormatError
from mattrace.trace import canonical_bytes, canonical_json

__all__ = ["AUDIT_LOG", "CASSETTE", "FileFormat", "FORMAT", "FORMATS", "HMAC_ENV", "hmac_key_from_env", "TRACE",
           "VERSION"]

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


_EMPTY_KEY = (f"{HMAC_ENV} is set but empty: an empty key signs nothing; set it to the secret key, "
             "or unset it to record and read plain sha256 files")
_UNSIGNED = f"{HMAC_ENV} is set but the file is not HMAC-signed"
_OTHER_KEY = "HMAC signature does not match: the file was signed with another key, or its header was altered"


def hmac_key_from_env() -> bytes | None:
    """The HMAC key from ``MATTRACE_HMAC_KEY``, or None when it is unset.

    Raises:
        MatTraceError: the variable is set but empty. That is a configuration mistake (a
            key that did not make it into the environment), not "no key": taken as no key,
            it would record forgeable sha256 files and accept them on reading.
    """
    key = os.environ.get(HMAC_ENV)
    if key is None:
        return None
    if not key:
        raise MatTraceError(_EMPTY_KEY)
    return key.encode("utf-8")


def _key(key: bytes | None) -> bytes | None:
    """``key`` when one is given, else the environment's; an empty one raises MatTraceError."""
    if key is None:
        return hmac_key_from_env()
    if not key:
        raise MatTraceError("the HMAC key is empty: an empty key signs nothing; pass the secret key, "
                            "or None for the key in " + HMAC_ENV)
    return key


def _reading_key(path: str | Path, key: bytes | None) -> bytes | None:
    """The key to read ``path`` with (an explicit ``key``, else ``MATTRACE_HMAC_KEY``).

    With a key, the reader accepts only files signed with it (see ``_header_chain``).

    Raises:
        TraceFormatError: the key is empty (naming the file, so every reader words it alike).
    """
    try:
        return _key(key)
    except MatTraceError as exc:
        raise TraceFormatError(path, None, str(exc)) from None


def _writing_key(path: str | Path, key: bytes | None) -> bytes | None:
    """The key to sign ``path`` with (an explicit ``key``, else ``MATTRACE_HMAC_KEY``).

    Raises:
        RecordingError: the key is empty; raised before the file is created.
    """
    try:
        return _key(key)
    except MatTraceError as exc:
        raise RecordingError(f"{path}: {exc}") from None


class _Chain:
    """The running hash of a file: H(prev + body), sha256 or keyed HMAC-SHA256."""

    def __init__(self, key: bytes | None, prev: str = "") -> None:
        self.key = key
        self.prev = prev
        self.algorithm = _HMAC if key is not None else _SHA

    def digest(self, body: bytes) -> str:
        h = hmac.new(self.key, self.prev.encode("ascii"), hashlib.sha256) if self.key is not None \
            else hashlib.sha256(self.prev.encode("ascii"))
        h.update(body)
        return h.hexdigest()


def _encode(body_obj: dict[str, Any]) -> bytes:
    """The canonical bytes of a record; ASCII-escaped when text holds lone surrogates.

    Undecodable file names (``os.listdir`` on non-UTF-8 names) carry lone surrogates,
    which UTF-8 cannot encode; ``\\udcxx`` escapes keep them exactly, so the record still
    reads back as it was.
    """
    try:
        return canonical_bytes(body_obj)
    except UnicodeEncodeError:
        return canonical_json(body_obj, ascii_only=True).encode("ascii")
