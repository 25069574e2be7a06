"""Perturbations: concrete, printable, comparable changes to one run.

A search draws these from a :class:`~mattrace.search.Space`. Each says what it does to
the run's input text (:meth:`Perturbation.edit_input`) and which boundary effects it
injects (:meth:`Perturbation.faults`), and has a :attr:`~Perturbation.size`: the number of
atomic edits, so "fewer, smaller edits" is a number a reader and a shrinker agree on.
Frozen dataclasses, so equal perturbations hash alike and a search never pays twice for
the same one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mattrace.faults import Fault
from mattrace.search._effects import (
    DroppedItems,
    NudgedNumber,
    PlantedDistractor,
    PlantedInstruction,
    ReorderedItems,
)
from mattrace.search._sites import CallSite, Item, Point

__all__ = [
    "combine",
    "Combined",
    "Distractor",
    "Drop",
    "Edit",
    "FaultPerturbation",
    "Inject",
    "Noise",
    "Paraphrase",
    "Perturbation",
    "Reorder",
    "Typos",
]


class Perturbation:
    """Base of every perturbation: identity on the input, no boundary effects, size 1."""

    @property
    def size(self) -> int:
        return 1

    def edit_input(self, text: str) -> str:
        return text

    def faults(self) -> tuple[Fault, ...]:
        return ()

    @property
    def touches_input(self) -> bool:
        return False

    def order_key(self) -> tuple[int, int]:
        """Smaller is simpler: fewer edits first, then less text."""
        return (self.size, len(str(self)))

    def parts(self) -> tuple[Perturbation, ...]:
        return (self,)


def _quote(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


# -- input perturbations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """One typo: at ``position`` (clamped to the text), ``op`` = delete, swap, double or replace."""

    position: int
    op: str
    char: str = ""

    def apply(self, text: str) -> str:
        if not text:
            return text
        i = min(self.position, len(text) - 1)
        if self.op == "delete":
            return text[:i] + text[i + 1:]
        if self.op == "swap" and i + 1 < len(text):
            return text[:i] + text[i + 1] + text[i] + text[i + 2:]
        if self.op == "double":
            return text[:i + 1] + text[i:]
        if self.op == "replace":
            return text[:i] + (self.char or text[i]) + text[i + 1:]
        return text

    def __str__(self) -> str:
        return f"{self.op}@{self.position}" + (f"={self.char!r}" if self.op == "replace" else "")


@dataclass(frozen=True)
class Typos(Perturbation):
    """Character-level typos in the input (applied right to left, so each position means the
    original text's)."""

    edits: tuple[Edit, ...]

    @property
    def size(self) -> int:
        return len(self.edits)

    @property
    def touches_input(self) -> bool:
        return True

    def edit_input(self, text: str) -> str:
        for edit in sorted(self.edits, key=lambda e: -e.position):  # right to left: positions stay valid
            text = edit.apply(text)
        return text

    def __str__(self) -> str:
        return f"typos({', '.join(map(str, self.edits))})"


@dataclass(frozen=True)
class Paraphrase(Perturbation):
    """The input said another way: ``template`` with ``{input}``, or a whole replacement text."""

    template: str

    @property
    def touches_input(self) -> bool:
        return True

    def edit_input(self, text: str) -> str:
        return self.template.replace("{input}", text) if "{input}" in self.template else self.template

    def __str__(self) -> str:
        return f"paraphrase {_quote(self.template)}"


def _sentences(text: str) -> list[str]:
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch in ".!?\n" and (i + 1 == len(text) or text[i + 1] in " \n"):
            out.append(text[start:i + 1])
            start = i + 1
    if start < len(text):
        out.append(text[start:])
    return out


@dataclass(frozen=True)
class Distractor(Perturbation):
    """Irrelevant text: in the input after sentence ``position``, or in a boundary result at ``point``."""

    text: str
    position: int = 0
    point: Point | None = None

    @property
    def touches_input(self) -> bool:
        return self.point is None

    def edit_input(self, text: str) -> str:
        if self.point is not None:
            return text
        parts = _sentences(text)
        cut = min(self.position, len(parts))
        before, after = "".join(parts[:cut]), "".join(parts[cut:])
        return " ".join(p for p in (before.rstrip(), self.text, after.lstrip()) if p)

    def faults(self) -> tuple[Fault, ...]:
        if self.point is None:
            return ()
        p = self.point
        return (PlantedDistractor(p.pattern(), on_call=p.call, item=p.item, text=self.text),)

    def __str__(self) -> str:
        where = f"into {self.point}" if self.point else f"after input sentence {self.position}"
        return f"distractor {_quote(self.text)} {where}"


# -- boundary perturbations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inject(Perturbation):
    """Instructions planted in boundary results, one sentence per point, marked untrusted."""

    plants: tuple[tuple[Point, str], ...]

    @property
    def size(self) -> int:
        return len(self.plants)

    def faults(self) -> tuple[Fault, ...]:
        return tuple(PlantedInstruction(p.pattern(), on_call=p.call, item=p.item, text=text)
                     for p, text in self.plants)

    def parts(self) -> tuple[Perturbation, ...]:
        return tuple(Inject((plant,)) for plant in self.plants)

    def __str__(self) -> str:
        return "; ".join(f"inject {_quote(text)} into {p}" for p, text in self.plants)


@dataclass(frozen=True)
class Reorder(Perturbation):
    """A list result served in another order (``order[i]``: the old index of the new i-th item)."""

    site: CallSite
    order: tuple[int, ...]

    @property
    def size(self) -> int:
        return sum(1 for i, j in enumerate(self.order) if i != j)

    def faults(self) -> tuple[Fault, ...]:
        return (ReorderedItems(self.site.pattern(), on_call=self.site.call, order=self.order),)

    def __str__(self) -> str:
        return f"reorder {self.site} to {list(self.order)}"


@dataclass(frozen=True)
class Drop(Perturbation):
    """Items left out of a list result."""

    site: CallSite
    indices: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.indices)

    def faults(self) -> tuple[Fault, ...]:
        return (DroppedItems(self.site.pattern(), on_call=self.site.call, indices=self.indices),)

    def __str__(self) -> str:
        return f"drop items {list(self.indices)} of {self.site}"


@dataclass(frozen=True)
class Noise(Perturbation):
    """A number in a result scaled by ``1 + factor``."""

    site: CallSite
    path: tuple[Item, ...]
    factor: float

    def faults(self) -> tuple[Fault, ...]:
        return (NudgedNumber(self.site.pattern(), on_call=self.site.call, path=self.path, factor=self.factor),)

    def order_key(self) -> tuple[int, int]:
        return (self.size, round(abs(self.factor) * 1e6))

    def __str__(self) -> str:
        where = "".join(f"[{p!r}]" for p in self.path)
        return f"noise {self.factor:+.1%} on {self.site} result{where}"


@dataclass(frozen=True)
class FaultPerturbation(Perturbation):
    """One fault from :mod:`mattrace.faults`."""

    fault: Fault

    def faults(self) -> tuple[Fault, ...]:
        return (self.fault,)

    def __str__(self) -> str:
        return f"fault {self.fault}"


@dataclass(frozen=True)
class Combined(Perturbation):
    """Several perturbations of one run, applied in order."""

    items: tuple[Perturbation, ...]

    @property
    def size(self) -> int:
        return sum(p.size for p in self.items)

    @property
    def touches_input(self) -> bool:
        return any(p.touches_input for p in self.items)

    def edit_input(self, text: str) -> str:
        for p in self.items:
            text = p.edit_input(text)
        return text

    def faults(self) -> tuple[Fault, ...]:
        return tuple(f for p in self.items for f in p.faults())

    def order_key(self) -> tuple[int, int]:
        return (self.size, sum(p.order_key()[1] for p in self.items))

    def parts(self) -> tuple[Perturbation, ...]:
        return tuple(q for p in self.items for q in p.parts())

    def __str__(self) -> str:
        return " + ".join(str(p) for p in self.items) or "nothing"



def combine(parts: Iterable[Perturbation]) -> Perturbation:
    """One perturbation from atoms, in a canonical form: the plants of every ``Inject`` merged
    (sorted, each once) where the first stood, the rest in order, a single part unwrapped.
    Equal sets of edits so compare (and are paid for) as one perturbation."""
    out: list[Perturbation] = []
    plants: list[tuple[Point, str]] = []
    at = -1
    for part in (q for p in parts for q in p.parts()):
        if isinstance(part, Inject):
            if at < 0:
                at = len(out)
                out.append(part)
            plants.extend(pl for pl in part.plants if pl not in plants)
        else:
            out.append(part)
    if at >= 0:
        out[at] = Inject(tuple(sorted(plants, key=lambda pl: (pl[0].sort_key(), pl[1]))))
    return out[0] if len(out) == 1 else Combined(tuple(out))
