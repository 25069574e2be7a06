"""The context flow: which earlier outputs each step's inputs held, inferred from the text.

Taint contracts ("no action after untrusted text reached the context") follow ``reads``
edges, and most orchestrators never say which earlier output went into a prompt or a tool
argument. They do copy the text: a retrieved passage appears verbatim in the next prompt,
a tool's result in the conversation the model is sent next, an LLM answer in the e-mail
body. A trace records the edges someone stated (explicit ``reads``: a tool call's edge to
the model call that requested it, a memory read's to the write it returns, a step's
``reads=[...]``); this module infers the rest, at analysis time, so recording pays nothing
for it and a better analysis applies to old traces too.

The rule: step *j* reads step *i* < *j* when one of *i*'s **fragments** occurs in *j*'s
input text. A fragment is a string of *i*'s output (its content, each string inside its
result), stripped, of at least :data:`MIN_FRAGMENT` characters; each step contributes its
:data:`MAX_FRAGMENTS` longest (the longest first, equal lengths in text order). Outputs come
from messages, delegations, LLM calls, tools, retrievals and memory reads; inputs are
searched for messages, delegations, LLM calls (not their list of offered tools: a tool
named like an earlier output must not link the two), tools and memory writes. This is what
the recorder of earlier versions wrote into ``reads`` as it recorded, so such a trace is
analysed the same way: its inferred edges count as explicit ones, and are found again.

Cost: fragments are kept in a radix tree whose first level is keyed by their first
:data:`MIN_FRAGMENT` characters. A step's input is scanned once: one dictionary probe per
character, and where an indexed fragment starts there, a walk down the tree comparing whole
edge labels (``str.startswith``). Outputs that share a long prefix (templated records) share
the path down to where they differ instead of filling one bucket that every probe scans, so
a step costs time linear in its input text, plus the edges it returns, whatever the run's
length and however alike the outputs. Trade-off, said out loud: strings shorter than
:data:`MIN_FRAGMENT` characters never link (they would link everything), and a step with
many long strings links through its :data:`MAX_FRAGMENTS` longest only.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mattrace.trace import Step, StepKind

__all__ = [
    "ContextFlow",
    "context_reads",
    "fragments",
    "haystack",
    "MAX_FRAGMENTS",
    "MIN_FRAGMENT",
    "StepReads",
    "text_leaves",
]

MIN_FRAGMENT = 12
"""Characters a string of an output needs before containing it links two steps."""
MAX_FRAGMENTS = 8
"""Strings of one step's output that are indexed (its longest)."""

_READERS = frozenset({StepKind.MESSAGE, StepKind.DELEGATE, StepKind.LLM, StepKind.TOOL, StepKind.MEMORY_WRITE})
_PRODUCERS = frozenset({StepKind.MESSAGE, StepKind.DELEGATE, StepKind.LLM, StepKind.TOOL,
                        StepKind.RETRIEVAL, StepKind.MEMORY_READ})


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


def fragments(step: Step) -> list[str]:
    """The strings of ``step``'s output that a later input must contain to read it (none for
    a step whose kind produces no readable output)."""
    if step.kind not in _PRODUCERS:
        return []
    found = {s.strip() for o in (step.content, step.result) for s in text_leaves(o)}
    kept = sorted((f for f in found if len(f) >= MIN_FRAGMENT), key=lambda f: (-len(f), f))
    return kept[:MAX_FRAGMENTS]


def haystack(step: Step) -> str:
    """The input text of ``step`` searched for earlier outputs ("" for a step that reads none):
    its content and the strings of its arguments, one per line."""
    if step.kind not in _READERS:
        return ""
    args = step.args
    if step.kind is StepKind.LLM and args and "tools" in args:
        args = {k: v for k, v in args.items() if k != "tools"}
    return "\n".join(text_leaves([step.content, args]))


class _Node:
    """A radix-tree node: the fragment text from its parent down to it, the steps whose
    fragment ends exactly here (in order), and its children by their label's first character."""

    __slots__ = ("children", "label", "steps")

    def __init__(self, label: str, steps: list[int], children: dict[str, _Node] | None = None) -> None:
        self.label = label
        self.steps = steps
        self.children = children if children is not None else {}


def _common(a: str, b: str) -> int:
    """Length of the common prefix of ``a`` and ``b`` (by halving, in C-speed comparisons)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class _Trie:
    """The fragments of the outputs indexed so far. Not thread-safe."""

    __slots__ = ("roots", "visits")

    def __init__(self) -> None:
        self.roots: dict[str, _Node] = {}
        self.visits = 0   # nodes a lookup entered: what the cost test counts

    def add(self, fragment: str, step: int) -> None:
        key, rest = fragment[:MIN_FRAGMENT], fragment[MIN_FRAGMENT:]
        node = self.roots.get(key)
        if node is None:
            self.roots[key] = _Node(rest, [step])
            return
        while True:
            shared = _common(node.label, rest)
            if shared < len(node.label):   # split: the node keeps the shared part
                tail = _Node(node.label[shared:], node.steps, node.children)
                node.label, node.steps, node.children = node.label[:shared], [], {tail.label[0]: tail}
            rest = rest[shared:]
            if not rest:
                if not node.steps or node.steps[-1] != step:
                    node.steps.append(step)
                return
            child = node.children.get(rest[0])
            if child is None:
                node.children[rest[0]] = _Node(rest, [step])
                return
            node = child

    def found_in(self, text: str, found: set[int], before: int | None) -> None:
        """Add to ``found`` the steps (below ``before``, when given) with a fragment in ``text``."""
        roots = self.roots
        if not roots:
            return
        lookup = roots.get
        end = len(text)
        seen: set[int] = set()
        for start in range(end - MIN_FRAGMENT + 1):
            node = lookup(text[start:start + MIN_FRAGMENT])
            at = start + MIN_FRAGMENT
            while node is not None:
                self.visits += 1
                label = node.label
                if label:
                    if not text.startswith(label, at):
                        break
                    at += len(label)
                if node.steps and id(node) not in seen:
                    seen.add(id(node))
                    found.update(node.steps if before is None else (s for s in node.steps if s < before))
                node = node.children.get(text[at]) if at < end and node.children else None


@dataclass(frozen=True)
class StepReads:
    """What one step read: the edges its trace records and those its input text shows."""

    index: int
    explicit: tuple[int, ...] = ()
    """The step's recorded ``reads`` (facts; in traces of earlier versions, inferred ones too)."""
    inferred: tuple[int, ...] = ()
    """Earlier steps whose output its input contained, and that are not already explicit."""

    @property
    def reads(self) -> tuple[int, ...]:
        """Explicit and inferred edges together, in order: the context flow."""
        return tuple(sorted({*self.explicit, *self.inferred}))


class ContextFlow:
    """The context flow of a run, computed incrementally.

    Feed it the steps of one run in order with :meth:`observe`; it returns what that step
    read (judged against the steps before it) and then indexes the step's own output.
    Deterministic and free of I/O; not thread-safe (one per reader). A deep copy is cheap:
    it reads the index built so far (as of the copy: what the original adds later is not
    seen) and indexes what it observes afterwards on its own, so a guard can try a step out
    on a copy without copying the run.
    """

    def __init__(self) -> None:
        self._own = _Trie()
        self._frozen: tuple[tuple[_Trie, int], ...] = ()   # shared indexes and the steps they were copied at
        self._next = 0

    def observe(self, step: Step) -> StepReads:
        """What ``step`` read; then remember its output."""
        explicit = tuple(sorted(set(step.reads)))
        found: set[int] = set()
        text = haystack(step)
        if len(text) >= MIN_FRAGMENT:
            for trie, limit in self._frozen:
                trie.found_in(text, found, limit)
            self._own.found_in(text, found, None)
        found.discard(step.index)
        found.difference_update(explicit)
        for fragment in fragments(step):
            self._own.add(fragment, step.index)
        self._next = max(self._next, step.index + 1)
        return StepReads(step.index, explicit, tuple(sorted(r for r in found if r < step.index)))

    @property
    def visits(self) -> int:
        """Index nodes the lookups so far entered (their cost, apart from one probe per character)."""
        return self._own.visits + sum(trie.visits for trie, _ in self._frozen)

    def snapshot(self) -> tuple[Any, ...]:
        """A token for :meth:`restore`: what it takes to forget every step observed after now.

        Constant work, like a deep copy: the index built so far is frozen (read up to now)
        and later steps go to a fresh one, which :meth:`restore` drops.
        """
        saved = (self._own, self._frozen, self._next, self._own.visits,
                 tuple(trie.visits for trie, _ in self._frozen))
        self._frozen = (*self._frozen, (self._own, self._next))
        self._own = _Trie()
        return saved

    def restore(self, state: tuple[Any, ...]) -> None:
        """Back to the moment :meth:`snapshot` returned ``state`` (lookup counts included)."""
        self._own, self._frozen, self._next, visits, frozen_visits = state
        self._own.visits = visits
        for (trie, _), count in zip(self._frozen, frozen_visits, strict=True):
            trie.visits = count

    def __deepcopy__(self, memo: dict[int, Any]) -> ContextFlow:
        twin = copy.copy(self)
        twin._frozen = (*self._frozen, (self._own, self._next))
        twin._own = _Trie()   # the copy reads this index only up to now, and adds to its own
        return twin


def context_reads(steps: Iterable[Step]) -> list[StepReads]:
    """What every step of a run read: its recorded edges and those inferred (one pass)."""
    flow = ContextFlow()
    return [flow.observe(s) for s in steps]
