"""Inference of ``reads`` edges by text containment.

Taint contracts ("no action caused by untrusted text") follow ``reads`` edges, and most
orchestrators never say which earlier output went into a prompt or a tool argument. They
do copy the text, though: a retrieved passage appears verbatim in the next prompt, an LLM
answer verbatim in the e-mail body. So each step's textual outputs are indexed as
fragments, and a later step *reads* an earlier one when one of its fragments occurs in the
later step's inputs. Explicit ``reads`` always add to what is inferred.

Trade-offs, said out loud: fragments shorter than :data:`MIN_FRAGMENT` characters are
ignored (too many false edges), and only the last :data:`WINDOW` producing steps are
searched, which bounds the cost per step on very long runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

__all__ = [
    "MIN_FRAGMENT",
    "OutputIndex",
    "text_leaves",
    "WINDOW",
]

MIN_FRAGMENT = 12
WINDOW = 512
_MAX_FRAGMENTS = 8


def text_leaves(value: Any) -> Iterator[str]:
    """Every string inside a JSON-able value (dict values, list items, the value itself)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from text_leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from text_leaves(v)


class OutputIndex:
    """The recent steps' textual outputs, searchable by containment. Not thread-safe:
    the recorder calls it under its lock."""

    def __init__(self) -> None:
        self._entries: deque[tuple[int, tuple[str, ...]]] = deque(maxlen=WINDOW)

    def add(self, index: int, *outputs: Any) -> None:
        """Remember the textual outputs of step ``index``."""
        fragments = {s.strip() for o in outputs for s in text_leaves(o)}
        kept = sorted((f for f in fragments if len(f) >= MIN_FRAGMENT), key=len, reverse=True)
        if kept:
            self._entries.append((index, tuple(kept[:_MAX_FRAGMENTS])))

    def found_in(self, *inputs: Any) -> list[int]:
        """Indices of indexed steps whose output text occurs in ``inputs``."""
        haystack = "\n".join(text_leaves(list(inputs)))
        if len(haystack) < MIN_FRAGMENT:
            return []
        return [index for index, fragments in self._entries
                if any(f in haystack for f in fragments)]
