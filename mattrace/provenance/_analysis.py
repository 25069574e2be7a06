"""Where each input value of a step came from: one incremental pass over the steps.

:class:`Provenance` observes the steps of a run in order. Each step's *outputs* are
indexed (who said them, and how much to trust that); each step's *input values* (every
argument leaf of a tool or memory write, an agent message's text) are looked up in what
came before. The result per value is a :class:`ValueOrigin`: its trust class and the
earlier steps it was found in, and how.

Cost: every lookup is a dictionary probe per identifier, per span start and per leaf, so
a step costs time linear in the text it reads and writes, whatever the run's length and
however alike the earlier outputs are: an index key keeps only the first step of each
trust class that produced it (which is all a verdict needs), never a list of every step.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mattrace.provenance._facts import (
    CALL_OUTPUTS,
    FACTS_CACHED_UP_TO,
    FACTS_KEPT,
    TextFacts,
    echoed,
    flatten,
)
from mattrace.provenance._text import (
    FIELD_MAX,
    SPAN,
    WEAK,
    Region,
    _prose,
    leaves,
    name_parts,
    names,
)
from mattrace.trace import Step, StepKind

__all__ = [
    "ANALYSED_KINDS",
    "Origin",
    "Provenance",
    "StepOrigins",
    "TrustClass",
    "ValueOrigin",
    "origins_of",
    "output_class",
]

TrustClass = Literal["user", "trusted", "untrusted", "mixed", "generated"]
"""``user``: the user said it; ``trusted``: a trusted tool, document or system prompt did;
``untrusted``: only untrusted content did; ``mixed``: parts of it each; ``generated``:
found nowhere (the model wrote it)."""

_Source = Literal["user", "trusted", "untrusted"]
_MIN_WHOLE = 3   # shorter values ("1", "ok") are found everywhere and prove nothing
_RANK = {"user": 0, "trusted": 1, "untrusted": 2}


@dataclass(frozen=True)
class Origin:
    """One place a value (or a part of it) was found: step ``step``'s output."""

    step: int
    trust: _Source
    how: Literal["whole", "span", "identifier", "name"]
    token: str
    """What matched: the identifier (``email:x@y.z``) or the start of the span or value."""
    region: Region
    where: str
    """Where in the output: the leaf's path (``result.body``, ``content``)."""


@dataclass(frozen=True)
class ValueOrigin:
    """An input value of a step and where it came from."""

    path: str
    """The argument it is (``to``, ``recipients[0]``, ``content``)."""
    value: str
    trust: TrustClass
    origins: tuple[Origin, ...]
    untrusted_parts: tuple[str, ...] = ()
    """Tokens of the value found only in untrusted content (empty unless untrusted or mixed)."""

    @property
    def instructed(self) -> bool:
        """Whether an untrusted-only part of the value was found in untrusted *text* (prose,
        where instructions live) rather than only as a field of an untrusted record."""
        return any(o.trust == "untrusted" and o.region == "text" and o.token in self.untrusted_parts
                   for o in self.origins)


@dataclass(frozen=True)
class StepOrigins:
    """The origins of every input value of one step."""

    index: int
    values: tuple[ValueOrigin, ...] = ()

    def of(self, path: str) -> ValueOrigin | None:
        """The origin of the argument ``path`` (``to``), or of its first element."""
        for v in self.values:
            if v.path == path or v.path.startswith(path + "[") or v.path.startswith(path + "."):
                return v
        return None


ANALYSED_KINDS = frozenset({StepKind.MESSAGE, StepKind.DELEGATE, StepKind.TOOL, StepKind.RETRIEVAL,
                            StepKind.MEMORY_READ, StepKind.MEMORY_WRITE})
"""The kinds of step that have input values or trusted outputs: :meth:`Provenance.observe`
leaves the analysis as it was on any other kind (an LLM call, a governance decision, the end)
and finds no input values in it."""


def output_class(step: Step) -> _Source | None:
    """How far to trust what a step produced, or None when it produced no evidence of its own
    (a model's answer, an agent's message: their text came from somewhere, or was generated).

    Labels the trace carries win: a source marked ``trusted=False`` makes the output untrusted.
    """
    kind = step.kind
    if kind is StepKind.MESSAGE:
        if step.agent == "user" or any(s.kind == "user" for s in step.sources):
            return "user"
        if step.agent == "system":
            return "trusted"
        return "untrusted" if any(not s.trusted for s in step.sources) else None
    if kind in CALL_OUTPUTS:
        for source in step.sources:
            if not source.trusted:
                return "untrusted"
        return "trusted"
    return None   # a fault step describes what was injected; the step it changed holds it


def _outputs(step: Step) -> Iterator[tuple[str, Any]]:
    if step.content:
        yield "content", step.content
    if step.result is not None and step.kind is not StepKind.END:
        yield "result", step.result


def _inputs(step: Step) -> Iterator[tuple[str, Any]]:
    """The input values whose origins are asked for: a tool's or memory write's arguments,
    an agent's message (not an LLM prompt: that is the context flow's business)."""
    if step.kind in (StepKind.TOOL, StepKind.MEMORY_WRITE, StepKind.RETRIEVAL) and step.args:
        for key, value in step.args.items():
            if not key.startswith("_"):
                yield key, value
    elif step.kind in (StepKind.MESSAGE, StepKind.DELEGATE) and step.content and output_class(step) is None:
        yield "content", step.content


@dataclass
class _Hits:
    """The first output of each trust class that holds one key (all a verdict needs)."""

    first: dict[tuple[_Source, Region], tuple[int, str]] = field(default_factory=dict)


def _new(table: dict[str, _Hits], token: str, key: tuple[_Source, Region]) -> bool:
    """Whether no output of class ``key`` holds ``token`` yet (:func:`_add` would record it)."""
    hits = table.get(token)
    return hits is None or key not in hits.first


def _add(table: dict[str, _Hits], token: str, key: tuple[_Source, Region], first: tuple[int, str],
         journal: list[tuple[dict[Any, Any], Any]] | None) -> bool:
    """Record that output ``first`` (step, where) holds ``token``, unless an earlier output of
    the same trust class and region did (then False); a key added is journalled while a
    snapshot is open."""
    hits = table.get(token)
    if hits is None:
        table[token] = _Hits({key: first})
        if journal is not None:
            journal.append((table, token))
        return True
    if key not in hits.first:
        hits.first[key] = first
        if journal is not None:
            journal.append((hits.first, key))
        return True
    return False


_GENERATIONS = itertools.count(1)
"""Stamps for the contents of an analysis's tables: never reused, so a stamp restored by
:meth:`Provenance.restore` cannot be mistaken for the contents of a step it forgot."""


class Provenance:
    """The origins of each step's input values, computed incrementally.

    Feed it the steps of one run in order with :meth:`observe`; it returns that step's
    :class:`StepOrigins` (judged against the steps before it) and then indexes the step's
    own outputs. Deterministic and free of I/O; not thread-safe (one per reader).
    """

    def __init__(self) -> None:
        self._ids: dict[str, _Hits] = {}
        self._spans: dict[str, _Hits] = {}
        self._whole: dict[str, _Hits] = {}
        self._written: dict[str, None] = {}   # memory keys this run wrote: reading them back is no new source
        self._names: dict[str, tuple[_Source, int]] = {}   # names the user or system prompt said
        self._journal: list[tuple[dict[Any, Any], Any]] | None = None   # keys added since a snapshot
        # a stamp of the tables' contents (a fresh number at each change, restored with them),
        # and the last input values judged at it: an action a guard judged before it ran is
        # then judged again, once recorded, for the price of comparing its arguments
        self._generation = 0
        self._untrusted = False   # some output indexed so far is untrusted: only then can a value be
        self._facts: dict[str, TextFacts] = {}
        self._memo: tuple[int, tuple[tuple[str, str], ...], tuple[ValueOrigin, ...]] | None = None

    def snapshot(self) -> tuple[int, int, bool]:
        """Start remembering what is added, so that :meth:`restore` can forget it again.

        What a guard needs to judge an action without committing it: the analysis only
        ever adds keys (the first output of each trust class holding a token), so undoing
        a step is deleting the keys it added, however long the run before it. Returns a
        token for :meth:`restore`; snapshots nest.
        """
        if self._journal is None:
            self._journal = []
        return (len(self._journal), self._generation, self._untrusted)

    def restore(self, token: tuple[int, int, bool]) -> None:
        """Forget everything observed since the :meth:`snapshot` that returned ``token``."""
        journal = self._journal
        assert journal is not None, "restore() without snapshot()"
        size, self._generation, self._untrusted = token
        while len(journal) > size:
            table, key = journal.pop()
            del table[key]
        if size == 0:
            self._journal = None

    def _changed(self) -> None:
        self._generation = next(_GENERATIONS)

    def _facts_of(self, text: str) -> TextFacts:
        """The :class:`TextFacts` of ``text``, kept for a short string (a pure function of the
        text, so no part of what :meth:`snapshot` saves)."""
        facts = self._facts.get(text)
        if facts is None:
            facts = TextFacts(text)
            if len(text) <= FACTS_CACHED_UP_TO:
                if len(self._facts) >= FACTS_KEPT:
                    self._facts.clear()   # a bound, not a policy: most strings recur close together
                self._facts[text] = facts
        return facts

    def observe(self, step: Step) -> StepOrigins:
        """The origins of ``step``'s input values; then remember its outputs (see :meth:`values`)."""
        return StepOrigins(step.index, self.values(step))

    def values(self, step: Step, *, only_untrusted: bool = False) -> tuple[ValueOrigin, ...]:
        """The origins of ``step``'s input values; then remember its outputs.

        A step whose input was copied from untrusted text (a search for the product an
        injected review named) produces output chosen by that text: its outputs are
        indexed as untrusted text too, so what the agent picks from them next is traced
        back to the instruction.

        Args:
            only_untrusted: the caller asks only about values that are ``untrusted`` or
                ``mixed`` (the data-flow contracts do). Until some untrusted output has
                been seen no value can be, so the values are not traced at all (and are
                not returned): the step costs the indexing of its own outputs.
        """
        values: tuple[ValueOrigin, ...] = ()
        steered = False
        if not only_untrusted or self._untrusted:
            pairs = tuple(pair for key, raw in _inputs(step) for pair in flatten(key, raw))
            memo = self._memo
            if memo is not None and memo[0] == self._generation and memo[1] == pairs:
                values = memo[2]
            elif pairs:
                values = tuple(self._value(path, value) for path, value in pairs)
                self._memo = (self._generation, pairs, values)
            steered = any(v.trust in ("untrusted", "mixed") and v.instructed
                          and any(not part.startswith(WEAK) for part in v.untrusted_parts) for v in values)
        if step.kind is StepKind.MEMORY_WRITE and step.target:
            if step.target not in self._written:
                self._written[step.target] = None
                self._changed()
                if self._journal is not None:
                    self._journal.append((self._written, step.target))
        elif not (step.kind is StepKind.MEMORY_READ and step.target in self._written):
            self._index(step, steered)
        return values

    # -- indexing -------------------------------------------------------------------------

    def _index(self, step: Step, steered: bool) -> None:
        """Remember a step's outputs, except what merely echoes its own inputs (a tool that
        returns the event it was given vouches for nothing it was told)."""
        trust = output_class(step)
        if trust is None or not (step.content or (step.result is not None and step.kind is not StepKind.END)):
            return   # nothing to remember (an action about to run has no result yet)
        echo = echoed(step, self._facts_of)
        journal = self._journal
        generation = self._generation
        if step.kind is StepKind.MESSAGE and trust != "untrusted" and step.content:
            said = self._names
            for name in names(step.content):
                if name not in said:
                    said[name] = (trust, step.index)
                    self._changed()
                    if journal is not None:
                        journal.append((said, name))
        if steered:
            trust = "untrusted"
        per_doc = _document_trust(step) if trust == "untrusted" and not steered else {}
        index = step.index
        for name, value in _outputs(step):
            if isinstance(value, str) and len(value) <= FIELD_MAX and "\n" not in value:
                # a short output is its own only leaf (as leaves() says), without building one
                parts: Iterable[tuple[str, Region, str]] = ((value, "text" if _prose(value) else "field", name),)
            else:
                parts = ((leaf.text, leaf.region, leaf.path) for leaf in leaves(value, name))
            for text, leaf_region, path in parts:
                leaf_trust = per_doc.get(path.split(".", 1)[0], trust) if per_doc else trust
                facts = self._facts_of(text)
                norm = facts.norm
                if not norm:
                    continue
                region: Region = "text" if steered else leaf_region
                key = (leaf_trust, region)
                first = (index, path)
                # what an earlier output of the same class already holds is skipped before
                # asking whether the step was given it (the echo is derived only if needed)
                added = False
                whole = self._whole
                if len(norm) <= 2 * SPAN and _new(whole, norm, key) and norm not in echo.whole:
                    added = _add(whole, norm, key, first, journal)
                ids = self._ids
                for token in facts.ids:
                    if _new(ids, token, key) and token not in echo.ids:
                        added = _add(ids, token, key, first, journal) or added
                spans = self._spans
                for piece in facts.pieces:
                    if _new(spans, piece, key) and piece not in echo.spans:
                        added = _add(spans, piece, key, first, journal) or added
                if added:
                    if self._generation == generation:
                        self._changed()
                    if leaf_trust == "untrusted":
                        self._untrusted = True

    # -- lookup ---------------------------------------------------------------------------

    def _named(self, token: str) -> list[Origin]:
        """The user's (or system prompt's) message that named whom ``token`` identifies: the
        user said "invite Alice", the agent found ``alice.miller@gmail.com`` in a listing."""
        for part in name_parts(token):
            said = self._names.get(part)
            if said is not None:
                trust, step = said
                return [Origin(step, trust, "name", token, "field", f"name:{part}")]
        return []

    def _value(self, path: str, value: str) -> ValueOrigin:
        facts = self._facts_of(value)
        norm = facts.norm
        parts: dict[str, list[Origin]] = {}
        whole = self._whole.get(norm) if len(norm) >= _MIN_WHOLE else None
        if whole is not None:
            parts[f"value:{norm[:40]}"] = _origins(whole, "whole", f"value:{norm[:40]}")
        tokens, named = facts.lookup(value)
        pieces = facts.pieces
        if named:   # the value *is* an address, a URL, an account: that decides
            whole, pieces = None, ()
            parts.clear()
        for token in sorted(tokens):
            hits = self._ids.get(token)
            if hits is None:
                continue
            found = _origins(hits, "identifier", token)
            if token.startswith("url:") and all(o.trust == "untrusted" for o in found):
                # same site as the user (or trusted data) named: a link within a site the user
                # sent the agent to is the user's choice, as the browser's same-origin rule has it
                site = self._ids.get("site:" + token[4:].split("/", 1)[0])
                vouched = [o for o in _origins(site, "identifier", token) if o.trust != "untrusted"] if site else []
                found = found + vouched
            if all(o.trust == "untrusted" for o in found):
                found = found + self._named(token)
            parts[token] = found
        if whole is None:
            for piece in pieces:
                hits = self._spans.get(piece)
                if hits is not None:
                    parts[f"span:{piece}"] = _origins(hits, "span", f"span:{piece}")
        return _judge(path, value, parts)


def _document_trust(step: Step) -> dict[str, _Source]:
    """Per item of a retrieval's result (``result[2]``), its own trust, where the sources
    name the documents: one untrusted forum post does not make the handbook beside it untrusted."""
    if step.kind is not StepKind.RETRIEVAL or not isinstance(step.result, list):
        return {}
    trusted_refs = {s.ref: s.trusted for s in step.sources if s.ref}
    out: dict[str, _Source] = {}
    for i, item in enumerate(step.result):
        ref = item.get("id") if isinstance(item, dict) else None
        if ref in trusted_refs and item.get("trusted", True) is not False:
            out[f"result[{i}]"] = "trusted" if trusted_refs[ref] else "untrusted"
    return out


def _origins(hits: _Hits, how: Literal["whole", "span", "identifier"], token: str) -> list[Origin]:
    return [Origin(step, trust, how, token, region, where)
            for (trust, region), (step, where) in sorted(hits.first.items(), key=lambda kv: kv[1][0])]


def _judge(path: str, value: str, parts: Mapping[str, list[Origin]]) -> ValueOrigin:
    """A value's trust class from its parts: a part is untrusted when only untrusted content
    holds it; the value is untrusted when its parts that were found are all so."""
    if not parts:
        return ValueOrigin(path, value, "generated", ())
    untrusted_only = [token for token, found in parts.items() if all(o.trust == "untrusted" for o in found)]
    vouched = [o for token, found in parts.items() for o in found if o.trust != "untrusted"]
    origins = tuple(sorted((o for found in parts.values() for o in found), key=lambda o: (o.step, o.token)))
    if untrusted_only and vouched:
        trust: TrustClass = "mixed"
    elif untrusted_only:
        trust = "untrusted"
    else:
        trust = "user" if any(o.trust == "user" for o in vouched) else "trusted"
    return ValueOrigin(path, value, trust, origins, tuple(untrusted_only))


def origins_of(steps: Iterable[Step]) -> list[StepOrigins]:
    """The origins of every step's input values (one pass; for a whole trace at once)."""
    analysis = Provenance()
    return [analysis.observe(s) for s in steps]
