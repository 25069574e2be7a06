"""Factuality contracts: claims must cite what was retrieved, and unsupported claims must not spread.

A claim is ``{"text": ..., "cites": [doc ids]}`` in a message step's ``attrs["claims"]``
(``mattrace.message(..., claims=[...])``). Orchestrators that do not mark claims can plug
in an extractor; :func:`extract_claims` is the default one (sentences with citation markers
such as ``[kb-1]``, and sentences with numbers). A claim is *supported* when it cites at
least one document retrieved before it and every number in it appears in the cited text.

Agents write markdown: plans with headings, numbered and bulleted lists, code. A list
marker (``2.``) or a heading is no claim: taken for one, the bare number ``2`` would make
every later message that mentions a 2 "repeat" it. So the extractor reads the markdown's
structure first and only then splits prose into sentences.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from mattrace.contracts._contract import Contract, Monitor
from mattrace.contracts._verdict import Verdict
from mattrace.errors import ContractError
from mattrace.trace import Step, StepKind

__all__ = ["claims_supported", "extract_claims", "factuality_counts", "no_unsupported_propagation"]

Claim = dict[str, Any]
Extractor = Callable[[str], list[Claim]]

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_CITATION = re.compile(r"\[([A-Za-z0-9_.:#/-]+)\](?!\()")   # not a markdown link's text: [here](url)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[a-z0-9]+")
_LETTERS = re.compile(r"[^\W\d_]")   # a letter of any script: a sentence with none says nothing
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s|$)")
_UNDERLINE = re.compile(r"^\s{0,3}(=+|-+)\s*$")   # a setext heading's underline, or a rule
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_ITEM = re.compile(r"^\s*(?:>\s*)*(?:[-*+\u2022]|\(?\d{1,3}[.)]|\(?[a-z][)])(?:\s+|$)(?:\[[ xX]\]\s+)?")
_QUOTE = re.compile(r"^\s*(?:>\s*)+")
_TABLE = re.compile(r"^\s*\|")
_BOLD_LINE = re.compile(r"^(\*\*|__)[^*_]+\1\s*:?$")   # a line all in bold is a label, e.g. **Step 1:**
_LABEL = re.compile(r"^(?:step|phase|stage|part|task|item|option)\s+\d+[a-z]?\s*[:.)\-\u2013\u2014]+\s*", re.I)
_EMPHASIS = re.compile(r"\*\*|__")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_HOLE = re.compile(r"\x00(\d+)\x00")
_NON_CLAIM_AGENTS = frozenset({"user", "system"})
OVERLAP = 0.8
"""Share of a claim's words another message must contain to count as repeating it."""


def extract_claims(text: str) -> list[Claim]:
    """Sentences with content and a citation marker (``[kb-1]``) or a number, as claims citing those markers.

    The text is read as markdown first: headings (``## Plan``, underlined ones, lines all in
    bold), fenced code blocks and rules are no claims; list markers (``1.``, ``-``, ``a)``,
    ``- [ ]``), quote markers, step labels (``Step 2:``) and emphasis are taken off; a
    paragraph wrapped over several lines is one text. Then each block is split into
    sentences. A claim must have words (a bare ``2.`` has none), and a number inside a code
    span (an identifier, an argument) does not make a sentence a claim; the claim's text
    keeps its code spans as written.
    """
    claims = []
    for block in _blocks(text):
        prose, spans = _hide_code(block)   # a code span's dots end no sentence
        for sentence in _SENTENCE.split(prose):
            cites = _CITATION.findall(sentence)
            bare = _SPACE_BEFORE_PUNCT.sub(r"\1", _CITATION.sub("", sentence)).strip()
            outside_code = _HOLE.sub(" ", bare)
            if _LETTERS.search(outside_code) and (cites or _NUMBER.search(outside_code)):
                claims.append({"text": _show_code(bare, spans), "cites": cites})
    return claims


def _hide_code(block: str) -> tuple[str, list[str]]:
    """``block`` with each code span replaced by a numbered hole, and the spans."""
    spans: list[str] = []

    def hole(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"\x00{len(spans) - 1}\x00"

    return _CODE_SPAN.sub(hole, block), spans


def _show_code(text: str, spans: list[str]) -> str:
    """``text`` with its holes filled with the code spans again."""
    return _HOLE.sub(lambda m: spans[int(m.group(1))], text)


def _blocks(text: str) -> list[str]:
    """The prose blocks of markdown text: list items, paragraphs (lines joined), table rows."""
    blocks: list[str] = []
    current: list[str] = []
    fenced = False

    def close() -> None:
        if current:
            block = _EMPHASIS.sub("", " ".join(current)).strip()
            if block and not _BOLD_LINE.match(" ".join(current).strip()):
                blocks.append(block)
            current.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            close()
            fenced = not fenced
            continue
        if fenced:
            continue
        if not line.strip() or _HEADING.match(line):
            close()
            continue
        if current and _UNDERLINE.match(line):   # the paragraph above was a heading
            current.clear()
            continue
        if _RULE.match(line):
            close()
            continue
        if _TABLE.match(line):
            close()
            current.append(" | ".join(cell.strip() for cell in line.strip().strip("|").split("|")))
            close()
            continue
        item = _ITEM.match(line)
        if item:
            close()
            line = line[item.end():]
        else:
            line = _QUOTE.sub("", line)
        line = _LABEL.sub("", line.strip())
        if line:
            current.append(line)
    close()
    return blocks


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


class _Support:
    """What has been retrieved so far (doc id -> text and step), and how to judge a claim."""

    def __init__(self, extract: Extractor | None) -> None:
        self.docs: dict[str, tuple[int, str]] = {}
        self.extract = extract

    def forget_after(self, size: int) -> None:
        """Forget the documents learnt since there were ``size`` (only new ids are ever added)."""
        docs = self.docs
        while len(docs) > size:
            docs.popitem()

    def learn(self, s: Step) -> None:
        if s.kind is StepKind.RETRIEVAL and isinstance(s.result, list):
            for doc in s.result:
                if isinstance(doc, dict) and "id" in doc:
                    self.docs.setdefault(str(doc["id"]), (s.index, str(doc.get("text", ""))))

    def claims(self, s: Step) -> list[Claim]:
        if s.kind is not StepKind.MESSAGE:
            return []
        marked = s.attrs.get("claims")
        if marked is not None:
            if not isinstance(marked, list) or not all(isinstance(c, dict) and isinstance(c.get("text"), str)
                                                       for c in marked):
                raise ContractError(f'step {s.index}: attrs["claims"] must be a list of '
                                    '{"text": ..., "cites": [...]} objects')
            return marked
        if self.extract is None or s.agent in _NON_CLAIM_AGENTS or not s.content:
            return []
        return self.extract(s.content)

    def judge(self, claim: Claim) -> tuple[str | None, list[int]]:
        """None when supported, else why not; and the retrieval steps involved."""
        cites = [str(c) for c in claim.get("cites") or ()]
        if not cites:
            return "cites no source", []
        found = [self.docs[c] for c in cites if c in self.docs]
        if not found:
            return f"cites {', '.join(cites)}, which {'was' if len(cites) == 1 else 'were'} not retrieved before it", []
        steps = sorted({i for i, _ in found})
        missing = _numbers(claim["text"]) - _numbers(" ".join(text for _, text in found))
        if missing:
            return f"states {', '.join(sorted(missing))}, which the cited text does not contain", steps
        return None, steps


class ClaimsSupported(Contract):
    def __init__(self, extract: Extractor | None) -> None:
        self.extract = extract
        self._name = "claims supported"
        self._severity = "quality"

    def describe(self) -> str:
        return "claims_supported()"

    def monitor(self) -> Monitor:
        return _ClaimsMonitor(self)


class _ClaimsMonitor(Monitor):
    __slots__ = ("support",)

    def __init__(self, contract: ClaimsSupported) -> None:
        super().__init__(contract)
        self.support = _Support(contract.extract)
        self.kinds = frozenset((StepKind.RETRIEVAL, StepKind.MESSAGE))   # documents in, claims out

    def _save(self) -> Any:
        return len(self.support.docs)

    def _restore(self, state: Any) -> None:
        self.support.forget_after(state)

    def _step(self, s: Step) -> Verdict | None:
        self.support.learn(s)
        for claim in self.support.claims(s):
            why, steps = self.support.judge(claim)
            if why is not None:
                return self.failed(s.index, f"claim {_quote(claim['text'])} by {s.agent} at step {s.index} {why}",
                                   (*steps, s.index))
        return None


def _quote(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _resolve(extract: Extractor | bool | None) -> Extractor | None:
    if extract is True:
        return extract_claims
    if extract is None or extract is False:
        return None
    if not callable(extract):
        raise ContractError(f"extract= takes True, None or a callable(text) -> claims, got {extract!r}")
    return extract


def claims_supported(extract: Extractor | bool | None = None) -> Contract:
    """Every claim cites a document retrieved earlier, and the cited text holds its numbers.

    Args:
        extract: find claims in message text when ``attrs["claims"]`` is absent: ``True``
            for :func:`extract_claims`, or your own ``callable(text) -> claims``; ``None``
            (default) checks only the claims the orchestrator marked.
    """
    return ClaimsSupported(_resolve(extract))


class NoUnsupportedPropagation(Contract):
    def __init__(self, extract: Extractor | None) -> None:
        self.extract = extract
        self._name = "no unsupported propagation"
        self._severity = "quality"

    def describe(self) -> str:
        return "no_unsupported_propagation()"

    def monitor(self) -> Monitor:
        return _PropagationMonitor(self)


class _PropagationMonitor(Monitor):
    __slots__ = ("support", "unsupported")

    def __init__(self, contract: NoUnsupportedPropagation) -> None:
        super().__init__(contract)
        self.support = _Support(contract.extract)
        # (agent, step, claim text, its words, its numbers) of every unsupported claim so far
        self.unsupported: list[tuple[str, int, str, frozenset[str], set[str]]] = []
        self.kinds = frozenset((StepKind.RETRIEVAL, StepKind.MESSAGE, StepKind.DELEGATE))

    def _save(self) -> Any:
        return (len(self.support.docs), len(self.unsupported))

    def _restore(self, state: Any) -> None:
        docs, unsupported = state
        self.support.forget_after(docs)
        del self.unsupported[unsupported:]

    def _step(self, s: Step) -> Verdict | None:
        self.support.learn(s)
        if s.kind not in (StepKind.MESSAGE, StepKind.DELEGATE) or not s.content:
            return None
        own = self.support.claims(s)
        # each claim is judged once: the verdict decides both "backed here" and "unsupported"
        backed = [self.support.judge(c)[0] is None for c in own]
        supported_words = [_words(c["text"]) for c, ok in zip(own, backed, strict=True) if ok]
        if self.unsupported:
            words = _words(s.content)
            numbers = _numbers(s.content)
            for agent, index, text, claim_words, claim_numbers in self.unsupported:
                if agent == s.agent or not claim_words:
                    continue
                if len(claim_words & words) / len(claim_words) < OVERLAP or not claim_numbers <= numbers:
                    continue
                if any(len(claim_words & w) / len(claim_words) >= OVERLAP for w in supported_words):
                    continue   # repeated, but this time with a source that backs it
                return self.failed(s.index, f"{s.agent} repeats at step {s.index} the claim {_quote(text)} that "
                                            f"{agent} made without support at step {index}", (index, s.index))
        for claim, ok in zip(own, backed, strict=True):
            if not ok:
                self.unsupported.append((s.agent, s.index, claim["text"], _words(claim["text"]),
                                         _numbers(claim["text"])))
        return None


def no_unsupported_propagation(extract: Extractor | bool | None = None) -> Contract:
    """No agent passes on (by normalized word overlap) a claim another agent made without support.

    The claim must be marked (``attrs["claims"]``) or found by ``extract`` (as in
    :func:`claims_supported`); the message repeating it need not mark anything.
    """
    return NoUnsupportedPropagation(_resolve(extract))


def _repeats(claim_words: frozenset[str], claim_numbers: set[str], words: frozenset[str],
             numbers: set[str]) -> bool:
    return bool(claim_words) and len(claim_words & words) / len(claim_words) >= OVERLAP \
        and claim_numbers <= numbers


def factuality_of(steps: Iterable[Step], contracts: Iterable[Any]) -> dict[str, int] | None:
    """:func:`factuality_counts` with the claim extractor of the first claims contract among
    ``contracts``, or None when none judges claims (the run has no factuality to measure).

    Used where a checked run's results line is written (the pytest plugin, the results file
    of the store, ``compare``), so the factuality metrics count claims the way the run's own
    claims contract judges them.
    """
    for contract in contracts:
        if isinstance(contract, ClaimsSupported | NoUnsupportedPropagation):
            return factuality_counts(steps, contract.extract)
    return None


def factuality_counts(steps: Iterable[Step], extract: Extractor | bool | None = None) -> dict[str, int]:
    """How many claims a run made, how many were supported, how many unsupported ones spread.

    The contracts stop at the first bad claim (that is their verdict); the factuality
    metrics need the whole run, so this counts every claim. ``propagated`` counts the
    unsupported claims that another agent repeated later (by the rule of
    :func:`no_unsupported_propagation`), each claim once.
    """
    support = _Support(_resolve(extract))
    claims = supported = 0
    open_claims: list[tuple[str, frozenset[str], set[str]]] = []
    propagated = 0
    for s in steps:
        support.learn(s)
        if s.kind not in (StepKind.MESSAGE, StepKind.DELEGATE) or not s.content:
            continue
        own = support.claims(s)
        backed = [support.judge(c)[0] is None for c in own]
        if open_claims:
            words, numbers = _words(s.content), _numbers(s.content)
            backed_words = [_words(c["text"]) for c, ok in zip(own, backed, strict=True) if ok]
            spread = [c for c in open_claims
                      if c[0] != s.agent and _repeats(c[1], c[2], words, numbers)
                      and not any(_repeats(c[1], set(), w, set()) for w in backed_words)]
            if spread:
                propagated += len(spread)
                open_claims = [c for c in open_claims if c not in spread]
        claims += len(own)
        supported += sum(backed)
        open_claims += [(s.agent, _words(c["text"]), _numbers(c["text"]))
                        for c, ok in zip(own, backed, strict=True) if not ok]
    return {"claims": claims, "supported": supported, "propagated": propagated}
