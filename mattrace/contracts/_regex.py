"""Regular expressions written as text (in Python or in contract files), matched in linear time.

Contracts run their patterns over text an attacker may have written (a web page, a tool's
output), and a backtracking engine takes exponential time on patterns like ``(a+)+$``: one
crafted page would hang ``mattrace check`` or a run-time guard. Patterns given as text are
therefore compiled with RE2 (google-re2), whose matching time is linear in the text. RE2
has no lookaround and no backreferences; a pattern that needs them is a
:class:`~mattrace.errors.ContractError` that says so and how to rewrite it. A pattern
compiled by the caller (an ``re.Pattern``) is used as given: its engine was the caller's
choice.
"""

from __future__ import annotations

import re
from typing import Any

import re2  # type: ignore[import-untyped]   # google-re2 ships no type information

from mattrace.errors import ContractError

__all__ = ["LinearPattern", "Regex", "compile_linear"]

_LONE = re.compile("[\ud800-\udfff]")


class LinearPattern:
    """A pattern compiled by RE2, with the part of ``re.Pattern``'s interface contracts use."""

    __slots__ = ("_rx", "ignore_case", "pattern")

    def __init__(self, pattern: str, rx: Any, ignore_case: bool) -> None:
        self.pattern = pattern
        self.ignore_case = ignore_case
        self._rx = rx

    def search(self, text: str) -> Any:
        """The first match in ``text``, or None."""
        try:
            return self._rx.search(text)
        except UnicodeEncodeError:   # RE2 reads UTF-8: a lone surrogate (recorded as is) cannot be encoded
            return self._rx.search(_LONE.sub("\ufffd", text))

    def __repr__(self) -> str:
        return f"LinearPattern({self.pattern!r}{', ignore_case=True' if self.ignore_case else ''})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LinearPattern) and (self.pattern, self.ignore_case) == (other.pattern,
                                                                                         other.ignore_case)

    def __hash__(self) -> int:
        return hash((self.pattern, self.ignore_case))


Regex = re.Pattern[str] | LinearPattern
"""A pattern a contract matches text with: compiled by mattrace (RE2) or by the caller (``re``)."""

_HINTS = (
    ("(?=", "RE2 has no lookahead: match the wider text, or use not_matches for what must not follow"),
    ("(?!", "RE2 has no negative lookahead: use not_matches (or never(...)) for what must not appear"),
    ("(?<=", "RE2 has no lookbehind: match the wider text instead"),
    ("(?<!", "RE2 has no negative lookbehind: use not_matches for what must not come before"),
    ("\\Z", "RE2 writes the end of the text as \\z (or $)"),
    ("(?>", "RE2 has no atomic groups, and needs none: it never backtracks"),
)


def compile_linear(pattern: str, *, ignore_case: bool = False) -> LinearPattern:
    """``pattern`` compiled for linear-time matching.

    Raises:
        ContractError: not a pattern RE2 accepts (the message says why and, for lookaround,
            backreferences and ``\\Z``, how to write it for RE2); callers add where it came from.
    """
    options = re2.Options()
    options.log_errors = False          # the error is raised, not also printed to stderr
    options.case_sensitive = not ignore_case
    try:
        rx = re2.compile(pattern, options=options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        hint = next((h for marker, h in _HINTS if marker in pattern), None)
        if hint is None and re.search(r"\\[1-9]|\(\?P=", pattern):
            hint = "RE2 has no backreferences: match each part on its own (two conditions joined with &)"
        raise ContractError(f"bad regular expression {pattern!r}: {reason}"
                            + (f" ({hint})" if hint else " (mattrace matches with RE2, in linear time)")) from None
    return LinearPattern(pattern, rx, ignore_case)
