"""Inference of ``reads`` edges by text containment.

Taint contracts ("no action caused by untrusted text") follow ``reads`` edges, and most
orchestrators never say which earlier output went into a prompt or a tool argument. They
do copy the text, though: a retrieved passage appears verbatim in the next prompt, an LLM
answer verbatim in the e-mail body. So each step's textual outputs are indexed as
fragments, and a later step *reads* an earlier one when one of its fragments occurs in the
later step's inputs. Explicit ``reads`` always add to what is inferred.

How: fragments are indexed by their first :data:`MIN_FRAGMENT` characters, and a later
step's input is scanned once, looking each window of that length up in the index. The cost
per step is linear in the length of the step's input and independent of how many steps
came before, so taint edges are found across a run of any length. Trade-off, said out
loud: fragments shorter than :data:`MIN_FRAGMENT` characters are ignored (too many false
edges), and only each step's :data:`MAX_FRAGMENTS` longest strings are indexed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = [
    "MAX_FRAGMENTS",
    "MIN_FRAGMENT",
    "OutputIndex",
    "text_leaves",
]

MIN_FRAGMENT = 12
MAX_FRAGMENTS = 8


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
    """The steps' textual outputs, searchable by containment. Not thread-safe: the
    recorder calls it under its lock."""

    def __init__(self) -> None:
        # first MIN_FRAGMENT characters of a fragment -> [(step index, fragment)]
        self._by_prefix: dict[str, list[tuple[int, str]]] = {}

    def add(self, index: int, *outputs: Any) -> None:
        """Remember the textual outputs of step ``index``."""
        fragments = {s.strip() for o in outputs for s in text_leaves(o)}
        kept = sorted((f for f in fragments if len(f) >= MIN_FRAGMENT), key=len, reverse=True)
        for fragment in kept[:MAX_FRAGMENTS]:
            self._by_prefix.setdefault(fragment[:MIN_FRAGMENT], []).append((index, fragment))

    def found_in(self, *inputs: Any) -> list[int]:
        """Indices of indexed steps whose output text occurs in ``inputs``."""
        if not self._by_prefix:
            return []
        haystack = "\n".join(text_leaves(list(inputs)))
        found: set[int] = set()
        lookup = self._by_prefix.get
        for start in range(len(haystack) - MIN_FRAGMENT + 1):
            bucket = lookup(haystack[start:start + MIN_FRAGMENT])
            if bucket:
                for index, fragment in bucket:
                    if index not in found and haystack.startswith(fragment, start):
                        found.add(index)
        return sorted(found)
