"""The perturbation space: ``P.inject(...)``, ``P.typos(...)``, ``P.one_of(...)`` ...

A space is a description, not yet a strategy: where text can be planted is only known
after the canary run, so each space turns into a hypothesis strategy (for the guided
search) or a uniform sampler (for the random baseline) given a :class:`Context` that
holds the input text and the call sites the canary found. Its repr is the expression
that built it, so a search report can say exactly what was searched.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import product, zip_longest
from typing import Any

from hypothesis import strategies as st

from mattrace.errors import FaultSpecError, SearchError
from mattrace.faults._specs import Fault
from mattrace.faults._target import Target, parse_target
from mattrace.search._corpus import injections
from mattrace.search._perturbations import (
    Distractor,
    Drop,
    Edit,
    FaultPerturbation,
    Inject,
    Noise,
    Paraphrase,
    Perturbation,
    Reorder,
    Typos,
    _sentences,
    combine,
)
from mattrace.search._sites import CallSite, Point, Sites

__all__ = ["Context", "P", "Space"]

MAX_PROBES = 32
"""At most this many extreme perturbations are tried before hypothesis takes over."""
_OPS = ("delete", "swap", "double", "replace")
_LETTERS = string.ascii_lowercase
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


# -- input spaces --------------------------------------------------------------------------------------


class _InputSpace(Space):
    perturbs_input = True

    def empty_reason(self, ctx: Context) -> str | None:
        if ctx.input is None:
            return f"{self.expression} perturbs the run's input, and the search was given none (input=...)"
        return None


class _TyposSpace(_InputSpace):
    def __init__(self, max_edits: int) -> None:
        self.max_edits = _count("P.typos", "max_edits", max_edits)
        self.expression = f"P.typos(max_edits={max_edits})"

    def empty_reason(self, ctx: Context) -> str | None:
        return super().empty_reason(ctx) or (None if ctx.input else f"{self.expression}: the input is empty")

    def strategy(self, ctx: Context) -> Strategy:
        n = len(ctx.input or "")
        edit = st.builds(Edit, st.integers(0, n - 1), st.sampled_from(_OPS), st.sampled_from(_LETTERS))
        return st.lists(edit, min_size=1, max_size=self.max_edits, unique_by=lambda e: e.position).map(
            lambda edits: Typos(tuple(sorted(edits, key=lambda e: e.position))))

    def sample(self, rng: random.Random, ctx: Context) -> Perturbation:
        n = len(ctx.input or "")
        positions = rng.sample(range(n), min(n, rng.randint(1, self.max_edits)))
        return Typos(tuple(Edit(p, rng.choice(_OPS), rng.choice(_LETTERS)) for p in sorted(positions)))


class _ParaphraseSpace(_InputSpace):
    def __init__(self, templates: Any) -> None:
        self.templates = _texts("P.paraphrase", templates)
        self.expression = f"P.paraphrase({_short(self.templates)})"

    def strategy(self, ctx: Context) -> Strategy:
        return st.sampled_from(self.templates).map(Paraphrase)

    def sample(self, rng: random.Random, ctx: Context) -> Perturbation:
        return Paraphrase(rng.choice(self.templates))


class _DistractorSpace(Space):
    def __init__(self, texts: Any, target: str | None) -> None:
        self.texts = _texts("P.distractor", texts)
        self.target = None if target is None else _target("P.distractor", target)
        self.perturbs_input = target is None
        self.needs_sites = target is not None
        self.expression = (f"P.distractor({_short(self.texts)})" if target is None
                           else f"P.distractor({_short(self.texts)}, target={target!r})")

    def _points(self, ctx: Context) -> tuple[Point, ...]:
        assert self.target is not None
        return ctx.sites.points(self.target, ctx.reachable_only)

    def empty_reason(self, ctx: Context) -> str | None:
        if self.target is None:
            return None if ctx.input is not None else (
                f"{self.expression} perturbs the run's input, and the search was given none (input=...)")
        return None if self._points(ctx) else f"{self.expression}: no point of {self.target} reaches a model"

    def strategy(self, ctx: Context) -> Strategy:
        if self.target is None:
            gaps = len(_sentences(ctx.input or "")) + 1
            return st.builds(lambda t, i: Distractor(t, i), st.sampled_from(self.texts), st.integers(0, gaps - 1))
        return st.builds(lambda t, p: Distractor(t, point=p), st.sampled_from(self.texts),
                         st.sampled_from(self._points(ctx)))

    def sample(self, rng: random.Random, ctx: Context) -> Perturbation:
        if self.target is None:
            return Distractor(rng.choice(self.texts), rng.randrange(len(_sentences(ctx.input or "")) + 1))
        return Distractor(rng.choice(self.texts), point=rng.choice(self._points(ctx)))


# -- boundary spaces ----------------------------------------------------------------------------------


class _InjectSpace(Space):
    needs_sites = True

    def __init__(self, target: str, texts: Any, max_points: int, max_sentences: int) -> None:
        self.target = _target("P.inject", target)
        self.texts = injections() if texts is None else _texts("P.inject", texts)
        self.max_points = _count("P.inject", "max_points", max_points)
        self.max_sentences = min(_count("P.inject", "max_sentences", max_sentences), len(self.texts))
        shown = "P.injections()" if texts is None else _short(self.texts)
        bounds = (f", max_points={max_points}" if max_points != 3 else "") + (
            f", max_sentences={max_sentences}" if max_sentences != 3 else "")
        self.expression = f"P.inject({target!r}, {shown}{bounds})"

    def _points(self, ctx: Context) -> tuple[Point, ...]:
        return ctx.sites.points(self.target, ctx.reachable_only)

    def empty_reason(self, ctx: Context) -> str | None:
        if self._points(ctx):
            return None
        found = ctx.sites.points(self.target, False)
        if found:
            return (f"{self.expression}: the canary planted a marker in {len(found)} point(s) of "
                    f"{self.target}, and none reached an LLM prompt or an action")
        return f"{self.expression}: the canary run made no {self.target} call whose result holds text"

    @staticmethod
    def _inject(chosen: Iterable[tuple[Point, Iterable[str]]]) -> Perturbation:
        return combine(Inject(tuple((p, t) for t in texts)) for p, texts in chosen)

    def strategy(self, ctx: Context) -> Strategy:
        points = self._points(ctx)
        sentences = st.lists(st.sampled_from(self.texts), min_size=1, max_size=self.max_sentences, unique=True)
        plant = st.tuples(st.sampled_from(points), sentences)
        return st.lists(plant, min_size=1, max_size=min(self.max_points, len(points)),
                        unique_by=lambda p: p[0]).map(self._inject)

    def sample(self, rng: random.Random, ctx: Context) -> Perturbation:
        points = self._points(ctx)
        chosen = rng.sample(points, rng.randint(1, min(self.max_points, len(points))))
        return self._inject((p, rng.sample(self.texts, rng.randint(1, self.max_sentences))) for p in chosen)

    def probes(self, rng: random.Random, ctx: Context) -> list[Perturbation]:
        # the biggest perturbations the bounds allow: every reachable point (max_points at a
        # time) carrying max_sentences texts at once; texts in a seeded order
        points = self._points(ctx)
        texts = list(self.texts)
        rng.shuffle(texts)
        groups = [texts[i:i + self.max_sentences] for i in range(0, len(texts), self.max_sentences)]
        chunks = [points[i:i + self.max_points] for i in range(0, len(points), self.max_points)]
        return [self._inject((p, group) for p in chunk) for group in groups for chunk in chunks]


class _ListSpace(Space):
    needs_sites = True
    minimum = 2
    verb = "reorder"

    def __init__(self, call: str, target: str) -> None:
        self.target = _target(call, target)

    def _sites(self, ctx: Context) -> tuple[CallSite, ...]:
        return tuple(s for s in ctx.sites.matching(self.target) if (s.length or 0) >= self.minimum)

    def empty_reason(self, ctx: Context) -> str | None:
        if self._sites(ctx):
            return None
        return (f"{self.expression}: the canary run made no {self.target} call returning a list "
                f"of {self.minimum} or more items to {self.verb}")


class _ReorderSpace(_ListSpace):
    def __init__(self, target: str) -> None:
        super().__init__("P.reorder", target)
        self.expression = f"P.reorder({target!r})"

    def strategy(self, ctx: Context) -> Strategy:
        # the identity order changes nothing: not a perturbation worth a run
        return st.sampled_from(self._sites(ctx)).flatmap(
            lambda site: st.permutations(range(site.length or 0)).map(lambda o: Reorder(site, tuple(o)))
        ).filter(lambda r: r.size > 0)

    def sample(self, rng: random.Random, ctx: Context) -> Perturbation:
        site = rng.choice(self._sites(ctx))
        order = list(range(site.length or 0))
        while order == sorted(order):
            rng.shuffle(order)
        return Reorder(site, tuple(order))

    def probes(self, rng: random.Random, ctx: Context) -> list[Perturbation]:
        return [Reorder(site, tuple(reversed(range(site.length or 0)))) for site in self._sites(ctx)]


class _DropSpace(_ListSpace):
    minimum = 1
    verb = "drop"

    def __init__(self, target: str, max_items: int) -> None:
        super().__init__("P.drop", target)
        self.max_items = _count("P.drop", "max_items", max_items)
        self.expression = f"P.drop({target!r}" + (f", max_items={max_items})" if max_items != 1 else ")")

    def strategy(self, ctx: Context) -> Strategy:
        def drops(site: CallSite) -> Strategy:
            n = site.length or 0
            return st.lists(st.integers(0, n - 1), min_size=1, max_size=min(self.max_items, n), unique=True).map(
                lambda ix: Drop(site, tuple(sorted(ix))))
        return st.sampled_from(self._sites(ctx)).flatmap(drops)

    def sample(self, rng: random.Random, ctx: Context) -> Perturbation:
        site = rng.choice(self._sites(ctx))
        n = site.length or 0
        return Drop(site, tuple(sorted(rng.sample(range(n), rng.randint(1, min(self.max_items, n))))))

    def probes(self, rng: random.Random, ctx: Context) -> list[Perturbation]:
        return [Drop(site, (i,)) for site in self._sites(ctx) for i in range(site.length or 0)]


class _NoiseSpace(Space):
    needs_sites = True

    def __init__(self, target: str, fields: Any, scale: float) -> None:
        self.target = _target("P.noise", target)
        if fields is not None and (isinstance(fields, str) or not isinstance(fields, Iterable)
                                   or not all(isinstance(f, str) for f in fields) or not list(fields)):
            raise SearchError(f"P.noise: fields must be a non-empty list of field names (or None for every "
                              f"number), got {fields!r}")
        self.fields = None if fields is None else frozenset(fields)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale <= 10:
            raise SearchError(f"P.noise: scale must be a relative change in (0, 10], got {scale!r}")
        self.scale = float(scale)
        self.expression = (f"P.noise({target!r}" + (f", fields={sorted(self.fields)!r}" if self.fields else "")
                           + (f", scale={scale!r})" if scale != 0.5 else ")"))

    def _numbers(self, ctx: Context) -> tuple[tuple[CallSite, tuple[Any, ...]], ...]:
        return tuple((site, path) for site in ctx.sites.matching(self.target) for path in site.numbers
                     if self.fields is None or (path and path[-1] in self.fields))

    def empty_reason(self, ctx: Context) -> str | None:
        if self._numbers(ctx):
            return None
        which = f" in fields {sorted(self.fields)}" if self.fields else ""
        return f"{self.expression}: the canary run saw no number{which} in a {self.target} result"

    def strategy(self, ctx: Context) -> Strategy:
        factor = st.floats(-self.scale, self.scale, allow_nan=False).map(lambda f: round(f, 3))
        return st.builds(lambda sp, f: Noise(sp[0], sp[1], f), st.sampled_from(self._numbers(ctx)),
                         factor.filter(bool))

    def sample(self, rng: random.Random, ctx: Context) -> Perturbation:
        site, path = rng.choice(self._numbers(ctx))
        return Noise(site, path, round(rng.uniform(-self.scale, self.scale), 3) or self.scale)

    def probes(self, rng: random.Random, ctx: Context) -> list[Perturbation]:
        return [Noise(site, path, sign * self.scale) for site, path in self._numbers(ctx) for sign in (1, -1)]


class _FaultSpace(Space):
    def __init__(self, faults: Sequence[Any]) -> None:
        bad = [f for f in faults if not isinstance(f, Fault)]
        if not faults or bad:
            raise SearchError("P.fault: expected one or more faults (Timeout('tool:search'), Empty('retrieval:*') "
                              "...)" + (f", got {bad[0]!r}" if bad else ", got none"))
        self.faults = tuple(faults)
        self.expression = f"P.fault({', '.join(map(repr, self.faults))})"

    def strategy(self, ctx: Context) -> Strategy:
        return st.sampled_from(self.faults).map(FaultPerturbation)

    def sample(self, rng: random.Random, ctx: Context) -> Perturbation:
        return FaultPerturbation(rng.choice(self.faults))

    def probes(self, rng: random.Random, ctx: Context) -> list[Perturbation]:
        return [FaultPerturbation(f) for f in self.faults]


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


# -- the public namespace ---------------------------------------------------------------------------------


class P:
    """Constructors of perturbation spaces (``P.inject(...)``, ``P.one_of(...)`` ...)."""

    @staticmethod
    def typos(max_edits: int = 3) -> Space:
        """Up to ``max_edits`` character typos (delete, swap, double, replace) in the input."""
        return _TyposSpace(max_edits)

    @staticmethod
    def paraphrase(templates: Sequence[str]) -> Space:
        """The input said another way: each template holds ``{input}`` or replaces it whole."""
        return _ParaphraseSpace(templates)

    @staticmethod
    def distractor(texts: Sequence[str], target: str | None = None) -> Space:
        """Irrelevant text added to the input, or (``target="retrieval:*"``) to a boundary result."""
        return _DistractorSpace(texts, target)

    @staticmethod
    def inject(target: str, texts: Sequence[str] | None = None, *, max_points: int = 3,
               max_sentences: int = 3) -> Space:
        """Instructions (default: :func:`P.injections`) planted in up to ``max_points`` items of
        ``target`` results that the canary saw reach a model, up to ``max_sentences`` at each;
        the planted item is marked untrusted."""
        return _InjectSpace(target, texts, max_points, max_sentences)

    @staticmethod
    def injections(goal: str | None = None, styles: list[str] | None = None) -> tuple[str, ...]:
        """The built-in corpus of injection styles, aimed at ``goal``."""
        return injections(goal, styles) if goal is not None else injections(styles=styles)

    @staticmethod
    def reorder(target: str) -> Space:
        """A list result (retrieved documents, search hits) served in another order."""
        return _ReorderSpace(target)

    @staticmethod
    def drop(target: str, max_items: int = 1) -> Space:
        """Up to ``max_items`` items left out of a list result."""
        return _DropSpace(target, max_items)

    @staticmethod
    def noise(target: str, fields: Sequence[str] | None = None, scale: float = 0.5) -> Space:
        """A number in a result (only in ``fields``, if given) scaled by up to ±``scale``."""
        return _NoiseSpace(target, fields, scale)

    @staticmethod
    def fault(*faults: Fault) -> Space:
        """One of the given faults (:mod:`mattrace.faults`)."""
        return _FaultSpace(faults)

    @staticmethod
    def one_of(*spaces: Space) -> Space:
        """A perturbation from one of ``spaces``."""
        return _OneOf(_spaces("P.one_of", spaces))

    @staticmethod
    def all_of(*spaces: Space) -> Space:
        """One perturbation from each of ``spaces``, together."""
        return _AllOf(_spaces("P.all_of", spaces))

    @staticmethod
    def sequence(*spaces: Space, max_len: int = 3) -> Space:
        """One to ``max_len`` perturbations, each from one of ``spaces``."""
        return _Sequence(_spaces("P.sequence", spaces), max_len)

