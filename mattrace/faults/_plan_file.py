"""Fault plans in TOML, for CI jobs that stress a whole suite without touching its code.

```toml
seed = 7                      # for probability schedules (optional, default 0)

[[fault]]
type = "Timeout"              # a fault class of mattrace.faults
target = "tool:search"
on_call = 2

[[fault]]
type = "Plausible"
target = "tool:price"
fn = "myproject.faults:off_by_one"    # module:function, called with the real result
```

Every mistake is a :class:`~mattrace.errors.FaultSpecError` that starts ``path:line:`` (the
line of the offending key), like contract files.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from mattrace._config import ConfigFile, Key, did_you_mean, read_config
from mattrace.errors import FaultSpecError
from mattrace.faults._injector import FaultPlan
from mattrace.faults._specs import FAULT_CLASSES, Fault

__all__ = ["load_faults"]

_PLAN_KEYS = ["seed", "fault"]
# A fault field's annotation (a string: the specs use postponed annotations) -> the getter that
# checks a value for it; messages name the Python type ("Timeout.seconds must be float").
_GETTERS: dict[str, Callable[..., Any]] = {"bool": ConfigFile.boolean, "int": ConfigFile.integer,
                                           "float": ConfigFile.number, "str": ConfigFile.string}


def load_faults(path: str | os.PathLike[str]) -> FaultPlan:
    """The fault plan of a TOML file: ``seed`` and one ``[[fault]]`` entry per fault.

    Raises:
        FaultSpecError: missing or unreadable file, invalid TOML, an unknown fault type or
            key, a wrong value type, a bad target pattern or schedule; ``path:line:`` first.
    """
    plan = read_config(path, FaultSpecError, "fault plan", plain_read_errors=True)
    doc = plan.doc
    plan.check_keys((), sorted(doc), _PLAN_KEYS, "at the top level")
    seed = plan.integer(("seed",), doc.get("seed", 0), expected="an integer")
    entries = doc.get("fault", [])
    if not isinstance(entries, list) or not entries:
        raise FaultSpecError("a fault plan needs at least one [[fault]] entry", path=plan.path,
                             line=plan.line(("fault",)) or 1)
    return FaultPlan(tuple(_fault(plan, ("fault", i), raw) for i, raw in enumerate(entries)), seed)


def _fault(plan: ConfigFile[FaultSpecError], at: Key, raw: dict[str, Any]) -> Fault:
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise plan.fail(at, "each [[fault]] needs type = \"<fault class>\", e.g. type = \"Timeout\"")
    cls = FAULT_CLASSES.get(kind)
    if cls is None:
        raise plan.fail((*at, "type"), f"unknown fault type {kind!r}{did_you_mean(kind, FAULT_CLASSES)}; "
                                       f"known: {', '.join(sorted(FAULT_CLASSES))}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "type":
            continue
        plan.check_keys(at, [key], sorted(fields), f"for {kind}")
        kwargs[key] = _value(plan, (*at, key), kind, fields[key], value)
    try:
        return cls(**kwargs)
    except FaultSpecError as exc:
        bad = next((k for k in fields if f": {k} must" in str(exc)), None) or next(
            (k for k in ("target", "on_call", "first", "probability", "version", "fn") if k in str(exc)), None)
        raise plan.fail((*at, bad) if bad else at, str(exc)) from None


def _value(plan: ConfigFile[FaultSpecError], at: Key, kind: str, field: dataclasses.Field[Any], value: Any) -> Any:
    name = f"{kind}.{field.name}"
    if field.name == "fn":
        return plan.function(at, value, name=name)
    expected = next((t for t in ("bool", "int", "float", "str") if t in str(field.type).split(" | ")), None)
    said = "a finite number" if expected == "float" else expected
    return value if expected is None else _GETTERS[expected](plan, at, value, name=name, expected=said)
