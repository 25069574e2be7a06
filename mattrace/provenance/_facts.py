"""What the provenance analysis derives from one string, and from what a call was given.

A string's facts (normal form, identifier tokens, spans, the tokens it is looked up by)
depend on the string alone, so an analysis derives them once per distinct short string,
part by part as they are asked for. A call's *echo* (what it was given) is how its outputs
that merely repeat its arguments are told apart from evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from mattrace.provenance._text import SPAN, WEAK, identifiers, normalise, span_starts
from mattrace.trace import Step, StepKind

__all__ = ["CALL_OUTPUTS", "FACTS_CACHED_UP_TO", "FACTS_KEPT", "TextFacts", "echoed", "flatten", "value_tokens"]

CALL_OUTPUTS = frozenset({StepKind.TOOL, StepKind.RETRIEVAL, StepKind.MEMORY_READ})


"""Kinds of step whose output is a call's result (tools, retrievals, memory reads)."""


_NAMES = ("email:", "url:", "account:", "phone:", "path:")


def value_tokens(value: str) -> tuple[set[str], bool]:
    """The identifiers a value is looked up by, and whether it consists of one of them.

    A domain or digits inside a stronger token (an address, an IBAN) do not speak for the
    value on their own; a value that *is* an address, URL, account or phone number is
    judged by that alone.
    """
    tokens, named = TextFacts(value).lookup(value)
    return set(tokens), named


def _value_tokens(value: str, norm: str, ids: frozenset[str]) -> tuple[frozenset[str], bool]:
    tokens = ids
    if any(not t.startswith(WEAK) for t in tokens):
        tokens = frozenset(t for t in tokens if not t.startswith(WEAK))
    named = _named_by(value, norm, tokens)
    return (frozenset((named,)), True) if named is not None else (tokens, False)


class TextFacts:
    """What the analysis derives from one string, whatever step it is in: its normalised
    form, its identifier tokens, the spans it starts, and (asked for input values only)
    the tokens it is looked up by. Computed once per distinct short string (see
    :meth:`Provenance._facts_of`); read-only."""

    __slots__ = ("_ids", "_lookup", "_pieces", "norm", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.norm = normalise(text)
        self._ids: frozenset[str] | None = None      # each part is derived when first asked for:
        self._pieces: tuple[str, ...] | None = None  # an echo check may need the normal form only
        self._lookup: tuple[frozenset[str], bool] | None = None

    @property
    def ids(self) -> frozenset[str]:
        """:func:`identifiers` of the text."""
        if self._ids is None:
            self._ids = frozenset(identifiers(self.text))
        return self._ids

    @property
    def pieces(self) -> tuple[str, ...]:
        """The spans of the normal form (one at each word start)."""
        if self._pieces is None:
            norm = self.norm
            self._pieces = tuple(norm[i:i + SPAN] for i in span_starts(norm))
        return self._pieces

    def lookup(self, text: str) -> tuple[frozenset[str], bool]:
        """:func:`value_tokens` of ``text`` (the string these facts are of)."""
        if self._lookup is None:
            self._lookup = _value_tokens(text, self.norm, self.ids)
        return self._lookup


FACTS_CACHED_UP_TO = 256
"""Strings up to this long have their :class:`TextFacts` kept by the analysis that met them
(at most :data:`FACTS_KEPT` of them): an argument is read as an input value, again as what
its tool's output may echo, and again when a guard judged the action before it ran; a
recipient or a status recurs all through a run. Longer text is analysed each time it is met,
so the cache never holds more than a few megabytes."""
FACTS_KEPT = 2048


def _named_by(value: str, norm: str, tokens: frozenset[str]) -> str | None:
    """The one identifier a value consists of (``bob@x.com``, ``https://x.com/a``), if it does."""
    text = norm.removeprefix("https://").removeprefix("http://").removeprefix("www.").rstrip("/")
    for token in tokens:
        if token.startswith(_NAMES):
            body = token.split(":", 1)[1]
            if token.startswith(("account:", "phone:")):
                if len(value.strip()) <= len(body) + 6:
                    return token
            elif text in (body, "mailto:" + body) or text.removeprefix("www.") == body:
                return token
    return None


class _Echo:
    """What a step was given: its outputs repeating it are not evidence. Each part is
    gathered when first asked for (an output of one short word asks for the whole values
    only, not for their identifiers)."""

    __slots__ = ("_facts", "_ids", "_spans", "_whole", "args", "facts_of")

    def __init__(self, args: dict[str, Any] | None, facts_of: Callable[[str], TextFacts] = TextFacts) -> None:
        self.args = args
        self.facts_of = facts_of
        self._facts: list[TextFacts] | None = None
        self._ids: set[str] | None = None
        self._spans: set[str] | None = None
        self._whole: set[str] | None = None

    @property
    def facts(self) -> list[TextFacts]:
        """The facts of every string argument."""
        if self._facts is None:
            facts = []
            facts_of = self.facts_of
            for key, raw in (self.args or {}).items():
                if isinstance(raw, str):   # most arguments: no walk through a nested value
                    facts.append(facts_of(raw))
                else:
                    facts.extend(facts_of(text) for _, text in flatten(key, raw))
            self._facts = facts
        return self._facts

    @property
    def whole(self) -> set[str]:
        if self._whole is None:
            self._whole = {f.norm for f in self.facts}
        return self._whole

    @property
    def ids(self) -> set[str]:
        if self._ids is None:
            self._ids = {token for f in self.facts for token in f.ids}
        return self._ids

    @property
    def spans(self) -> set[str]:
        if self._spans is None:
            self._spans = {piece for f in self.facts for piece in f.pieces}
        return self._spans


_NO_ECHO = _Echo(None)


def echoed(step: Step, facts_of: Callable[[str], TextFacts]) -> _Echo:
    if not step.args or step.kind not in CALL_OUTPUTS:
        return _NO_ECHO
    return _Echo(step.args, facts_of)


def flatten(key: str, value: Any) -> Iterator[tuple[str, str]]:
    """(path, text) of every scalar leaf of an argument."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield key, str(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from flatten(f"{key}.{k}", v)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from flatten(f"{key}[{i}]", v)
