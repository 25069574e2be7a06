"""The ``step`` namespace: the library's step predicates (kind, agent, tool, arguments, text ...).

Each builds a :class:`~mattrace.contracts._predicates._Leaf`, a plain function of one step
with the text it prints as, the names it mentions (for the vacuity check) and the kinds of
step it can hold on (``step.tool(...)`` holds only on tool steps).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Collection, Iterable
from typing import Any

from mattrace.contracts._predicates import NameField, NameRef, Pred, _Leaf, _Where
from mattrace.contracts._regex import LinearPattern, Regex, compile_linear
from mattrace.errors import ContractError
from mattrace.trace import Step, StepKind

__all__ = ["NameSpec", "StepNamespace", "step"]


NameSpec = str | Collection[str] | re.Pattern[str]


def _compile_regex(pattern: str | Regex, what: str) -> Regex:
    """A pattern given as text compiled for linear-time matching (RE2); a compiled one as given."""
    if isinstance(pattern, re.Pattern | LinearPattern):
        return pattern
    if not isinstance(pattern, str):
        raise ContractError(f"{what}: expected a regular expression, got {pattern!r}")
    try:
        return compile_linear(pattern)
    except ContractError as exc:
        raise ContractError(f"{what}: {exc}") from None


def _name_matcher(spec: NameSpec, what: str) -> tuple[Callable[[str | None], bool], str]:
    """Match a name exactly, by glob (``send_*``), from a set, or by regex (re.search)."""
    if isinstance(spec, re.Pattern):
        rx = spec
        return (lambda v: v is not None and rx.search(v) is not None), f"{what} matching /{rx.pattern}/"
    if isinstance(spec, str):
        if any(c in spec for c in "*?["):
            rx = re.compile(fnmatch.translate(spec))
            return (lambda v: v is not None and rx.match(v) is not None), f"{what} {spec}"
        name = spec
        return (lambda v: v == name), f"{what} {name}"
    if isinstance(spec, Collection) and all(isinstance(x, str) for x in spec) and spec:
        names = frozenset(spec)
        return (lambda v: v in names), f"{what} in {{{', '.join(sorted(names))}}}"
    raise ContractError(f"step.{what}(...) takes a name, a non-empty set of names or a compiled regex; got {spec!r}")


def _name_refs(spec: NameSpec, field: NameField) -> tuple[NameRef, ...]:
    """The names ``spec`` mentions, one :class:`NameRef` each (a set's members one by one:
    a typo in one of them is still a typo). ``spec`` has passed :func:`_name_matcher`."""
    if isinstance(spec, re.Pattern):
        rx = spec
        return (NameRef(field, f"/{rx.pattern}/", lambda v: v is not None and rx.search(v) is not None),)
    if isinstance(spec, str):
        match, _ = _name_matcher(spec, field)
        exact = not any(c in spec for c in "*?[")
        return (NameRef(field, repr(spec), match, spec if exact else None),)
    return tuple(ref for name in sorted(spec) for ref in _name_refs(name, field))


_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False, default=str)


def _text_of(value: Any) -> str:
    """An argument as text: strings as they are, anything else as (non-ASCII-escaping) JSON."""
    return value if isinstance(value, str) else _JSON.encode(value)


def _search_leaves(rx: Regex, value: Any) -> bool:
    """True when some text inside ``value`` (a string, number, or one nested in lists and dicts) matches.

    Searching the leaves rather than a JSON dump is faster and matches what people mean by
    "the tool output says …": no JSON escaping of quotes, newlines or non-ASCII text.
    """
    if isinstance(value, str):
        return rx.search(value) is not None
    if isinstance(value, dict):
        return any(_search_leaves(rx, v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_search_leaves(rx, v) for v in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return rx.search(str(value)) is not None
    return False


class _Arg:
    """``step.arg(name)``: constraints on one argument of a call."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ContractError(f"step.arg(...) takes an argument name, got {name!r}")
        self._name = name

    def _leaf(self, test: Callable[[Any], bool], text: str, missing: bool = False) -> Pred:
        name = self._name

        def check(s: Step) -> bool:
            args = s.args
            if args is None or name not in args:
                return missing
            return test(args[name])

        return _Leaf(check, f"arg {name} {text}")

    def eq(self, value: Any) -> Pred:
        """The argument equals ``value``."""
        return self._leaf(lambda v: bool(v == value), f"== {value!r}")

    def matches(self, pattern: str | Regex) -> Pred:
        """The argument's text (JSON for non-strings) contains a match of ``pattern``."""
        rx = _compile_regex(pattern, f"step.arg({self._name!r}).matches")
        return self._leaf(lambda v: rx.search(_text_of(v)) is not None, f"matching /{rx.pattern}/")

    def not_matches(self, pattern: str | Regex) -> Pred:
        """The argument is absent or its text has no match of ``pattern``."""
        rx = _compile_regex(pattern, f"step.arg({self._name!r}).not_matches")
        return self._leaf(lambda v: rx.search(_text_of(v)) is None, f"not matching /{rx.pattern}/", missing=True)

    def in_(self, values: Iterable[Any]) -> Pred:
        """The argument is one of ``values``."""
        allowed = list(values)
        return self._leaf(lambda v: v in allowed, f"in {allowed!r}")


class _Text:
    """``step.content`` / ``step.result``: regex over a step's text."""

    __slots__ = ("_field",)

    def __init__(self, field: str) -> None:
        self._field = field

    def matches(self, pattern: str | Regex) -> Pred:
        """Some text of the field (for structured results: any string or number in it) matches ``pattern``."""
        rx = _compile_regex(pattern, f"step.{self._field}.matches")
        field = self._field

        def check(s: Step) -> bool:
            return _search_leaves(rx, getattr(s, field))

        return _Leaf(check, f"{field} matching /{rx.pattern}/")


def _kinds(kinds: Iterable[str | StepKind]) -> frozenset[StepKind]:
    out = set()
    for k in kinds:
        try:
            out.add(StepKind(k))
        except ValueError:
            known = ", ".join(m.value for m in StepKind)
            raise ContractError(f"unknown step kind {k!r}; known kinds: {known}") from None
    if not out:
        raise ContractError("step.kind(...) needs at least one kind")
    return frozenset(out)


class StepNamespace:
    """The ``step`` object: builds predicates over one step."""

    __slots__ = ()

    content = _Text("content")
    result = _Text("result")

    def kind(self, *kinds: str | StepKind) -> Pred:
        """The step is of one of ``kinds`` (``"tool"``, ``StepKind.MESSAGE``, ...)."""
        wanted = _kinds(kinds)
        names = sorted(k.value for k in wanted)
        text = f"kind {names[0]}" if len(names) == 1 else f"kind in {{{', '.join(names)}}}"
        return _Leaf(lambda s: s.kind in wanted, text, kinds=wanted)

    def agent(self, spec: NameSpec) -> Pred:
        """The step was taken by an agent matching ``spec`` (name, glob, set or regex)."""
        match, text = _name_matcher(spec, "agent")
        return _Leaf(lambda s: match(s.agent), text, _name_refs(spec, "agent"))

    def target(self, spec: NameSpec) -> Pred:
        """The step's target (tool, index, memory key, recipient) matches ``spec``."""
        match, text = _name_matcher(spec, "target")
        return _Leaf(lambda s: match(s.target), text, _name_refs(spec, "target"))

    def tool(self, spec: NameSpec) -> Pred:
        """A tool call whose tool name matches ``spec``."""
        match, text = _name_matcher(spec, "tool")
        tool_kind = StepKind.TOOL
        return _Leaf(lambda s: s.kind == tool_kind and match(s.target), text, _name_refs(spec, "tool"),
                     kinds=frozenset((tool_kind,)))

    def arg(self, name: str) -> _Arg:
        """Constraints on the call argument ``name``: ``.eq``, ``.matches``, ``.in_``, ``.not_matches``."""
        return _Arg(name)

    def untrusted(self) -> Pred:
        """The step's content has an untrusted source (a web page, an untrusted tool)."""
        return _Leaf(lambda s: any(not src.trusted for src in s.sources), "untrusted content")

    def side_effect(self) -> Pred:
        """The step changes the outside world (send, write, pay, delete)."""
        return _Leaf(lambda s: s.side_effect, "side effect")

    def error(self) -> Pred:
        """The boundary call of this step failed."""
        return _Leaf(lambda s: s.error is not None, "failed call")

    def message(self, agent: NameSpec | None = None, matches: str | Regex | None = None,
                to: NameSpec | None = None) -> Pred:
        """A message step, optionally from ``agent``, to ``to``, with content matching ``matches``."""
        tests: list[Callable[[Step], bool]] = []
        refs: tuple[NameRef, ...] = ()
        text = "message"
        if agent is not None:
            by, by_text = _name_matcher(agent, "agent")
            tests.append(lambda s: by(s.agent))
            text += " from " + by_text.removeprefix("agent ")
            refs += _name_refs(agent, "agent")
        if to is not None:
            rcpt, to_text = _name_matcher(to, "to")
            tests.append(lambda s: rcpt(s.target))
            text += " " + to_text
            refs += _name_refs(to, "agent")
        if matches is not None:
            rx = _compile_regex(matches, "step.message(matches=...)")
            tests.append(lambda s: s.content is not None and rx.search(s.content) is not None)
            text += f" matching /{rx.pattern}/"
        message_kind = StepKind.MESSAGE
        checks = tuple(tests)

        def check(s: Step) -> bool:
            if s.kind != message_kind:
                return False
            for t in checks:
                if not t(s):
                    return False
            return True

        return _Leaf(check, text, refs, kinds=frozenset((message_kind,)))

    def where(self, fn: Callable[[Step], bool], description: str | None = None) -> Pred:
        """Anything else: ``fn(step) -> bool``; ``description`` is how it prints."""
        if not callable(fn):
            raise ContractError(f"step.where(...) takes a callable, got {fn!r}")
        name = description or getattr(fn, "__name__", None) or repr(fn)
        return _Where(fn, f"where({name})")

    def any(self) -> Pred:
        """Every step."""
        return _Leaf(lambda s: True, "any step")


step = StepNamespace()
"""Builds step predicates: ``step.tool("send_email") & step.arg("to").not_matches(r"@ourco\\.com$")``."""
