"""Reading TOML files people write by hand, with errors that name the file and line.

tomllib says where a syntax error is, but not where a *valid* key is; contract files and
fault plans must point at the offending line of an entry that parses but means nothing
(``nmae = ...``). :class:`LineMap` recovers each key's line by scanning the text tomllib
already accepted.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable
from typing import Any

__all__ = ["did_you_mean", "got", "Key", "LineMap", "toml_error", "unknown_key"]

Key = tuple[str | int, ...]

_TOML_POSITION = re.compile(r"^(?P<msg>.*) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)$",
                            re.DOTALL)


def toml_error(text: str, message: str) -> tuple[int | None, str]:
    """tomllib's "... (at line X, column Y)" as (X, "... (column Y)"); the end of the document is its last line."""
    m = _TOML_POSITION.match(message)
    if m is None:
        return None, message
    if m["line"] is None:
        return max(1, len(text.rstrip().splitlines())), f"{m['msg']} (at the end of the file)"
    return int(m["line"]), f"{m['msg']} (column {m['col']})"


def did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(key: str, what: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r} {what} (known: {', '.join(known)}){hint}"


def got(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__} ({value})"


class _ScanError(Exception):
    pass


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]}\n#]+")


class LineMap:
    """The 1-based line of every key, table header and array element of a valid TOML text.

    Keys are document paths with array indices, as tomllib's result nests them:
    ``("contract", 0)`` is the first ``[[contract]]`` header, ``("contract", 0, "step",
    "any_of", 1)`` the second element of its ``any_of`` array. The text is known to be
    valid, so the scanner only tells constructs apart; if it meets anything it does not
    expect it stops, keeping the lines found so far (errors then fall back to an
    enclosing key's line).
    """

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.lines: dict[Key, int] = {}
        self.arrays: dict[Key, int] = {}   # array-of-tables path -> entries so far
        try:
            self._document()
        except (_ScanError, IndexError, tomllib.TOMLDecodeError):
            pass

    def get(self, where: Key) -> int | None:
        """The line of ``where``, else of the nearest enclosing key that has one."""
        for end in range(len(where), 0, -1):
            line = self.lines.get(where[:end])
            if line is not None:
                return line
        return None

    # scanning
    def _at(self, token: str) -> bool:
        return self.s.startswith(token, self.i)

    def _take(self, n: int) -> None:
        self.line += self.s.count("\n", self.i, self.i + n)
        self.i += n

    def _expect(self, token: str) -> None:
        if not self._at(token):
            raise _ScanError(token)
        self._take(len(token))

    def _blank(self, newlines: bool) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self._take(1)
            elif c == "#":
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end
            else:
                return

    def _document(self) -> None:
        prefix: Key = ()
        while True:
            self._blank(True)
            if self.i >= len(self.s):
                return
            line = self.line
            if self._at("[["):
                self._take(2)
                path = self._table(self._key())
                self._blank(False)
                self._expect("]]")
                n = self.arrays.get(path, 0)
                self.arrays[path] = n + 1
                self.lines.setdefault(path, line)
                prefix = (*path, n)
                self.lines[prefix] = line
            elif self._at("["):
                self._take(1)
                prefix = self._table(self._key())
                self._blank(False)
                self._expect("]")
                self.lines.setdefault(prefix, line)
            else:
                self._keyval(prefix)

    def _table(self, key: tuple[str, ...]) -> Key:
        """A header's path: array-of-tables parts it passes through mean their latest entry."""
        path: Key = ()
        for j, part in enumerate(key):
            path = (*path, part)
            if j < len(key) - 1:
                self.lines.setdefault(path, self.line)
                if path in self.arrays:
                    path = (*path, self.arrays[path] - 1)
        return path

    def _key(self) -> tuple[str, ...]:
        parts = []
        while True:
            self._blank(False)
            if self._at('"') or self._at("'"):
                start = self.i
                self._string()
                parts.append(str(tomllib.loads(f"k = {self.s[start:self.i]}")["k"]))
            else:
                m = _BARE_KEY.match(self.s, self.i)
                if m is None:
                    raise _ScanError("key")
                parts.append(m.group())
                self._take(len(m.group()))
            self._blank(False)
            if not self._at("."):
                return tuple(parts)
            self._take(1)

    def _keyval(self, prefix: Key) -> None:
        line = self.line
        key = self._key()
        self._blank(False)
        self._expect("=")
        self._blank(False)
        for j in range(1, len(key)):
            self.lines.setdefault((*prefix, *key[:j]), line)
        path = (*prefix, *key)
        self.lines[path] = line
        self._value(path)

    def _value(self, path: Key) -> None:
        if self._at("{"):
            self._take(1)
            while True:
                self._blank(True)
                if self._at("}"):
                    self._take(1)
                    return
                self._keyval(path)
                self._blank(True)
                if self._at(","):
                    self._take(1)
        elif self._at("["):
            self._take(1)
            n = 0
            while True:
                self._blank(True)
                if self._at("]"):
                    self._take(1)
                    return
                self.lines[(*path, n)] = self.line
                self._value((*path, n))
                n += 1
                self._blank(True)
                if self._at(","):
                    self._take(1)
        elif self._at('"') or self._at("'"):
            self._string()
        else:
            m = _SCALAR.match(self.s, self.i)
            if m is None:
                raise _ScanError("value")
            self._take(len(m.group()))

    def _string(self) -> None:
        s, i = self.s, self.i
        quote = s[i]
        if s.startswith(quote * 3, i):
            j = i + 3
            while not s.startswith(quote * 3, j):
                j += 2 if quote == '"' and s[j] == "\\" else 1
                if j >= len(s):
                    raise _ScanError("string")
            run = 3
            while run < 5 and j + run < len(s) and s[j + run] == quote:
                run += 1
            self._take(j + run - i)
            return
        j = i + 1
        while s[j] != quote:
            j += 2 if quote == '"' and s[j] == "\\" else 1
        self._take(j + 1 - i)


# -- building contracts --------------------------------------------------------------------

