"""Spaces over what boundary calls return: planted instructions, reordered, dropped or noisy results, faults.

Each needs the canary run's call sites (``needs_sites``) except :class:`_FaultSpace`, whose
faults name their own targets.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from hypothesis import strategies as st

from mattrace.errors import SearchError
from mattrace.faults import Fault
from mattrace.search._corpus import injections
from mattrace.search._perturbations import Drop, FaultPerturbation, Inject, Noise, Perturbation, Reorder, combine
from mattrace.search._sites import CallSite, Point
from mattrace.search._space import Context, Space, Strategy, _count, _short, _target, _texts


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
