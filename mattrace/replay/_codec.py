"""Storing boundary results and errors so that replay hands back the same Python objects.

A trace keeps a JSON view of each result; replay must give the code under test what the
real call returned: a ``list[Doc]`` and not a list of dicts, a litellm ``ModelResponse``
with its choices, a ``KeyError`` and not a string. So a cassette stores values with just
enough type information to rebuild them: pydantic models and dataclasses by their
import path, tuples, sets and bytes by marker, everything JSON-able as is. A value with
no such form is stored as *unstorable*; replaying it is a ``ReplayMismatch`` that says
which type to make storable, never a silently different object.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import math
from typing import Any

from pydantic import BaseModel

from mattrace.errors import ReplayMismatch

__all__ = ["decode_error", "decode_value", "encode_error", "encode_value", "ReplayedError"]

_MARK = "$mt"
_MAX_DEPTH = 64


class ReplayedError(Exception):
    """Stands in for a recorded exception whose class cannot be imported at replay."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import(path: str) -> Any:
    module, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def encode_value(value: Any, _depth: int = 0) -> Any:
    """A JSON-able encoding of ``value`` that :func:`decode_value` turns back into it."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if _depth > _MAX_DEPTH:
        return {_MARK: "unstorable", "type": _path(type(value)), "repr": "<nested too deep>"}
    if isinstance(value, float):
        return value if math.isfinite(value) else {_MARK: "float", "value": repr(value)}
    if isinstance(value, list):
        return [encode_value(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        keys = list(value)
        # canonical JSON sorts keys: a dict in another order keeps it as a list of items,
        # because code under test may serialise it (json.dumps) and an LLM prompt would change
        if all(isinstance(k, str) for k in keys) and _MARK not in value and keys == sorted(keys):
            return {k: encode_value(v, _depth + 1) for k, v in value.items()}
        return {_MARK: "dict", "items": [[encode_value(k, _depth + 1), encode_value(v, _depth + 1)]
                                         for k, v in value.items()]}
    if isinstance(value, tuple):
        return {_MARK: "tuple", "items": [encode_value(v, _depth + 1) for v in value]}
    if isinstance(value, set | frozenset):
        return {_MARK: "frozenset" if isinstance(value, frozenset) else "set",
                "items": sorted((encode_value(v, _depth + 1) for v in value), key=repr)}
    if isinstance(value, bytes):
        return {_MARK: "bytes", "b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, BaseModel):
        encoded = {_MARK: "model", "type": _path(type(value)), "data": value.model_dump(mode="json")}
        # private attributes carry what model_dump leaves out (litellm's provider and cost)
        private = {k: encode_value(v, _depth + 1) for k, v in (value.__pydantic_private__ or {}).items()}
        if private:
            encoded["private"] = private
        return encoded
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode_value(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value)}
        return {_MARK: "dataclass", "type": _path(type(value)), "fields": fields}
    return {_MARK: "unstorable", "type": _path(type(value)), "repr": repr(value)[:200]}


def decode_value(data: Any, where: str = "the recorded result") -> Any:
    """The value :func:`encode_value` encoded.

    Raises:
        ReplayMismatch: the value could not be stored, or its type no longer imports.
    """
    if isinstance(data, list):
        return [decode_value(v, where) for v in data]
    if not isinstance(data, dict):
        return data
    mark = data.get(_MARK)
    if mark is None:
        return {k: decode_value(v, where) for k, v in data.items()}
    if mark == "float":
        return float(data["value"])
    if mark == "dict":
        return {decode_value(k, where): decode_value(v, where) for k, v in data["items"]}
    if mark in ("tuple", "set", "frozenset"):
        items = [decode_value(v, where) for v in data["items"]]
        return tuple(items) if mark == "tuple" else set(items) if mark == "set" else frozenset(items)
    if mark == "bytes":
        return base64.b64decode(data["b64"])
    if mark == "unstorable":
        raise ReplayMismatch(f"{where} was a {data['type']} ({data['repr']}), which a cassette cannot store; "
                             "return JSON-able data, a pydantic model or a dataclass to replay it")
    try:
        cls = _import(data["type"])
    except (ImportError, AttributeError) as exc:
        raise ReplayMismatch(f"{where} was a {data['type']}, which no longer imports ({exc})") from None
    if mark == "model":
        try:
            model = cls.model_validate(data["data"])
        except Exception:
            model = cls(**data["data"])   # provider types (litellm) build themselves in __init__
        for key, value in (data.get("private") or {}).items():
            try:
                setattr(model, key, decode_value(value, where))
            except (AttributeError, TypeError, ValueError):
                pass   # a private attribute this version no longer has
        return model
    if mark == "dataclass":
        return cls(**{k: decode_value(v, where) for k, v in data["fields"].items()})
    raise ReplayMismatch(f"{where}: unknown stored value kind {mark!r}; was the cassette written by a newer mattrace?")


def encode_error(error: BaseException) -> dict[str, Any]:
    """An exception as its class, args, message and JSON-able attributes."""
    attrs = {k: encode_value(v) for k, v in vars(error).items()
             if not k.startswith("_") and isinstance(v, str | int | float | bool | type(None))}
    return {"type": _path(type(error)), "message": str(error), "args": encode_value(list(error.args)),
            "attrs": attrs}


def decode_error(data: dict[str, Any]) -> BaseException:
    """The recorded exception, rebuilt without calling its ``__init__`` (whose signature varies)."""
    try:
        cls = _import(data["type"])
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(f"{data['type']} is not an exception class")
        error: BaseException = cls.__new__(cls)
        error.args = tuple(decode_value(data.get("args") or []))
        for key, value in (data.get("attrs") or {}).items():
            try:
                setattr(error, key, decode_value(value))
            except AttributeError:
                pass
        return error
    except Exception:
        return ReplayedError(str(data.get("type")), str(data.get("message")))
