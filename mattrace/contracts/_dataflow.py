"""Data-flow predicates: judged on where an action's argument *values* came from.

``reads`` edges say which outputs a step could have seen (its context); data flow says
which output a value was copied from (:mod:`mattrace.provenance`). An agent that read an
injected web page and then e-mailed the user as asked saw untrusted content, but the
address it wrote to came from the user; one that e-mailed the address the page named
copied it from untrusted text. The stock ``no_untrusted_action()`` judges by data.

Which arguments count: those that *select* what an action touches (whom it sends to,
which account it pays, which URL it calls, which file it writes). By default an argument
is a selector when its name says so (``to``, ``recipients``, ``url``, ``iban``, ``path``,
``*_id``, ...) or its whole value is an identifier (an e-mail address, a URL, an IBAN);
``selectors={"tool": ["arg", ...]}`` sets them per tool, and ``egress={...}`` names
arguments of tools that are not side effects but still send data out (the URL given to
``get_webpage``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mattrace.contracts._contract import Contract, Monitor, describe_step
from mattrace.contracts._past import Flows
from mattrace.contracts._predicates import (
    Evaluator,
    NameRef,
    Pred,
    _paren,
    _pred,
)
from mattrace.contracts._state import NO_SNAPSHOT, restore, restore_all, snapshot, snapshot_all
from mattrace.contracts._verdict import Verdict
from mattrace.errors import ContractError
from mattrace.provenance import ANALYSED_KINDS, Provenance, ValueOrigin, identifiers
from mattrace.trace import Step, StepKind

__all__ = ["DataFlows", "explain_selector", "SELECTOR_NAMES", "SelectorContract", "UntrustedSelector",
           "untrusted_selector"]

SELECTOR_NAMES = re.compile(
    r"^(?:\w+_)?(?:to|cc|bcc|recipients?|receivers?|payees?|emails?|email_address(?:es)?|address(?:es)?|"
    r"urls?|links?|uris?|domains?|hosts?|iban|ibans|accounts?|account_(?:number|id)s?|"
    r"(?:file_?)?paths?|files?|file_?names?|dirs?|director(?:y|ies)|destinations?|dest|targets?|"
    r"users?|user_?names?|owners?|owner_?names?|members?|participants?|collaborators?|invitees?|"
    r"phones?|phone_numbers?|channels?|repos?|repo_names?|repositor(?:y|ies)|ids?|"
    r"passwords?|passwd|pin|secrets?|tokens?|keys?)$",
    re.IGNORECASE)
"""Argument names that select what an action touches, or the credential it sets (the default
rule): ``to``, ``recipients``, ``url``, ``iban``, ``path``, ``repo_name``, ``new_owner_username``,
``ssh_key``, ``password``, any ``*_id``."""

_WHOLE_IDENTIFIER = ("email:", "url:", "account:", "phone:")


def _arg_name(path: str) -> str:
    """``recipients`` for ``recipients[0]``; ``to`` for ``message.to``."""
    return re.split(r"[.\[]", path.rsplit(".", 1)[-1], maxsplit=1)[0]


def _whole_identifier(value: str) -> bool:
    tokens = identifiers(value)
    strong = [t for t in tokens if t.startswith(_WHOLE_IDENTIFIER)]
    return bool(strong) and len(value.strip()) <= 2 + max(len(t.split(":", 1)[1]) for t in strong) + 12


class UntrustedSelector(Pred):
    """A step matching ``into`` whose selector arguments originate in untrusted content."""

    __slots__ = ("egress", "into", "selectors", "strict")
    compound = True

    def __init__(self, into: Pred, *, selectors: Mapping[str, Sequence[str]] | None = None,
                 egress: Mapping[str, Sequence[str]] | None = None, strict: bool = False) -> None:
        self.into = _pred(into, "untrusted_selector")
        self.selectors = _name_table(selectors, "selectors")
        self.egress = _name_table(egress, "egress")
        self.strict = strict

    @property
    def stateful(self) -> bool:
        return True

    def text(self) -> str:
        return f"{_paren(self.into)} with a selector argument from untrusted content"

    def names(self) -> tuple[NameRef, ...]:
        return self.into.names()

    def bind(self) -> Evaluator:
        return _BoundUntrustedSelector(self)


def _name_table(table: Mapping[str, Sequence[str]] | None, what: str) -> dict[str, frozenset[str]]:
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise ContractError(f"{what} must map tool names to argument names, got {table!r}")
    out: dict[str, frozenset[str]] = {}
    for tool, names in table.items():
        if isinstance(names, str) or not isinstance(names, Iterable):
            raise ContractError(f"{what}[{tool!r}] must be a list of argument names, got {names!r}")
        out[str(tool)] = frozenset(map(str, names))
    return out


class _BoundUntrustedSelector:
    __slots__ = ("analysis", "hit", "into", "last", "pred")

    def __init__(self, pred: UntrustedSelector) -> None:
        self.pred = pred
        self.into = pred.into.bind()
        self.analysis = Provenance()
        self.hit: ValueOrigin | None = None
        self.last: tuple[ValueOrigin, ...] = ()

    def __call__(self, s: Step) -> bool:
        values = self.analysis.values(s, only_untrusted=True)   # it asks about nothing else
        self.last = values
        self.hit = None
        is_egress = s.kind is StepKind.TOOL and s.target in self.pred.egress
        if not (self.into(s) or is_egress):
            return False
        for value in values:
            if value.trust not in ("untrusted", "mixed"):
                continue
            if not self._selects(s, value, is_egress):
                continue
            if self.pred.strict or value.instructed:
                self.hit = value
                return True
        return False

    def snapshot(self) -> Any:
        into = snapshot(self.into)
        return NO_SNAPSHOT if into is None else (into, self.analysis.snapshot(), self.hit, self.last)

    def restore(self, state: Any) -> None:
        into, analysis, self.hit, self.last = state
        self.analysis.restore(analysis)
        restore(self.into, into)

    def _selects(self, s: Step, value: ValueOrigin, is_egress: bool) -> bool:
        name = _arg_name(value.path)
        if is_egress and not self.into(s):
            return name in self.pred.egress[str(s.target)]
        chosen = self.pred.selectors.get(str(s.target))
        if chosen is not None:
            return name in chosen
        return bool(SELECTOR_NAMES.match(name)) or _whole_identifier(value.value)

    def witness(self) -> tuple[int, ...]:
        if self.hit is None:
            return ()
        return tuple(sorted({o.step for o in self.hit.origins
                             if o.trust == "untrusted" and o.token in self.hit.untrusted_parts}))

    def origin(self) -> ValueOrigin | None:
        """The argument that decided the last hit, with its origins (for a reason sentence)."""
        return self.hit


def untrusted_selector(into: Pred, *, selectors: Mapping[str, Sequence[str]] | None = None,
                       egress: Mapping[str, Sequence[str]] | None = None, strict: bool = False) -> Pred:
    """A step matching ``into`` (or an ``egress`` tool) one of whose selector arguments came
    from untrusted content: found there, and not in the user's words or trusted data.

    Args:
        selectors: per tool, the arguments that select what it touches (replaces the
            default rule for that tool).
        egress: per tool, arguments that send data out although the tool is no side effect.
        strict: also count values found only in untrusted *fields* (a record's sender or
            id), not only in untrusted text where instructions hide.
    """
    return UntrustedSelector(into, selectors=selectors, egress=egress, strict=strict)


class DataFlows(Flows):
    """``flows(src, into=dst, via="data")``: a ``dst`` step with an input value copied from the
    output of a ``src`` step (found there and in no user or trusted text). The same operands
    as the context flow; only how a step is reached differs."""

    __slots__ = ()

    def text(self) -> str:
        return f"{_paren(self.dst)} with data from {_paren(self.src)}"

    def bind(self) -> Evaluator:
        return _BoundDataFlows(self.src.bind(), self.dst.bind())


class _BoundDataFlows:
    __slots__ = ("analysis", "dst", "found", "sources", "src")

    def __init__(self, src: Evaluator, dst: Evaluator) -> None:
        self.src, self.dst = src, dst
        self.analysis = Provenance()
        self.sources: dict[int, None] = {}   # ordered: what a step adds is the last key
        self.found: tuple[int, ...] = ()

    def __call__(self, s: Step) -> bool:
        values = self.analysis.values(s, only_untrusted=True)   # it asks about nothing else
        is_src, is_dst = self.src(s), self.dst(s)
        self.found = ()
        if is_dst and self.sources:
            from_src = sorted({o.step for v in values if v.trust in ("untrusted", "mixed")
                               for o in v.origins if o.step in self.sources and o.token in v.untrusted_parts})
            self.found = tuple(from_src)
        if is_src:
            self.sources[s.index] = None
        return bool(self.found)

    def snapshot(self) -> Any:
        states = snapshot_all(self.src, self.dst)
        if states is None:
            return NO_SNAPSHOT
        return (states, self.analysis.snapshot(), len(self.sources), self.found)

    def restore(self, state: Any) -> None:
        states, analysis, size, self.found = state
        self.analysis.restore(analysis)
        restore_all((self.src, self.dst), states)
        sources = self.sources
        while len(sources) > size:
            sources.popitem()

    def witness(self) -> tuple[int, ...]:
        return self.found


class SelectorContract(Contract):
    """``never(untrusted_selector(...))`` whose violation names the argument, the value, the
    step it came from and where in that step's output it was found."""

    def __init__(self, pred: UntrustedSelector) -> None:
        self.pred = pred

    def describe(self) -> str:
        return f"never({self.pred.text()})"

    def monitor(self) -> Monitor:
        return _SelectorMonitor(self)


class _SelectorMonitor(Monitor):
    __slots__ = ("contract", "ev")

    def __init__(self, contract: SelectorContract) -> None:
        super().__init__(contract)
        self.contract = contract
        self.ev = _BoundUntrustedSelector(contract.pred)
        self.kinds = ANALYSED_KINDS

    def _save(self) -> Any:
        return self.ev.snapshot()

    def _restore(self, state: Any) -> None:
        self.ev.restore(state)

    def _step(self, s: Step) -> Verdict | None:
        if not self.ev(s):
            return None
        value = self.ev.origin()
        assert value is not None
        witness = (*self.ev.witness(), s.index)
        return self.failed(s.index, explain_selector(s, value), witness)


def explain_selector(s: Step, value: ValueOrigin) -> str:
    """One sentence: which argument of which action came from which untrusted output, where."""
    found = [o for o in value.origins if o.trust == "untrusted" and o.token in value.untrusted_parts]
    first = min(found, key=lambda o: o.step) if found else None
    shown = value.value if len(value.value) <= 60 else value.value[:57] + "..."
    where = (f" from step {first.step} ({first.where}, {first.how} {first.token.split(':', 1)[0]} match)"
             if first is not None else "")
    return (f"{describe_step(s)} at step {s.index}: argument {value.path}={shown!r} came from untrusted "
            f"content{where} and from no user or trusted text")
