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
import importlib
import os
import tomllib
from pathlib import Path
from typing import Any

from mattrace._toml import Key, LineMap, did_you_mean, got, toml_error, unknown_key
from mattrace.errors import FaultSpecError
from mattrace.faults._injector import FaultPlan
from mattrace.faults._specs import FAULT_CLASSES, Fault

__all__ = ["load_faults"]

_TYPES: dict[type, tuple[type, ...]] = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


def _error(path: str, line: int | None, message: str) -> FaultSpecError:
    err = FaultSpecError(f"{path}:{line}: {message}" if line is not None else f"{path}: {message}")
    vars(err).update(path=path, line=line)
    return err


def load_faults(path: str | os.PathLike[str]) -> FaultPlan:
    """The fault plan of a TOML file: ``seed`` and one ``[[fault]]`` entry per fault.

    Raises:
        FaultSpecError: missing or unreadable file, invalid TOML, an unknown fault type or
            key, a wrong value type, a bad target pattern or schedule; ``path:line:`` first.
    """
    file = os.fspath(path)
    try:
        text = Path(file).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise _error(file, None, "fault plan not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(file, None, f"cannot read fault plan: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, message = toml_error(text, str(exc))
        raise _error(file, line, f"invalid TOML: {message}") from None
    lines = LineMap(text)
    unknown = sorted(set(doc) - {"seed", "fault"})
    if unknown:
        raise _error(file, lines.get((unknown[0],)), unknown_key(unknown[0], "at the top level", ["seed", "fault"]))
    seed = doc.get("seed", 0)
    if type(seed) is not int:
        raise _error(file, lines.get(("seed",)), f"seed must be an integer, got {got(seed)}")
    entries = doc.get("fault", [])
    if not isinstance(entries, list) or not entries:
        raise _error(file, lines.get(("fault",)) or 1, "a fault plan needs at least one [[fault]] entry")
    return FaultPlan(tuple(_fault(file, lines, (("fault", i)), raw) for i, raw in enumerate(entries)), seed)


def _fault(file: str, lines: LineMap, at: Key, raw: dict[str, Any]) -> Fault:
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise _error(file, lines.get(at), "each [[fault]] needs type = \"<fault class>\", e.g. type = \"Timeout\"")
    cls = FAULT_CLASSES.get(kind)
    if cls is None:
        raise _error(file, lines.get((*at, "type")), f"unknown fault type {kind!r}{did_you_mean(kind, FAULT_CLASSES)}; "
                                                     f"known: {', '.join(sorted(FAULT_CLASSES))}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "type":
            continue
        where = lines.get((*at, key))
        if key not in fields:
            raise _error(file, where, unknown_key(key, f"for {kind}", sorted(fields)))
        kwargs[key] = _value(file, where, kind, fields[key], value)
    try:
        return cls(**kwargs)
    except FaultSpecError as exc:
        bad = next((k for k in ("target", "on_call", "first", "probability", "version", "fn") if k in str(exc)),
                   None)
        raise _error(file, lines.get((*at, bad)) if bad else lines.get(at), str(exc)) from None


def _value(file: str, line: int | None, kind: str, field: dataclasses.Field[Any], value: Any) -> Any:
    if field.name == "fn":
        if not isinstance(value, str) or ":" not in value:
            raise _error(file, line, f"{kind}.fn must be \"module:function\", got {got(value)}")
        module, _, name = value.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise _error(file, line, f"{kind}.fn {value!r} does not import ({exc})") from None
    annotation = str(field.type)
    expected = next((t for t in (bool, int, float, str) if t.__name__ in annotation.split(" | ")), None)
    if expected is not None and (not isinstance(value, _TYPES[expected]) or
                                 (expected is not bool and isinstance(value, bool))):
        raise _error(file, line, f"{kind}.{field.name} must be {expected.__name__}, got {got(value)}")
    return value
