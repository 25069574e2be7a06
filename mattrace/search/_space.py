"""The perturbation space: what every space is, and how spaces combine.

A space is a description, not yet a strategy: where text can be planted is only known
after the canary run, so each space turns into a hypothesis strategy (for the guided
search) or a uniform sampler (for the random baseline) given a :class:`Context` that
holds the input text and the call sites the canary found. Its repr is the expression
that built it, so a search report can say exactly what was searched.

The spaces themselves live in :mod:`._input_spaces` (the run's input) and
:mod:`._boundary_spaces` (what boundary calls return); :class:`~._constructors.P` builds
them. This module holds the base class, the argument checks they share, and the
combinators ``one_of``, ``all_of`` and ``sequence``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import product, zip_longest
from typing import Any

from hypothesis import strategies as st

from mattrace.errors import FaultSpecError, SearchError
from mattrace.faults import Target, parse_target
from mattrace.search._perturbations import Perturbation, combine
from mattrace.search._sites import Sites

__all__ = ["Context", "Space"]

MAX_PROBES = 32
"""At most this many extreme perturbations are tried before hypothesis takes over."""
Strategy = st.SearchStrategy[Perturbation]


@dataclass(frozen=True)
class Context:
    """What a space needs to become concrete: the input and the canary's call sites."""

    input: str | None = None
    sites: Sites = field(default_factory=Sites)
    reachable_only: bool = True
    """Inject only where the canary saw text reach a model (the guided search); the random
    baseline samples every point that exists."""


class Space:
    """Base of every perturbation space."""

    perturbs_input: bool = False
    needs_sites: bool = False

    def empty_reason(self, ctx: Context) -> str | None:
        """Why this space has nothing to draw from in ``ctx``, or None."""
        return None

    def strategy(self, ctx: Context) -> Strategy:
        raise NotImplementedError

    def sample(self, rng: random.Random, ctx: Context) -> Perturbation:
        raise NotImplementedError

    def probes(self, rng: random.Random, ctx: Context) -> list[Perturbation]:
        """The extreme perturbations worth trying first (none by default).

        A guided search runs these before hypothesis generates anything: when a bug grows
        likelier with a bigger perturbation (more planted instructions, a bigger nudge),
        the largest one the bounds allow finds it in a run or two, and hypothesis then
        shrinks it down to the part that matters.
        """
        return []

    def __repr__(self) -> str:
        return self.expression

    expression: str = "P.space()"


# -- argument checks ---------------------------------------------------------------------------------


def _texts(call: str, texts: Any) -> tuple[str, ...]:
    if isinstance(texts, str) or not isinstance(texts, Iterable):
        raise SearchError(f"{call}: texts must be a list of strings, got {texts!r}")
    items = tuple(texts)
    bad = [t for t in items if not isinstance(t, str) or not t.strip()]
    if not items or bad:
        raise SearchError(f"{call}: texts must be a non-empty list of non-empty strings"
                          + (f", got {bad[0]!r}" if bad else ", got an empty list"))
    return items


def _target(call: str, pattern: Any) -> Target:
    try:
        return parse_target(pattern)
    except FaultSpecError as exc:
        raise SearchError(f"{call}: {exc}") from None


def _count(call: str, name: str, value: Any, minimum: int = 1) -> int:
    if type(value) is not int or value < minimum:
        raise SearchError(f"{call}: {name} must be a whole number >= {minimum}, got {value!r}")
    return value


def _spaces(call: str, spaces: Sequence[Any]) -> tuple[Space, ...]:
    bad = [s for s in spaces if not isinstance(s, Space)]
    if not spaces or bad:
        raise SearchError(f"{call}: expected one or more spaces (P.inject(...), P.typos(...) ...)"
                          + (f", got {bad[0]!r}" if bad else ", got none"))
    return tuple(spaces)


def _short(texts: tuple[str, ...]) -> str:
    return f"[{len(texts)} texts]" if len(texts) > 2 else repr(list(texts))


# -- combinators ----------------------------------------------------------------------------------------


class _Combinator(Space):
    def __init__(self, spaces: tuple[Space, ...]) -> None:
        self.spaces = spaces
        self.perturbs_input = any(s.perturbs_input for s in spaces)
        self.needs_sites = any(s.needs_sites for s in spaces)

    def _usable(self, ctx: Context) -> tuple[Space, ...]:
        return tuple(s for s in self.spaces if s.empty_reason(ctx) is None)


class _OneOf(_Combinator):
    def __init__(self, spaces: tuple[Space, ...]) -> None:
        super().__init__(spaces)
        self.expression = f"P.one_of({', '.join(map(repr, spaces))})"

    def empty_reason(self, ctx: Context) -> str | None:
        if self._usable(ctx):
            return None
        return "; ".join(r for s in self.spaces if (r := s.empty_reason(ctx)))

    def strategy(self, ctx: Context) -> Strategy:
        return st.one_of(*(s.strategy(ctx) for s in self._usable(ctx)))

    def sample(self, rng: random.Random, ctx: Context) -> Perturbation:
        return rng.choice(self._usable(ctx)).sample(rng, ctx)

    def probes(self, rng: random.Random, ctx: Context) -> list[Perturbation]:
        lists = [s.probes(rng, ctx) for s in self._usable(ctx)]
        return [p for row in zip_longest(*lists) for p in row if p is not None]   # round robin


class _AllOf(_Combinator):
    def __init__(self, spaces: tuple[Space, ...]) -> None:
        super().__init__(spaces)
        self.expression = f"P.all_of({', '.join(map(repr, spaces))})"

    def empty_reason(self, ctx: Context) -> str | None:
        return next((r for s in self.spaces if (r := s.empty_reason(ctx))), None)

    def strategy(self, ctx: Context) -> Strategy:
        return st.tuples(*(s.strategy(ctx) for s in self.spaces)).map(combine)

    def sample(self, rng: random.Random, ctx: Context) -> Perturbation:
        return combine(s.sample(rng, ctx) for s in self.spaces)

    def probes(self, rng: random.Random, ctx: Context) -> list[Perturbation]:
        lists = [s.probes(rng, ctx) for s in self.spaces]
        if not all(lists):
            return []    # a part with no extreme: leave the combination to hypothesis
        # by the sum of the positions (a diagonal walk): every part varies early, not only the last
        ranked = sorted(product(*(range(len(row)) for row in lists)), key=lambda ix: (sum(ix), ix))
        return [combine(row[i] for row, i in zip(lists, ix, strict=True)) for ix in ranked[:MAX_PROBES]]


class _Sequence(_OneOf):
    def __init__(self, spaces: tuple[Space, ...], max_len: int) -> None:
        super().__init__(spaces)
        self.max_len = _count("P.sequence", "max_len", max_len)
        inner = ", ".join(map(repr, spaces))
        self.expression = f"P.sequence({inner}, max_len={max_len})"

    def strategy(self, ctx: Context) -> Strategy:
        return st.lists(super().strategy(ctx), min_size=1, max_size=self.max_len).map(combine)

    def sample(self, rng: random.Random, ctx: Context) -> Perturbation:
        return combine(super(_Sequence, self).sample(rng, ctx) for _ in range(rng.randint(1, self.max_len)))
