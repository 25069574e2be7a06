"""Contract files: stock contracts and operators configured in TOML, for CI without Python.

```toml
[[contract]]
use = "confirmed_before"
tool = ["book_reservation", "update_reservation_*"]

[[contract]]
use = "never"
name = "no mail outside the company"
step = { tool = "send_email", args = { to = { not_matches = '@ourco\\.com$' } } }
```

:func:`load_contracts` turns each ``[[contract]]`` entry into the same :class:`Contract`
the Python call would build (``use`` names a stock contract or an operator, the other keys
are its arguments, step patterns map key by key onto ``step.*``), so a file and its Python
twin give the same verdicts. Every mistake is a :class:`~mattrace.errors.ContractError`
whose message starts ``file:line:`` and names the key; the error also carries ``path`` and
``line`` (reading, decoding and locating are :mod:`mattrace._config`'s).
:func:`parse_step_pattern` reads one step pattern of any such file (governance policies
use them too).
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import operator
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast, get_args

from mattrace._config import ConfigFile, Key, did_you_mean, got, read_config
from mattrace.contracts._claims import claims_supported, no_unsupported_propagation
from mattrace.contracts._contract import Contract
from mattrace.contracts._each import each
from mattrace.contracts._library import (
    confirmed_before,
    max_calls,
    no_action_after_error,
    no_destructive_call,
    no_untrusted_action,
    no_untrusted_context_action,
    stays_in_role,
    terminates,
    tool_definitions_stable,
)
from mattrace.contracts._operators import always, at_most, eventually, never, precedes, responds, within
from mattrace.contracts._past import flows, once, since
from mattrace.contracts._predicates import Pred
from mattrace.contracts._regex import LinearPattern, compile_linear
from mattrace.contracts._step import NameSpec, step
from mattrace.contracts._verdict import Severity
from mattrace.errors import ContractError, LocatedError
from mattrace.trace import StepKind

__all__ = ["load_contracts", "parse_step_pattern"]

_SEVERITIES: tuple[str, ...] = get_args(Severity)
_KINDS = tuple(k.value for k in StepKind)


def load_contracts(path: str | os.PathLike[str]) -> list[Contract]:
    """The contracts of a TOML contract file, one per ``[[contract]]`` entry, in file order.

    Raises:
        ContractError: the file is missing, unreadable or not TOML, has no entries, or an
            entry is wrong (unknown contract or key, missing key, wrong type, bad regular
            expression). The message starts ``path:line:``; ``path`` and ``line``
            attributes hold the same (``line`` is None when no line applies).
    """
    config = read_config(path, ContractError, "contract file")
    return _Loader(config).document(config.doc)


def parse_step_pattern(config: ConfigFile[LocatedError], at: Key, value: Any) -> Pred:
    """The step predicate a step pattern of a TOML file means, as contract files write them.

    Other file formats (governance policies) take step patterns too; this keeps one
    grammar and one set of messages for all of them.

    Args:
        config: the file, as :func:`mattrace._config.read_config` returned it.
        at: where the pattern sits in its document, e.g. ``("rule", 0, "step")``.
        value: the pattern: a table such as ``{ tool = "send_email" }``.

    Raises:
        LocatedError: of the file's own type (``config.error``), at the line of the
            offending key, when the pattern is wrong.
        ContractError: (without a location) when the contract DSL refuses what it builds.
    """
    return _Loader(config).pattern(at, value)


_COMMON = ("name", "severity", "use")


@dataclass(frozen=True)
class _Use:
    """What an entry with ``use = ...`` takes, and how it becomes a contract."""

    build: Callable[[_Loader, Key, dict[str, Any]], Contract]
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


_NEEDS = {
    "step": 'a step pattern, e.g. step = { tool = "send_email" }',
    "a": 'a step pattern, e.g. a = { message = { agent = "user" } }',
    "b": 'a step pattern, e.g. b = { tool = "send_email" }',
    "must": 'a step pattern, e.g. must = { once = { kind = "retrieval" } }',
    "n": "a whole number",
    "tool": 'a tool name, a glob such as "update_*", or a list of them',
    "roles": 'a table of agent = [tools], e.g. roles = { writer = ["send_email"] }',
}

_PATTERN_KEYS = ("agent", "all_of", "any_of", "args", "content", "error", "flows", "kind", "message", "not",
                 "once", "result", "side_effect", "since", "target", "tool", "untrusted")
_ARG_TESTS = ("eq", "in", "matches", "not_matches")


def _globbed(names: list[str]) -> bool:
    return any(c in n for n in names for c in "*?[")


class _Loader:
    """Turns a parsed contract file into contracts; ``fail`` places every error on its line.

    Messages quote the key they are about (``'n' must be ...``), so the typed getters get
    ``repr`` of it as their name.
    """

    def __init__(self, config: ConfigFile[LocatedError]) -> None:
        self.config = config
        self.fail = config.fail

    def wrong(self, at: Key, value: Any, expected: str) -> LocatedError:
        return self.config.wrong(at, value, expected, name=repr(at[-1]))

    def document(self, doc: dict[str, Any]) -> list[Contract]:
        for key in doc:
            if key != "contract":
                raise self.fail((key,), f"unknown top-level key {key!r}; a contract file holds only "
                                        "[[contract]] entries")
        entries = doc.get("contract")
        if entries is None or entries == []:
            raise self.fail(("contract",), 'no [[contract]] entries; add one, e.g. [[contract]] then '
                                           'use = "terminates" on the next line')
        if not isinstance(entries, list):
            raise self.fail(("contract",), "'contract' must be an array of tables: write [[contract]] "
                                           "(double brackets) above each entry")
        contracts = [self.entry(("contract", k), raw) for k, raw in enumerate(entries)]
        first: dict[str, int] = {}
        for k, c in enumerate(contracts):
            if c.name in first:
                other = self.config.line(("contract", first[c.name]))
                also = f" (also by the entry at line {other})" if other is not None else ""
                raise self.fail(("contract", k, "name"), f"two contracts are named {c.name!r}{also}; "
                                                         'give each a distinct name = "..."')
            first[c.name] = k
        return contracts

    def entry(self, at: Key, raw: Any) -> Contract:
        self.config.table(at, raw, name="each contract entry", expected="a table ([[contract]])")
        if "use" not in raw:
            raise self.fail(at, "contract entry has no 'use' key; name a stock contract or an operator, "
                                'e.g. use = "terminates"')
        use = self.config.string((*at, "use"), raw["use"], name="'use'", expected="the name of a contract")
        spec = _USES.get(use)
        if spec is None:
            hint = did_you_mean(use, _USES) or f" (known: {', '.join(sorted(_USES))})"
            raise self.fail((*at, "use"), f"unknown contract {use!r}{hint}")
        self.config.check_keys(at, raw, sorted({*_COMMON, *spec.required, *spec.optional}), f"for {use}")
        for key in spec.required:
            if key not in raw:
                raise self.fail(at, f"{use} needs {key!r}: {_NEEDS.get(key, 'a value')}")
        try:
            contract = spec.build(self, at, raw)
        except ContractError as exc:
            if exc.path is not None:
                raise
            raise self.fail((*at, "use"), str(exc)) from None
        if "name" in raw:
            name = raw["name"]
            if not isinstance(name, str) or not name.strip():
                raise self.wrong((*at, "name"), name, "non-empty text")
            contract = contract.named(name)
        if "severity" in raw:
            level = self.config.choice((*at, "severity"), raw["severity"], _SEVERITIES, name="'severity'")
            contract = contract.severity(cast(Severity, level))
        # where it was written: a vacuous verdict (a misspelt tool name) points back at the entry
        contract = copy.copy(contract)
        line = self.config.line(at)
        contract._origin = self.config.path if line is None else f"{self.config.path}:{line}"
        return contract

    # -- typed values ----------------------------------------------------------------------

    def whole(self, at: Key, value: Any, *, minimum: int) -> int:
        least = "non-negative" if minimum == 0 else f"at least {minimum}"
        return self.config.integer(at, value, name=repr(at[-1]), expected=f"a whole number ({least})",
                                   minimum=minimum)

    def number(self, at: Key, value: Any) -> float:
        return self.config.number(at, value, name=repr(at[-1]), expected="a non-negative number", minimum=0)

    def flag(self, at: Key, value: Any) -> bool:
        return self.config.boolean(at, value, name=repr(at[-1]))

    def text(self, at: Key, value: Any) -> str:
        return self.config.string(at, value, name=repr(at[-1]), expected="text")

    def regex(self, at: Key, value: Any, *, ignore_case: bool = False) -> LinearPattern:
        """A pattern for linear-time matching (RE2): contracts run it over text anyone may have written."""
        pattern = self.text(at, value)
        try:
            return compile_linear(pattern, ignore_case=ignore_case)
        except ContractError as exc:
            raise self.fail(at, f"{exc} in {at[-1]!r}") from None

    def names(self, at: Key, value: Any) -> list[str]:
        """A name, a glob or a non-empty list of them, as a list."""
        if isinstance(value, str) and value:
            return [value]
        if isinstance(value, list) and value:
            for n, item in enumerate(value):
                if not isinstance(item, str) or not item:
                    raise self.fail((*at, n), f"{at[-1]!r} must list names, got {got(item)}")
            return value
        raise self.wrong(at, value, 'a name, a glob such as "send_*", or a non-empty list of them')

    def name_spec(self, at: Key, value: Any) -> NameSpec:
        """``names`` as the DSL takes them: a list holding globs becomes one anchored regex."""
        names = self.names(at, value)
        if len(names) == 1:
            return names[0]
        if not _globbed(names):
            return names
        return re.compile(r"\A(?:" + "|".join(fnmatch.translate(n) for n in names) + ")")

    def table(self, at: Key, value: Any, what: str, keys: tuple[str, ...],
              required: tuple[str, ...] = ()) -> dict[str, Any]:
        table = self.config.table(at, value, name=repr(at[-1]))
        self.config.check_keys(at, table, keys, f"in {what}")
        for key in required:
            if key not in table:
                raise self.fail(at, f"{what} needs {key!r} (a step pattern)")
        return table

    # -- step patterns ---------------------------------------------------------------------

    def pattern(self, at: Key, value: Any) -> Pred:
        """A step pattern: a table whose keys are ANDed, in the order written (empty: any step)."""
        where = f"entries of {at[-2]!r}" if isinstance(at[-1], int) else repr(at[-1])
        self.config.table(at, value, name=where, expected='a step pattern (a table such as { tool = "send_email" })')
        self.table(at, value, "step pattern", _PATTERN_KEYS)
        preds = [self.pattern_key((*at, key), key, v) for key, v in value.items()]
        if not preds:
            return step.any()
        return functools.reduce(operator.and_, preds)

    def patterns(self, at: Key, value: Any) -> list[Pred]:
        if not isinstance(value, list) or not value:
            raise self.wrong(at, value, "a non-empty array of step patterns")
        return [self.pattern((*at, n), item) for n, item in enumerate(value)]

    def name_pred(self, at: Key, key: str, value: Any) -> Pred:
        build: Callable[[NameSpec], Pred] = getattr(step, key)
        names = self.names(at, value)
        if len(names) == 1:
            return build(names[0])
        if not _globbed(names):
            return build(names)
        exact = [n for n in names if not _globbed([n])]
        parts = ([build(exact if len(exact) > 1 else exact[0])] if exact else [])
        parts += [build(n) for n in names if _globbed([n])]
        return functools.reduce(operator.or_, parts)

    def pattern_key(self, at: Key, key: str, value: Any) -> Pred:
        if key == "kind":
            return step.kind(*self.kinds(at, value))
        if key in ("agent", "target", "tool"):
            return self.name_pred(at, key, value)
        if key == "content":
            return step.content.matches(self.regex(at, value))
        if key == "result":
            return step.result.matches(self.regex(at, value))
        if key in ("untrusted", "side_effect", "error"):
            pred: Pred = getattr(step, key)()
            return pred if self.flag(at, value) else ~pred
        if key == "message":
            spec = self.table(at, value, "'message'", ("agent", "matches", "to"))
            return step.message(
                agent=self.name_spec((*at, "agent"), spec["agent"]) if "agent" in spec else None,
                matches=self.regex((*at, "matches"), spec["matches"]) if "matches" in spec else None,
                to=self.name_spec((*at, "to"), spec["to"]) if "to" in spec else None)
        if key == "args":
            return self.args(at, value)
        if key == "not":
            return ~self.pattern(at, value)
        if key == "any_of":
            return functools.reduce(operator.or_, self.patterns(at, value))
        if key == "all_of":
            return functools.reduce(operator.and_, self.patterns(at, value))
        if key == "once":
            return once(self.pattern(at, value))
        if key == "since":
            spec = self.table(at, value, "'since'", ("a", "b"), ("a", "b"))
            return since(self.pattern((*at, "a"), spec["a"]), self.pattern((*at, "b"), spec["b"]))
        assert key == "flows", key
        spec = self.table(at, value, "'flows'", ("from", "into"), ("from", "into"))
        return flows(self.pattern((*at, "from"), spec["from"]), into=self.pattern((*at, "into"), spec["into"]))

    def kinds(self, at: Key, value: Any) -> list[str]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self.fail(at, "'kind' must name at least one step kind")
        for n, k in enumerate(items):
            where = (*at, n) if isinstance(value, list) else at
            self.config.string(where, k, name="'kind'", expected="a step kind or a list of them")
            if k not in _KINDS:
                hint = did_you_mean(k, _KINDS) or f" (known: {', '.join(_KINDS)})"
                raise self.fail(where, f"unknown step kind {k!r}{hint}")
        return items

    def args(self, at: Key, value: Any) -> Pred:
        self.config.table(at, value, name="'args'",
                          expected="a table of argument = value (or = { eq | matches | not_matches | in = ... })")
        if not value:
            raise self.fail(at, "'args' is empty; name at least one argument, e.g. args = { to = 'x' }")
        preds: list[Pred] = []
        for name, test in value.items():
            where = (*at, name)
            arg = step.arg(name)
            if not isinstance(test, dict):
                preds.append(arg.eq(test))
                continue
            self.table(where, test, f"the test of argument {name!r}", _ARG_TESTS)
            if not test:
                raise self.fail(where, f"test of argument {name!r} is empty; use eq, matches, not_matches or in "
                                       "(to compare with a table, write { eq = { ... } })")
            for op, operand in test.items():
                if op == "eq":
                    preds.append(arg.eq(operand))
                elif op == "matches":
                    preds.append(arg.matches(self.regex((*where, op), operand)))
                elif op == "not_matches":
                    preds.append(arg.not_matches(self.regex((*where, op), operand)))
                else:
                    if not isinstance(operand, list):
                        raise self.wrong((*where, op), operand, "an array of values")
                    preds.append(arg.in_(operand))
        return functools.reduce(operator.and_, preds)

    # -- stock contracts -------------------------------------------------------------------

    def roles(self, at: Key, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            raise self.wrong(at, value, "a non-empty table of agent = [tools]")
        roles: dict[str, Any] = {}
        for agent, spec in value.items():
            where = (*at, agent)
            if isinstance(spec, dict):
                self.table(where, spec, f"the role of {agent!r}", ("kinds", "tools"))
                role: dict[str, Any] = {"tools": self.tool_list((*where, "tools"), spec.get("tools", []))}
                if "kinds" in spec:
                    role["kinds"] = self.kinds((*where, "kinds"), spec["kinds"])
                roles[agent] = role
            else:
                roles[agent] = self.tool_list(where, spec)
        return roles

    def tool_list(self, at: Key, value: Any) -> list[str]:
        if value == []:
            return []
        return self.names(at, value)


def _always(ld: _Loader, at: Key, raw: dict[str, Any]) -> Contract:
    if "step" in raw:
        extra = next((k for k in ("if", "then") if k in raw), None)
        if extra is not None:
            raise ld.fail((*at, extra), "always takes either 'step' or 'if' and 'then', not both")
        return always(ld.pattern((*at, "step"), raw["step"]))
    if "if" in raw and "then" in raw:
        return always(ld.pattern((*at, "if"), raw["if"]) >> ld.pattern((*at, "then"), raw["then"]))
    if "if" in raw or "then" in raw:
        has, lacks = ("if", "then") if "if" in raw else ("then", "if")
        raise ld.fail((*at, has), f"always has {has!r} but no {lacks!r}: every step matching 'if' "
                                  "must match 'then'")
    raise ld.fail(at, "always needs 'step' (every step matches it), or 'if' and 'then' "
                      "(every step matching 'if' matches 'then')")


def _within(ld: _Loader, at: Key, raw: dict[str, Any]) -> Contract:
    if not any(k in raw for k in ("steps", "seconds", "tokens", "cost")):
        raise ld.fail(at, "within needs at least one budget: steps, seconds, tokens or cost")
    return within(
        steps=ld.whole((*at, "steps"), raw["steps"], minimum=0) if "steps" in raw else None,
        seconds=ld.number((*at, "seconds"), raw["seconds"]) if "seconds" in raw else None,
        tokens=ld.whole((*at, "tokens"), raw["tokens"], minimum=0) if "tokens" in raw else None,
        cost=ld.number((*at, "cost"), raw["cost"]) if "cost" in raw else None)


def _each(ld: _Loader, at: Key, raw: dict[str, Any]) -> Contract:
    reason = ld.text((*at, "reason"), raw["reason"]) if "reason" in raw else None
    return each(ld.pattern((*at, "step"), raw["step"])).must(ld.pattern((*at, "must"), raw["must"]), reason=reason)


def _confirmed_before(ld: _Loader, at: Key, raw: dict[str, Any]) -> Contract:
    ignore_case = ld.flag((*at, "ignore_case"), raw["ignore_case"]) if "ignore_case" in raw else True
    pattern = r"\byes\b"
    if "pattern" in raw:
        pattern = ld.regex((*at, "pattern"), raw["pattern"], ignore_case=ignore_case).pattern
    by = ld.text((*at, "by"), raw["by"]) if "by" in raw else "user"
    names = ld.names((*at, "tool"), raw["tool"])
    contract = confirmed_before(ld.name_spec((*at, "tool"), raw["tool"]), pattern, by=by, ignore_case=ignore_case)
    return contract.named(f"confirmed before {', '.join(names)}") if _globbed(names) and len(names) > 1 else contract


def _max_calls(ld: _Loader, at: Key, raw: dict[str, Any]) -> Contract:
    n = ld.whole((*at, "n"), raw["n"], minimum=0)
    names = ld.names((*at, "tool"), raw["tool"])
    if len(names) > 1 and _globbed(names):
        return at_most(n, ld.name_pred((*at, "tool"), "tool", names)).named(f"at most {n} {', '.join(names)} calls")
    return max_calls(ld.name_spec((*at, "tool"), raw["tool"]), n)


def _no_untrusted_action(ld: _Loader, at: Key, raw: dict[str, Any]) -> Contract:
    """``selectors`` / ``egress``: tables of tool name = [argument names]; ``strict``: true or false."""
    tables: dict[str, dict[str, list[str]]] = {}
    for key in ("selectors", "egress"):
        if key in raw:
            table = ld.config.table((*at, key), raw[key], name=repr(key), expected="a table of tool = [arguments]")
            tables[key] = {tool: ld.config.strings((*at, key, tool), names, name=repr(tool))
                           for tool, names in table.items()}
    strict = ld.flag((*at, "strict"), raw["strict"]) if "strict" in raw else False
    return no_untrusted_action(selectors=tables.get("selectors"), egress=tables.get("egress"), strict=strict)


def _no_destructive_call(ld: _Loader, at: Key, raw: dict[str, Any]) -> Contract:
    allow = ld.names((*at, "allow"), raw["allow"]) if "allow" in raw else []
    unannotated = ld.flag((*at, "unannotated"), raw["unannotated"]) if "unannotated" in raw else True
    return no_destructive_call(allow, unannotated=unannotated)


def _extract(ld: _Loader, at: Key, raw: dict[str, Any]) -> bool:
    return ld.flag((*at, "extract"), raw["extract"]) if "extract" in raw else False


def _pattern_of(key: str) -> Callable[[_Loader, Key, dict[str, Any]], Pred]:
    return lambda ld, at, raw: ld.pattern((*at, key), raw[key])


_step, _a, _b = _pattern_of("step"), _pattern_of("a"), _pattern_of("b")

_USES: dict[str, _Use] = {
    # operators
    "always": _Use(_always, optional=("step", "if", "then")),
    "never": _Use(lambda ld, at, raw: never(_step(ld, at, raw)), ("step",)),
    "eventually": _Use(lambda ld, at, raw: eventually(_step(ld, at, raw)), ("step",)),
    "precedes": _Use(lambda ld, at, raw: precedes(_a(ld, at, raw), _b(ld, at, raw)), ("a", "b")),
    "responds": _Use(lambda ld, at, raw: responds(_a(ld, at, raw), _b(ld, at, raw)), ("a", "b")),
    "within": _Use(_within, optional=("steps", "seconds", "tokens", "cost")),
    "at_most": _Use(lambda ld, at, raw: at_most(ld.whole((*at, "n"), raw["n"], minimum=0), _step(ld, at, raw)),
                    ("n", "step")),
    "each": _Use(_each, ("step", "must"), ("reason",)),
    # stock contracts
    "terminates": _Use(lambda ld, at, raw: terminates(ld.whole((*at, "max_steps"), raw["max_steps"], minimum=1)
                                                      if "max_steps" in raw else 100), optional=("max_steps",)),
    "stays_in_role": _Use(lambda ld, at, raw: stays_in_role(ld.roles((*at, "roles"), raw["roles"])), ("roles",)),
    "claims_supported": _Use(lambda ld, at, raw: claims_supported(_extract(ld, at, raw)), optional=("extract",)),
    "no_unsupported_propagation": _Use(lambda ld, at, raw: no_unsupported_propagation(_extract(ld, at, raw)),
                                       optional=("extract",)),
    "no_untrusted_action": _Use(_no_untrusted_action, optional=("selectors", "egress", "strict")),
    "no_untrusted_context_action": _Use(lambda ld, at, raw: no_untrusted_context_action()),
    "confirmed_before": _Use(_confirmed_before, ("tool",), ("pattern", "by", "ignore_case")),
    "no_action_after_error": _Use(lambda ld, at, raw: no_action_after_error()),
    "max_calls": _Use(_max_calls, ("tool", "n")),
    "tool_definitions_stable": _Use(lambda ld, at, raw: tool_definitions_stable()),
    "no_destructive_call": _Use(_no_destructive_call, optional=("allow", "unannotated")),
}
