"""Reading the TOML files people write by hand, with errors that name the file, the line and the key.

Contract files, fault plans and governance policies are written by people and read in CI
logs, so every mistake must say where it is (``path:line:``), which key, what was expected
and what was found. This module is the one place that does so: :func:`read_config` reads
and decodes a file (an undecodable byte or a TOML syntax error is located at its line),
and the :class:`ConfigFile` it returns has typed getters that raise the format's own
:class:`~mattrace.errors.LocatedError` subclass, so each loader only says what its keys
mean.

tomllib says where a syntax error is, but not where a *valid* key is; an entry that parses
but means nothing (``nmae = ...``) must still point at its line. :class:`LineMap` recovers
each key's line by scanning the text tomllib already accepted, lazily, on the first error.

This is layer 0: it imports only the standard library and :mod:`mattrace.errors`.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import math
import os
import re
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from mattrace.errors import LocatedError

__all__ = ["ConfigFile", "did_you_mean", "got", "Key", "LineMap", "read_config", "unknown_key"]

Key = tuple[str | int, ...]
"""Where a value sits in the document, as tomllib nests it: ``("contract", 2, "step", "tool")``."""

E = TypeVar("E", bound=LocatedError, covariant=True)
F = TypeVar("F", bound=LocatedError)


def got(value: Any) -> str:
    """How a wrong value is described after "got": its TOML type, and the value when it is short."""
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


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options``, or nothing when none is close."""
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(key: str, what: str, known: Iterable[str]) -> str:
    """The message for a key nobody reads: the keys that are read, and the closest of them."""
    known = list(known)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r} {what} (known: {', '.join(known)}){hint}"


def read_config(path: str | os.PathLike[str], error: type[F], noun: str, *,
                plain_read_errors: bool = False) -> ConfigFile[F]:
    """Read and decode the TOML file at ``path``; every failure is an ``error`` naming the file.

    Args:
        path: the file.
        error: the format's error type (ContractError, FaultSpecError, ...).
        noun: what the file is called in messages ("contract file", "fault plan").
        plain_read_errors: report an unreadable or non-UTF-8 file as ``cannot read <noun>:
            <the OS or codec message>`` without a line, as fault plans and policies always
            have, rather than with the OS reason alone and the line of the bad byte.

    Raises:
        F: the file is missing, unreadable, not UTF-8 (at the line of the first bad byte),
            or not TOML (at the line tomllib names).
    """
    file = os.fspath(path)
    try:
        data = Path(file).read_bytes()
    except FileNotFoundError:
        raise error(f"{noun} not found", path=file) from None
    except OSError as exc:
        raise error(f"cannot read {noun}: {exc if plain_read_errors else exc.strerror or exc}", path=file) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if plain_read_errors:
            raise error(f"cannot read {noun}: {exc}", path=file) from None
        raise error(f"{noun} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                    path=file, line=data[:exc.start].count(b"\n") + 1) from None
    return ConfigFile(file, text, error)


_TOML_POSITION = re.compile(r"^(?P<msg>.*) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)$",
                            re.DOTALL)


def _toml_error(text: str, message: str) -> tuple[int | None, str]:
    """tomllib's "... (at line X, column Y)" as (X, "... (column Y)"); the end of the document is its last line."""
    m = _TOML_POSITION.match(message)
    if m is None:
        return None, message
    if m["line"] is None:
        return max(1, len(text.rstrip().splitlines())), f"{m['msg']} (at the end of the file)"
    return int(m["line"]), f"{m['msg']} (column {m['col']})"


class ConfigFile(Generic[E]):
    """A decoded TOML file a person wrote, and the located errors of its format.

    Every getter takes ``at``, where the value sits (the line of its key is looked up only
    when something is wrong), and the value; it returns the value when it has the expected
    type and otherwise raises ``{name} must be {expected}, got {what it is}`` at that line.
    ``name`` defaults to the key itself (``at[-1]``); formats that quote keys or qualify
    them (``Timeout.status``) pass their own. Not thread-safe (the line map is built once,
    on first use).

    Args:
        path: the file, as messages should name it.
        text: its text.
        error: the format's :class:`~mattrace.errors.LocatedError` subclass.

    Raises:
        E: ``text`` is not TOML (at the line tomllib names).
    """

    def __init__(self, path: str, text: str, error: type[E]) -> None:
        self.path = path
        self.text = text
        self.error = error
        try:
            self.doc: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line, message = _toml_error(text, str(exc))
            raise error(f"invalid TOML: {message}", path=path, line=line) from None
        except RecursionError:   # arrays or inline tables nested thousands deep: no file anyone writes
            raise error("invalid TOML: values nested too deep to read", path=path, line=None) from None

    @functools.cached_property
    def lines(self) -> LineMap:
        """The line of every key; built on first use, since only errors need it."""
        return LineMap(self.text)

    def line(self, at: Key) -> int | None:
        """The line of ``at``, else of the nearest enclosing key that has one (None: no line)."""
        return self.lines.get(at)

    def fail(self, at: Key, reason: str) -> E:
        """The format's error for ``reason``, at the line of ``at`` (``()``: the file, no line)."""
        return self.error(reason, path=self.path, line=self.line(at))

    def wrong(self, at: Key, value: Any, expected: str, *, name: str | None = None) -> E:
        """The error ``{name} must be {expected}, got {value's type}`` at the line of ``at``."""
        return self.fail(at, f"{str(at[-1]) if name is None else name} must be {expected}, got {got(value)}")

    def check_keys(self, at: Key, keys: Iterable[str], known: Sequence[str], what: str) -> None:
        """Raise at the first of ``keys`` not in ``known`` (the table at ``at``), with a did-you-mean."""
        for key in keys:
            if key not in known:
                raise self.fail((*at, key), unknown_key(key, what, known))

    # -- typed getters ---------------------------------------------------------------------

    def string(self, at: Key, value: Any, *, name: str | None = None, expected: str = "a string") -> str:
        """``value`` when it is a string."""
        if not isinstance(value, str):
            raise self.wrong(at, value, expected, name=name)
        return value

    def integer(self, at: Key, value: Any, *, name: str | None = None, expected: str = "an integer",
                minimum: int | None = None) -> int:
        """``value`` when it is an integer (not a boolean) of at least ``minimum``."""
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
            raise self.wrong(at, value, expected, name=name)
        return value

    def number(self, at: Key, value: Any, *, name: str | None = None, expected: str = "a number",
               minimum: float | None = None) -> float:
        """``value`` when it is an integer or a finite float (not a boolean) of at least ``minimum``, unchanged
        (``nan`` and ``inf`` are TOML floats, and a bound of ``nan`` is never exceeded: a check that cannot fail)."""
        if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                or (minimum is not None and value < minimum)):
            raise self.wrong(at, value, expected, name=name)
        return value

    def boolean(self, at: Key, value: Any, *, name: str | None = None, expected: str = "true or false") -> bool:
        """``value`` when it is true or false."""
        if not isinstance(value, bool):
            raise self.wrong(at, value, expected, name=name)
        return value

    def strings(self, at: Key, value: Any, *, name: str | None = None,
                expected: str = "a list of strings") -> list[str]:
        """``value`` when it is an array of strings (maybe empty)."""
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.wrong(at, value, expected, name=name)
        return value

    def table(self, at: Key, value: Any, *, name: str | None = None, expected: str = "a table") -> dict[str, Any]:
        """``value`` when it is a table."""
        if not isinstance(value, dict):
            raise self.wrong(at, value, expected, name=name)
        return value

    def choice(self, at: Key, value: Any, options: Sequence[str], *, name: str | None = None,
               expected: str | None = None) -> str:
        """``value`` when it is one of ``options`` (by default the message lists them: "one of a, b")."""
        if not isinstance(value, str) or value not in options:
            raise self.wrong(at, value, expected or f"one of {', '.join(options)}", name=name)
        return value

    def function(self, at: Key, value: Any, *, name: str | None = None) -> Any:
        """The object a ``"module:function"`` string names, imported now (user code: it may run)."""
        if not isinstance(value, str) or ":" not in value:
            raise self.fail(at, f'{name} must be "module:function", got {got(value)}' if name
                            else f'expected "module:function", got {got(value)}')
        module, _, attr = value.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            lead = f"{name} " if name else ""
            raise self.fail(at, f"{lead}{value!r} does not import ({exc})") from None


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
