"""How replay tells whether a call is one the cassette recorded: vcrpy's ``match_on`` and filters.

By default a call matches a recorded one when its kind, target, agent and canonical arguments
are all equal. Prompts often carry input that changes on every run (today's date, a request
id, a generated uuid), and then no recording ever matches again. A :class:`Matcher` says what
to compare:

* ``match_on``: which of ``kind``, ``target``, ``agent``, ``args`` must be equal (``kind``
  always: replay never serves a tool result to an LLM call). Leaving out ``args`` serves the
  n-th call to a target the n-th recorded answer, as vcrpy's ``match_on=["method", "uri"]``
  ignores request bodies.
* ``ignore``: argument paths left out of the comparison, as the mismatch message names them
  (``metadata.request_id``, ``messages[0].content``; ``*`` or ``[*]`` stands for any key or
  element: ``messages[*].name``), and patterns (``re:<regex>`` or a compiled ``re.Pattern``)
  whose matches are masked in every string of the arguments (``re:\\d{4}-\\d{2}-\\d{2}``).

The cassette stores the arguments as they were; matching compares both sides after the same
masking, so a matcher can be changed (or dropped) without recording again. Patterns run on
the arguments of the run under test, which the test author controls; they are Python ``re``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mattrace.errors import RecordingError
from mattrace.trace import canonical_json

__all__ = ["IGNORED", "MATCH_FIELDS", "Matcher"]

MATCH_FIELDS: tuple[str, ...] = ("kind", "target", "agent", "args")
"""What a recorded call can be matched on; all of them by default."""
IGNORED = "<ignored>"
"""What a masked pattern or an ignored list element reads as when arguments are compared."""
PATTERN_PREFIX = "re:"

_TOKEN = re.compile(r"\[(\*|\d+)\]|([^.\[\]]+)")
_Key = tuple[str, str, str, str]


def _parse_path(text: str) -> tuple[str, ...]:
    """``messages[*].content`` → ``("messages", "*", "content")``; list indices as their digits."""
    if not text or text.startswith(".") or text.endswith(".") or ".." in text:
        raise RecordingError(f"ignore path {text!r} is not a path like metadata.request_id or messages[*].content")
    tokens, pos = [], 0
    for match in _TOKEN.finditer(text):
        gap = text[pos:match.start()]
        if gap not in ("", "."):
            break
        tokens.append(match.group(1) or match.group(2))
        pos = match.end()
    if pos != len(text) or not tokens:
        raise RecordingError(f"ignore path {text!r} is not a path like metadata.request_id or messages[*].content")
    return tuple(tokens)


@dataclass(frozen=True)
class Matcher:
    """What replay compares to find a call's recorded answer (see the module docstring).

    Build one with :meth:`of`; the default matches on everything and ignores nothing.

    Attributes:
        match_on: the compared parts of a call, a subset of :data:`MATCH_FIELDS` with ``kind``.
        paths: the ignored argument paths, parsed (``("messages", "*", "content")``).
        patterns: the regexes masked in every string of the arguments.
    """

    match_on: tuple[str, ...] = MATCH_FIELDS
    paths: tuple[tuple[str, ...], ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, match_on: Iterable[str] | None = None, ignore: Iterable[str | re.Pattern[str]] = ()) -> Matcher:
        """A matcher from ``match_on`` (default: all of :data:`MATCH_FIELDS`) and ``ignore`` items.

        An ``ignore`` item is an argument path (``metadata.request_id``, ``messages[*].content``),
        ``re:<regex>``, or a compiled ``re.Pattern``.

        Raises:
            RecordingError: an unknown ``match_on`` field, ``match_on`` without ``kind``, a
                malformed path, or a regex that does not compile.
        """
        if isinstance(match_on, str) or isinstance(ignore, (str, re.Pattern)):
            raise RecordingError("match_on and ignore take lists (match_on=['kind', 'target'], ignore=['re:...'])")
        fields = MATCH_FIELDS if match_on is None else tuple(dict.fromkeys(match_on))
        unknown = [f for f in fields if f not in MATCH_FIELDS]
        if unknown:
            raise RecordingError(f"match_on: unknown field {unknown[0]!r}; a call matches on {', '.join(MATCH_FIELDS)}")
        if "kind" not in fields:
            raise RecordingError("match_on must include 'kind': replay never answers one kind of call with another's "
                                 "recorded result")
        paths: list[tuple[str, ...]] = []
        patterns: list[re.Pattern[str]] = []
        for item in ignore:
            if isinstance(item, re.Pattern):
                patterns.append(item)
            elif isinstance(item, str) and item.startswith(PATTERN_PREFIX):
                try:
                    patterns.append(re.compile(item[len(PATTERN_PREFIX):]))
                except re.error as exc:
                    raise RecordingError(f"ignore {item!r}: not a regex: {exc}") from None
            elif isinstance(item, str):
                paths.append(_parse_path(item.strip()))
            else:
                raise RecordingError(f"ignore takes argument paths, 're:<regex>' or compiled patterns, got {item!r}")
        return cls(tuple(MATCH_FIELDS[i] for i in sorted(MATCH_FIELDS.index(f) for f in fields)),
                   tuple(paths), tuple(patterns))

    @property
    def exact(self) -> bool:
        """Whether this matcher compares everything and ignores nothing (the default)."""
        return self.match_on == MATCH_FIELDS and not self.paths and not self.patterns

    def key(self, kind: str, target: str, agent: str, args: Any) -> _Key:
        """The key a call is queued and looked up under: the compared parts, the rest empty."""
        on = self.match_on
        return (kind, target if "target" in on else "", agent if "agent" in on else "",
                canonical_json(self.masked(args)) if "args" in on else "")

    def masked(self, args: Any) -> Any:
        """``args`` as compared: ignored paths removed (list elements read :data:`IGNORED`), and
        every match of a pattern in a string replaced by :data:`IGNORED`."""
        if not self.paths and not self.patterns:
            return args
        return self._mask(args, ())

    def _mask(self, value: Any, at: tuple[str, ...]) -> Any:
        if isinstance(value, dict):
            return {k: self._mask(v, (*at, str(k))) for k, v in value.items() if not self._ignored((*at, str(k)))}
        if isinstance(value, list):
            return [IGNORED if self._ignored((*at, str(i))) else self._mask(v, (*at, str(i)))
                    for i, v in enumerate(value)]
        if isinstance(value, str):
            for pattern in self.patterns:
                value = pattern.sub(IGNORED, value)
        return value

    def _ignored(self, at: tuple[str, ...]) -> bool:
        return any(len(path) == len(at) and all(p in ("*", a) for p, a in zip(path, at, strict=True))
                   for path in self.paths)

    def describe(self) -> str:
        """The matcher in words, for messages: ``match_on kind, target; ignore metadata.id, re:\\d+``."""
        parts = []
        if self.match_on != MATCH_FIELDS:
            parts.append(f"match_on {', '.join(self.match_on)}")
        ignored = [".".join(p).replace(".*", "[*]") for p in self.paths] + \
                  [PATTERN_PREFIX + p.pattern for p in self.patterns]
        if ignored:
            parts.append(f"ignore {', '.join(ignored)}")
        return "; ".join(parts) or "everything"
