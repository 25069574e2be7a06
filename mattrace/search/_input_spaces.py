"""Spaces over the run's input: typos, paraphrases, and distractor text.

A distractor may also go into a boundary result (``target="retrieval:*"``); it lives here
because its default, and the text handling it shares with the input, is the input's.
"""

from __future__ import annotations

import random
import string
from typing import Any

from hypothesis import strategies as st

from mattrace.search._perturbations import Distractor, Edit, Paraphrase, Perturbation, Typos, _sentences
from mattrace.search._sites import Point
from mattrace.search._space import Context, Space, Strategy, _count, _short, _target, _texts

_OPS = ("delete", "swap", "double", "replace")
_LETTERS = string.ascii_lowercase


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
