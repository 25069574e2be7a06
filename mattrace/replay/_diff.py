"""The first divergence between two traces: which step, which field, and the two values.

Replay promises that re-running a recorded program reproduces a trace with the same
:meth:`~mattrace.trace.Trace.fingerprint`. When it does not, a changed hash says nothing
useful; the reader wants "step 16, ``args.to``, ``"a@x"`` became ``"b@y"``". This module
compares exactly what the fingerprint covers — the name, config, labels without
:data:`~mattrace.trace.VOLATILE_LABELS`, the outcome, and every step's
:meth:`~mattrace.trace.Step.deterministic_dict` (no wall-clock times, no
:data:`~mattrace.trace.VOLATILE_ATTRS`) — so two traces have no divergence exactly when
their fingerprints are equal.

Order of comparison, which decides what "first" means:

1. steps in index order; within a step the fields in :data:`STEP_FIELDS` order (kind,
   agent, target, args, content, result, error, sources, reads, side_effect, attrs);
2. the step count (one trace has more steps: the first extra step is reported);
3. the outcome;
4. run metadata: name, config, labels (skipped with ``compare_metadata=False``).

Inside a field, nested dicts are walked in sorted key order and lists in index order, and
the deepest differing path is reported (``result[0].text``, ``attrs["gen_ai.system"]``);
a list that only differs in length reports its first extra element. Values compare as
their canonical JSON does: ``1``, ``1.0`` and ``true`` differ, as do ``0.0`` and ``-0.0``,
because the fingerprint tells them apart too. A value one side does not have (a missing
dict key, an extra list element or step) is :data:`MISSING`, shown as ``<missing>``.

Everything here is pure and thread-safe; comparing costs about what fingerprinting both
traces costs, plus a walk of the first differing field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from itertools import islice
from typing import Any

from mattrace.trace import VOLATILE_LABELS, Step, StepKind, Trace, canonical_json

__all__ = ["describe_step", "diff_summary", "Divergence", "first_divergence", "MISSING", "STEP_FIELDS"]

# the order in which the fields of two differing steps are compared: what the step *is*
# (kind, who, to whom) before what it carried, so a step replaced by another kind of step
# is reported as a kind change rather than as a dozen field changes
STEP_FIELDS: tuple[str, ...] = ("kind", "agent", "target", "args", "content", "result", "error",
                                "sources", "reads", "side_effect", "attrs")

# a step's fields at their defaults, as JSON: deterministic_dict() leaves defaults out, so
# a field only one side sets is compared against the value the other side really has
_DEFAULTS: dict[str, Any] = Step(index=0, kind=StepKind.END).model_dump(mode="json")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SHOWN = 80  # characters of a value in a reason sentence


class _Missing(Enum):
    """The type of :data:`MISSING` (an enum, so it survives copy and pickle as itself)."""

    MISSING = "<missing>"

    def __repr__(self) -> str:
        return "<missing>"

    def __str__(self) -> str:
        return "<missing>"


MISSING = _Missing.MISSING
"""The value on the side of a divergence that has nothing at that path."""


@dataclass(frozen=True)
class Divergence:
    """Where two traces first differ, and how.

    Attributes:
        index: the step index of the difference; ``None`` when it is in the outcome or the
            run metadata.
        field: a dotted path into the step or the trace: ``"kind"``, ``"args.to"``,
            ``"result[0].text"``, ``"attrs.model"``; ``"steps"`` when one trace has more
            steps (``index`` is then the first extra step); ``"outcome.status"``,
            ``"config.seed"``, ``"name"``, ``labels["mattrace.test"]``.
        old, new: the JSON values at ``field`` in the first and second trace, or
            :data:`MISSING` for a side that has no value there.
        reason: one readable sentence naming the step, the field and both values.
        old_step, new_step: the steps at ``index`` (``None`` where a trace has no such step
            or the difference is not in a step).
    """

    index: int | None
    field: str
    old: Any
    new: Any
    reason: str
    old_step: Step | None = None
    new_step: Step | None = None

    def __str__(self) -> str:
        return self.reason

    def to_json_dict(self) -> dict[str, Any]:
        """The divergence as JSON-able data; a :data:`MISSING` side's key is left out.

        ``old_step``/``new_step`` are the full step records (with their times), or null.
        """
        data: dict[str, Any] = {"index": self.index, "field": self.field}
        if self.old is not MISSING:
            data["old"] = self.old
        if self.new is not MISSING:
            data["new"] = self.new
        data["reason"] = self.reason
        data["old_step"] = self.old_step.to_json_dict() if self.old_step is not None else None
        data["new_step"] = self.new_step.to_json_dict() if self.new_step is not None else None
        return data


def first_divergence(a: Trace, b: Trace, *, compare_metadata: bool = True) -> Divergence | None:
    """The first place where ``b`` differs from ``a``, or ``None`` when they are equivalent.

    With ``compare_metadata=True`` the result is ``None`` exactly when
    ``a.fingerprint() == b.fingerprint()``. With ``False`` the name, config and labels are
    not compared (a replay may run under another name or config); the outcome still is.

    Args:
        a: the reference ("old") trace, e.g. the recording.
        b: the trace compared with it ("new"), e.g. the replay.
        compare_metadata: also compare name, config and labels.
    """
    return next(_divergences(a, b, compare_metadata), None)


def diff_summary(a: Trace, b: Trace, *, limit: int | None = 20,
                 compare_metadata: bool = True) -> list[Divergence]:
    """Every differing step (its first differing field), then count, outcome and metadata.

    The first element is :func:`first_divergence`; the list is empty exactly when that is
    ``None``. Steps are compared position by position, so after an inserted or removed
    step every later step differs: ``limit`` keeps that overview short.

    Args:
        limit: at most this many divergences; ``None`` for all of them.

    Raises:
        ValueError: ``limit`` is negative.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    return list(islice(_divergences(a, b, compare_metadata), limit))


# -- comparing ---------------------------------------------------------------------------------

def _divergences(a: Trace, b: Trace, compare_metadata: bool) -> Iterator[Divergence]:
    """All divergences in the documented order, computed lazily (the first one is cheap)."""
    for i, (old, new) in enumerate(zip(a.steps, b.steps, strict=False)):
        old_text, new_text = _canon(old.deterministic_dict()), _canon(new.deterministic_dict())
        if old_text != new_text:
            yield _step_divergence(i, old, new, _plain(old_text), _plain(new_text))
    if len(a.steps) != len(b.steps):
        yield _count_divergence(a, b)
    outcome = _first(_plain(_canon(_outcome(a))), _plain(_canon(_outcome(b))), "outcome")
    if outcome is not None:
        yield _run_divergence(*outcome)
    if not compare_metadata:
        return
    for path, old_value, new_value in (("name", a.name, b.name), ("config", a.config, b.config),
                                       ("labels", _labels(a), _labels(b))):
        found = _first(_plain(_canon(old_value)), _plain(_canon(new_value)), path)
        if found is not None:
            yield _run_divergence(*found)


def _step_divergence(i: int, old: Step, new: Step, old_data: Any, new_data: Any) -> Divergence:
    """The first differing field of two steps whose deterministic forms differ."""
    extra = sorted((old_data.keys() | new_data.keys()) - set(STEP_FIELDS))  # e.g. "index"
    for name in (*STEP_FIELDS, *extra):
        found = _first(old_data.get(name, _DEFAULTS.get(name, MISSING)),
                       new_data.get(name, _DEFAULTS.get(name, MISSING)), name)
        if found is not None:
            path, old_value, new_value = found
            break
    else:  # unreachable while the defaults above match Step's; report the whole step then
        path, old_value, new_value = "step", old_data, new_data
    reason = f"step {i} ({describe_step(old)}): {_differs(path, old_value, new_value)}"
    return Divergence(i, path, old_value, new_value, reason, old, new)


def _count_divergence(a: Trace, b: Trace) -> Divergence:
    """One trace has more steps: report the first step only the longer one has."""
    i = min(len(a.steps), len(b.steps))
    longer, side = (a, "old") if len(a.steps) > len(b.steps) else (b, "new")
    extra = longer.steps[i]
    value = _plain(_canon(extra.deterministic_dict()))
    more = len(longer.steps) - i
    reason = (f"step {i} ({describe_step(extra)}) is only in the {side} trace"
              f"{f' (and {more - 1} more after it)' if more > 1 else ''}: "
              f"old has {_count(len(a.steps))}, new has {len(b.steps)}")
    if side == "old":
        return Divergence(i, "steps", value, MISSING, reason, extra, None)
    return Divergence(i, "steps", MISSING, value, reason, None, extra)


def _run_divergence(path: str, old: Any, new: Any) -> Divergence:
    return Divergence(None, path, old, new, _differs(path, old, new))


def _first(old: Any, new: Any, path: str) -> tuple[str, Any, Any] | None:
    """The deepest first differing path of two JSON values, with the values there.

    Dict keys are visited in sorted order, list elements in order; a length difference
    reports the first extra element. Leaves compare by type as well as value, as their
    canonical JSON does (``1`` is not ``1.0`` is not ``true``).
    """
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            sub = _join(path, key)
            if key not in old:
                return sub, MISSING, new[key]
            if key not in new:
                return sub, old[key], MISSING
            found = _first(old[key], new[key], sub)
            if found is not None:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list):
        for i, (x, y) in enumerate(zip(old, new, strict=False)):
            found = _first(x, y, f"{path}[{i}]")
            if found is not None:
                return found
        if len(old) == len(new):
            return None
        i = min(len(old), len(new))
        return f"{path}[{i}]", old[i] if i < len(old) else MISSING, new[i] if i < len(new) else MISSING
    if type(old) is type(new) and (repr(old) == repr(new) if isinstance(old, float) else old == new):
        return None
    return path, old, new


# -- helpers -----------------------------------------------------------------------------------

def _canon(value: Any) -> str:
    """The canonical JSON the fingerprint hashes, or the closest JSON for what it refuses.

    A trace holding NaN, Infinity or non-string keys has no fingerprint, but it can still
    be compared: such values are written as Python's json writes them (NaN equals NaN),
    so diff never raises on a trace it was given.
    """
    try:
        return canonical_json(value)
    except (TypeError, ValueError):
        pass
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    except TypeError:  # keys of mixed types cannot be sorted
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)


def _plain(text: str) -> Any:
    """Canonical JSON back as plain data: tuples are lists and keys strings, as the fingerprint sees them."""
    return json.loads(text)


def _outcome(t: Trace) -> Any:
    return t.outcome.model_dump(mode="json") if t.outcome is not None else None


def _labels(t: Trace) -> dict[str, str]:
    return {k: v for k, v in t.labels.items() if k not in VOLATILE_LABELS}


def _join(path: str, key: str) -> str:
    """``args`` + ``to`` → ``args.to``; keys that are not identifiers go in brackets, JSON-quoted."""
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def describe_step(step: Step) -> str:
    """A step in a few words for a sentence: ``tool send_email by writer``."""
    target = f" {_short(step.target, 40)}" if step.target else ""
    return f"{step.kind.value}{target} by {_short(step.agent, 40)}"


def _count(n: int) -> str:
    return f"{n} step{'' if n == 1 else 's'}"


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _differs(path: str, old: Any, new: Any) -> str:
    """``path differs: old → new`` with both values cut around where they first differ.

    Two long strings that differ at character 300 would otherwise both show as the same
    80-character prefix, which reads as "differs: x → x".
    """
    old_text, new_text = _json_text(old), _json_text(new)
    start = 0
    if len(old_text) > _SHOWN or len(new_text) > _SHOWN:
        common = next((i for i, (x, y) in enumerate(zip(old_text, new_text, strict=False)) if x != y),
                      min(len(old_text), len(new_text)))
        start = max(0, common - _SHOWN // 4)
    return f"{path} differs: {_window(old_text, start)} → {_window(new_text, start)}"


def _json_text(value: Any) -> str:
    """One line of JSON (JSON escapes line breaks; the few Unicode ones it keeps are escaped here)."""
    if value is MISSING:
        return "<missing>"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")


def _window(text: str, start: int) -> str:
    """``text[start:]`` cut to :data:`_SHOWN` characters, with ``…`` where something was left out."""
    head = "…" if start else ""
    body = text[start:]
    return head + (body if len(body) <= _SHOWN else body[: _SHOWN - 1] + "…")
