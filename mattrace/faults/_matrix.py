"""Fault campaigns: one test, run once per fault (or per combination), each case a pytest id.

``@pytest.mark.mattrace(faults=matrix(Timeout("tool:*"), Empty("retrieval:*")))`` runs the
test once per fault with ids like ``test_desk[Timeout-tool:*]``, so pytest's own output
says which fault broke what; ``matrix(..., baseline=True)`` adds an unfaulted case.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from mattrace.errors import FaultSpecError
from mattrace.faults._specs import Fault

__all__ = ["FaultCase", "FaultMatrix", "matrix"]


@dataclass(frozen=True)
class FaultCase:
    """One case of a campaign: its faults (none for the baseline) and its pytest id."""

    faults: tuple[Fault, ...]

    @property
    def id(self) -> str:
        if not self.faults:
            return "no-fault"
        return "+".join(f"{type(f).__name__}-{f.target}" for f in self.faults)


@dataclass(frozen=True)
class FaultMatrix:
    """The cases of a campaign, in order."""

    cases: tuple[FaultCase, ...]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self.cases)


def matrix(*faults: Fault | Iterable[Fault], baseline: bool = False, combinations: int = 1) -> FaultMatrix:
    """A campaign: each fault alone (``combinations=2``: also every pair, and so on).

    Args:
        faults: the faults (or lists of faults that always go together).
        baseline: add a case without faults first, to compare against.
        combinations: the largest number of faults combined in one case.
    """
    groups: list[tuple[Fault, ...]] = []
    for item in faults:
        group = (item,) if isinstance(item, Fault) else tuple(item)
        if not group or not all(isinstance(f, Fault) for f in group):
            raise FaultSpecError(f"matrix() takes faults or lists of faults, got {item!r}")
        groups.append(group)
    if not groups:
        raise FaultSpecError("matrix() needs at least one fault")
    if type(combinations) is not int or combinations < 1:
        raise FaultSpecError(f"matrix(combinations=...) must be a whole number >= 1, got {combinations!r}")
    cases = [FaultCase(())] if baseline else []
    for size in range(1, min(combinations, len(groups)) + 1):
        for combo in itertools.combinations(groups, size):
            cases.append(FaultCase(tuple(f for group in combo for f in group)))
    return FaultMatrix(tuple(cases))
