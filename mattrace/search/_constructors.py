"""``P``: the constructors of perturbation spaces, the search's public vocabulary.

``P.inject(...)``, ``P.typos(...)``, ``P.one_of(...)`` ... each validate their arguments
when called and return a :class:`~mattrace.search.Space` whose repr is the call itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from mattrace.faults import Fault
from mattrace.search._boundary_spaces import _DropSpace, _FaultSpace, _InjectSpace, _NoiseSpace, _ReorderSpace
from mattrace.search._corpus import injections
from mattrace.search._input_spaces import _DistractorSpace, _ParaphraseSpace, _TyposSpace
from mattrace.search._space import Space, _AllOf, _OneOf, _Sequence, _spaces

__all__ = ["P"]


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
