"""Redaction of secrets from everything a run records, on by default.

Trace files, cassettes and audit logs get committed, attached to CI runs and shared in
bug reports, so an API key passed through a tool argument, returned by a tool, raised in
an exception, pasted into a message or used as a run's name must never reach one. One
:class:`Redactor` decides for all of them, in one walk over each value that also turns it
into JSON-able data:

* a dict key, a label or an attribute named like a secret (``api_key``, ``password``,
  ``clientSecret``, ``X-Api-Key``...) has its value replaced, whatever the value looks
  like; so does the ``value`` of a ``{"name"/"key": <secret-like>, "value": ...}`` pair
  (header lists, environment variables, memory writes);
* a string (text, a dict key, a name) has each secret-shaped part replaced: provider keys,
  tokens, JWTs, private key blocks, ``Basic``/``Bearer`` credentials, the password of a
  URL, and ``password=...``/``token: ...`` assignments.

What is redacted is replaced by ``[REDACTED]``, never silently dropped. The value patterns
follow the formats secret scanners (detect-secrets' plugins) recognise, with checks that
keep look-alikes (ordinary ids, hashes, uuids, ``max_tokens=512``) as they are.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import BaseModel

from mattrace.errors import RecordingError
from mattrace.recording.jsonable import to_jsonable
from mattrace.recording.secret_patterns import (
    CHECKS,
    DEFAULT_SECRET_KEYS,
    DEFAULT_SECRET_VALUES,
    assignments,
    prefilter,
)
from mattrace.trace import Source, StepError, StepKind, Trace

__all__ = [
    "REDACTED",
    "Redactor",
]
# DEFAULT_SECRET_KEYS and DEFAULT_SECRET_VALUES live in mattrace.recording.secret_patterns
# (imported above, so `from mattrace.recording.redact import DEFAULT_SECRET_KEYS` still works)

REDACTED = "[REDACTED]"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_MAX_DEPTH = 64
_KEY_CACHE = 4096    # distinct dict keys remembered per redactor (keys repeat: arg names, fields)
_SCAN_FIRST = 48     # longer text is first scanned for anything secret-like (short text: the regex is as cheap)
_MIN_LITERAL = 4     # shorter values under secret keys are not searched for elsewhere
_KEYED = frozenset({StepKind.MEMORY_READ, StepKind.MEMORY_WRITE})   # steps whose target is a key

@dataclass(frozen=True)
class _Rule:
    secret_group: str | None
    check: Callable[[str], bool] | None


def _first_literal(pattern: str) -> str:
    """The literal character a pattern starts with (escaped or not)."""
    return pattern[:2] if pattern.startswith("\\") else pattern[:1]


def _compile(patterns: Iterable[str], first: int = 0, *, by_first: bool = False,
             ) -> tuple[re.Pattern[str] | None, dict[str, _Rule]]:
    """Patterns as one regex (one scan of each string).

    Each alternative ends in an empty group ``r<n>`` (the last group a match closes, so
    ``match.lastgroup`` names its rule) rather than being wrapped in one, which would hide
    the literal it starts with from ``re``. ``by_first`` groups patterns that all start with a
    literal by that character (``g(?:...|...)``), so a position is tried against one group of
    alternatives, not all of them.
    """
    alternatives: dict[str, list[str]] = {}
    rules: dict[str, _Rule] = {}
    for i, pattern in enumerate(patterns, first):
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise RecordingError(f"Redactor: secret value pattern {pattern!r} is not a regex: {exc}") from None
        if set(compiled.groupindex) - {"secret"} or "(?P=" in pattern or "(?(" in pattern \
                or re.search(r"(?<!\\)\\[1-9]", pattern):
            raise RecordingError(f"Redactor: secret value pattern {pattern!r} names a group other than "
                                 "'secret' or refers back to a group; the patterns are combined into one "
                                 "regex, so they cannot")
        rules[f"r{i}"] = _Rule(f"s{i}" if "secret" in compiled.groupindex else None, CHECKS.get(pattern))
        named = pattern.replace("(?P<secret>", f"(?P<s{i}>")
        head = _first_literal(named) if by_first else ""
        alternatives.setdefault(head, []).append(f"(?:{named[len(head):]})(?P<r{i}>)")
    if not alternatives:
        return None, rules
    joined = "|".join(f"{head}(?:{'|'.join(alts)})" if head else "|".join(alts)
                      for head, alts in alternatives.items())
    try:
        return re.compile(joined), rules
    except re.error as exc:   # a global flag such as (?i) is only allowed at the start of a whole regex
        raise RecordingError(f"Redactor: the secret value patterns cannot be combined ({exc}); "
                             "use scoped flags, (?i:...), rather than (?i)") from None


@dataclass(frozen=True)
class Redactor:
    """Replaces secret-looking keys and values with ``[REDACTED]``.

    Args:
        keys: names of keys whose values are secrets (see DEFAULT_SECRET_KEYS); they also
            make ``name=value`` and ``name: value`` in text secret.
        values: regexes of secret values, replaced wherever they occur inside strings (a
            group named ``secret`` limits the replacement to that group).
        enabled: False records everything verbatim (for local debugging only).
    """

    keys: tuple[str, ...] = DEFAULT_SECRET_KEYS
    values: tuple[str, ...] = DEFAULT_SECRET_VALUES
    enabled: bool = True
    _key_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _value_res: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _rules: dict[str, _Rule] = field(init=False, repr=False, compare=False)
    _keys_seen: dict[str, tuple[str, bool]] = field(init=False, repr=False, compare=False)
    _short_seen: dict[str, str] = field(init=False, repr=False, compare=False)
    _literals: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _maybe: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = "|".join(re.escape(k) for k in self.keys) or r"(?!x)x"
        object.__setattr__(self, "_key_re", re.compile(rf"(?:^|[_\-. ])(?:{names})$", re.IGNORECASE))
        # the default patterns and the key assignments all start with a literal, and scan as
        # one; patterns added to them may not, and scan apart so they cannot slow the others
        known = frozenset(DEFAULT_SECRET_VALUES)
        fast = [p for p in self.values if p in known] + list(assignments(self.keys))
        fast_re, rules = _compile(fast, by_first=True)
        other_re, other_rules = _compile([p for p in self.values if p not in known], len(fast))
        object.__setattr__(self, "_value_res", tuple(r for r in (fast_re, other_re) if r is not None))
        object.__setattr__(self, "_rules", {**rules, **other_rules})
        object.__setattr__(self, "_keys_seen", {})
        object.__setattr__(self, "_short_seen", {})
        object.__setattr__(self, "_literals", ())
        object.__setattr__(self, "_maybe", prefilter(self.values, self.keys) if self.enabled else None)

    @classmethod
    def default(cls) -> Redactor:
        """The redactor with the default keys and patterns, made once per process (what a run
        without ``redact=`` uses: its patterns compile once, its memory of keys is shared)."""
        return _default_redactor()

    def extend(self, keys: Iterable[str] = (), values: Iterable[str] = ()) -> Redactor:
        """A redactor with more secret keys/values on top of these."""
        return Redactor(self.keys + tuple(keys), self.values + tuple(values), self.enabled)

    # -- the public entry points -----------------------------------------------------------

    def __call__(self, value: Any) -> Any:
        """A JSON-able copy of ``value`` with secrets replaced; the input is not modified.

        Disabled, ``value`` itself is returned.
        """
        if not self.enabled:
            return value
        return self._walk(value, 0)

    def jsonable(self, value: Any) -> Any:
        """``value`` as the JSON-able data a step stores, secrets replaced, in one walk (what
        :func:`~mattrace.recording.jsonable.to_jsonable` gives when disabled)."""
        if not self.enabled:
            return to_jsonable(value)
        return self._walk(value, 0)

    def may_hold_secret(self, data: bytes | str) -> bool:
        """Whether ``data`` (text, or JSON of a step) could hold a secret this redactor replaces.

        False is certain: no secret key name and nothing a value pattern matches occurs in it,
        found by one linear RE2 scan. True means "look closer" (most hits are ordinary words
        such as ``token`` or ``basic``); it is always True for patterns added with ``values=``,
        which have no known superset, and for a redactor scoped to an exception's values.
        """
        if not self.enabled:
            return False
        if self._maybe is None or self._literals:
            return True
        if isinstance(data, str):   # bytes: RE2 then skips translating offsets back to characters
            data = data.encode("utf-8", "surrogatepass")
        return bool(self._maybe(data))

    def text(self, text: str) -> str:
        """``text`` with every secret-shaped part replaced."""
        if not self.enabled:
            return text
        if len(text) > _SCAN_FIRST:
            if not self.may_hold_secret(text):
                return text
        elif not self._literals:   # short text repeats (agent, tool and key names): remembered
            seen = self._short_seen.get(text)
            if seen is None:
                if len(self._short_seen) >= _KEY_CACHE:
                    self._short_seen.clear()
                seen = self._short_seen[text] = self._replaced(text)
            return seen
        return self._replaced(text)

    def _replaced(self, text: str) -> str:
        for value_re in self._value_res:
            text = value_re.sub(self._replace, text)
        for literal in self._literals:
            text = text.replace(literal, REDACTED)
        return text

    def is_secret_key(self, key: object) -> bool:
        """Whether values stored under ``key`` are secrets (``api_key``, ``clientSecret``)."""
        return isinstance(key, str) and self.enabled and self._key(key)[1]

    def under(self, key: object, value: Any) -> Any:
        """``value`` stored under ``key`` (a memory key, a field name): ``[REDACTED]`` when the
        key is secret-like, else ``value`` redacted as JSON-able data."""
        if value is not None and self.is_secret_key(key):
            return REDACTED
        return self.jsonable(value)

    def mapping(self, value: Mapping[Any, Any], child: Callable[[Any], Any]) -> dict[str, Any]:
        """A dict's redacted copy, its other values converted by ``child``: keys become strings
        with secret-shaped parts replaced, values under secret-like keys (and the ``value`` of
        a secret-like name/value pair) become ``[REDACTED]``. Two keys that redact alike are
        kept apart (``[REDACTED]``, ``[REDACTED]#2``)."""
        if not self.enabled:
            return {str(k): child(v) for k, v in value.items()}
        pair = "value" in value and self.is_secret_key(value.get("name", value.get("key")))
        out: dict[str, Any] = {}
        for k, v in value.items():
            name, secret = self._key(k if type(k) is str else str(k))
            if v is not None and (secret or (pair and k == "value")):
                v = REDACTED
            else:
                v = child(v)
            if name in out:
                n = 2
                while f"{name}#{n}" in out:
                    n += 1
                name = f"{name}#{n}"
            out[name] = v
        return out

    def for_error(self, error: BaseException) -> Redactor:
        """This redactor, also replacing the values an exception holds under secret-like
        attribute names wherever they recur (``AuthError("refused abc123", token="abc123")``)."""
        if not self.enabled:
            return self
        literals = tuple(sorted({v for k, v in vars(error).items() if isinstance(v, str)
                                 and len(v) >= _MIN_LITERAL and self.is_secret_key(k)}, key=len, reverse=True))
        if not literals:
            return self
        scoped = copy.copy(self)
        object.__setattr__(scoped, "_literals", literals)
        return scoped

    def step_fields(self, kind: StepKind, *, agent: str, target: str | None, content: str | None,
                    args: dict[str, Any] | None, result: Any, error: BaseException | StepError | None,
                    sources: Iterable[Source], attrs: dict[str, Any] | None) -> dict[str, Any]:
        """Every field of a step as it is recorded: JSON-able, secrets replaced.

        The one place that says what is redacted in a step: the recorder applies it to each
        step it records, :meth:`trace` to traces built elsewhere (imports). A memory step's
        target is a key naming its value (``memory["api_token"]``).
        """
        keyed = kind in _KEYED and target is not None
        if isinstance(error, BaseException):
            error = StepError(type=self.text(type(error).__name__), message=self.for_error(error).text(str(error)))
        elif error is not None and self.enabled:
            error = StepError(type=self.text(error.type), message=self.text(error.message))
        return {
            "agent": self.text(agent),
            "target": self.text(target) if target else target,
            "content": self.text(content) if content else content,
            "args": self.jsonable(args) if args is not None else None,
            "result": self.under(target, result) if keyed else self.jsonable(result),
            "error": error,
            "sources": tuple(self._source(s) for s in sources),
            "attrs": self.jsonable(attrs) if attrs else {},
        }

    def trace(self, trace: Trace) -> Trace:
        """A trace built elsewhere (an import) with every field redacted as in a recorded run:
        its name, config, labels, entrypoint, outcome and each step's fields."""
        if not self.enabled:
            return trace
        steps = [step.model_copy(update=self.step_fields(
            step.kind, agent=step.agent, target=step.target, content=step.content, args=step.args,
            result=step.result, error=step.error, sources=step.sources, attrs=step.attrs)) for step in trace.steps]
        outcome = trace.outcome
        if outcome is not None:
            outcome = outcome.model_copy(update={"output": self.jsonable(outcome.output),
                                                 "reason": self.text(outcome.reason) if outcome.reason else None})
        return trace.model_copy(update={
            "name": self.text(trace.name), "config": self.jsonable(trace.config),
            "labels": self.jsonable(trace.labels),
            "entrypoint": self.jsonable(trace.entrypoint) if trace.entrypoint is not None else None,
            "outcome": outcome, "steps": steps})

    # -- internals -------------------------------------------------------------------------

    def _source(self, source: Source) -> Source:
        """A source whose ref (a memory key, a document id) holds no secret."""
        if not isinstance(source, Source) or not source.ref:
            return source
        ref = self.text(source.ref)
        return source if ref == source.ref else source.model_copy(update={"ref": ref})

    def _replace(self, match: re.Match[str]) -> str:
        whole = match.group()
        rule = self._rules.get(match.lastgroup) if match.lastgroup else None
        if rule is None or (rule.check is not None and not rule.check(whole)):
            return whole
        if rule.secret_group is None:
            return REDACTED
        start, end = match.span(rule.secret_group)
        secret = match.group(rule.secret_group)
        for quote in ('\\"', '"', "'"):
            if len(secret) > 2 * len(quote) and secret.startswith(quote) and secret.endswith(quote):
                secret_text = quote + REDACTED + quote
                break
        else:
            secret_text = REDACTED
        offset = match.start()
        return whole[:start - offset] + secret_text + whole[end - offset:]

    def _key(self, key: str) -> tuple[str, bool]:
        """A dict key as recorded, and whether its value is a secret (remembered: keys repeat)."""
        seen = self._keys_seen.get(key) if not self._literals else None
        if seen is not None:
            return seen
        # camelCase keys (accessToken, clientSecret) match like their snake_case forms
        result = (self.text(key), bool(self._key_re.search(_CAMEL.sub("_", key))))
        if not self._literals:
            if len(self._keys_seen) >= _KEY_CACHE:
                self._keys_seen.clear()
            self._keys_seen[key] = result
        return result

    def _walk(self, value: Any, depth: int) -> Any:
        """to_jsonable and redaction in one pass (same conversions as to_jsonable)."""
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, str):
            redacted = self.text(value)
            return value if redacted == value else redacted
        if depth > _MAX_DEPTH:
            return self.text(repr(value))
        if isinstance(value, dict):
            return self.mapping(value, lambda v: self._walk(v, depth + 1))
        if isinstance(value, list | tuple):
            return [self._walk(v, depth + 1) for v in value]
        if isinstance(value, float):
            return to_jsonable(value)
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", errors="backslashreplace"))
        if isinstance(value, set | frozenset):
            return sorted((self._walk(v, depth + 1) for v in value), key=repr)
        if isinstance(value, Enum):
            return self._walk(value.value, depth + 1)
        if isinstance(value, BaseModel):
            return self._walk(value.model_dump(mode="json"), depth + 1)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self._walk(dataclasses.asdict(value), depth + 1)
        return self.text(repr(value))


@functools.cache
def _default_redactor() -> Redactor:
    return Redactor()
