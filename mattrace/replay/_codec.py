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
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from mattrace.errors import ReplayMismatch
from mattrace.recording.redact import REDACTED, Redactor

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


def encode_value(value: Any, redact: Redactor | None = None, _depth: int = 0) -> Any:
    """A JSON-able encoding of ``value`` that :func:`decode_value` turns back into it.

    With ``redact``, secrets are replaced in the same walk: in strings, dict keys, bytes
    (as text), model data, dataclass fields and reprs, and under secret-like keys. What
    comes back on replay is then the redacted value, as the trace shows it.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return redact.text(value) if redact is not None else value
    if _depth > _MAX_DEPTH:
        return {_MARK: "unstorable", "type": _path(type(value)), "repr": "<nested too deep>"}

    def child(v: Any) -> Any:
        return encode_value(v, redact, _depth + 1)

    if isinstance(value, float):
        return value if math.isfinite(value) else {_MARK: "float", "value": repr(value)}
    if isinstance(value, list):
        return [child(v) for v in value]
    if isinstance(value, dict):
        keys = list(value)
        # canonical JSON sorts keys: a dict in another order keeps it as a list of items,
        # because code under test may serialise it (json.dumps) and an LLM prompt would change
        if all(isinstance(k, str) for k in keys) and _MARK not in value and keys == sorted(keys):
            return redact.mapping(value, child) if redact is not None else {k: child(v) for k, v in value.items()}
        return {_MARK: "dict", "items": [[child(k), _under(k, v, redact, child)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {_MARK: "tuple", "items": [child(v) for v in value]}
    if isinstance(value, set | frozenset):
        return {_MARK: "frozenset" if isinstance(value, frozenset) else "set",
                "items": sorted((child(v) for v in value), key=repr)}
    if isinstance(value, bytes):
        if redact is not None:   # as text, so a key inside is found; exactly the same bytes if none is
            value = redact.text(value.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
        return {_MARK: "bytes", "b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, BaseModel):
        data = value.model_dump(mode="json")
        encoded = {_MARK: "model", "type": _path(type(value)), "data": redact(data) if redact is not None else data}
        # private attributes carry what model_dump leaves out (litellm's provider and cost)
        private = {k: _under(k, v, redact, child) for k, v in (value.__pydantic_private__ or {}).items()}
        if private:
            encoded["private"] = private
        return encoded
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _under(f.name, getattr(value, f.name), redact, child) for f in dataclasses.fields(value)}
        return {_MARK: "dataclass", "type": _path(type(value)), "fields": fields}
    text = repr(value)[:200]
    return {_MARK: "unstorable", "type": _path(type(value)), "repr": redact.text(text) if redact is not None else text}


def _under(key: Any, value: Any, redact: Redactor | None, child: Callable[[Any], Any]) -> Any:
    """The encoding of ``value`` stored under ``key``: a secret-like key's value is redacted whole."""
    if redact is not None and value is not None and redact.is_secret_key(key):
        return REDACTED
    return child(value)


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


def encode_error(error: BaseException, redact: Redactor | None = None) -> dict[str, Any]:
    """An exception as its class, args, message and JSON-able attributes.

    With ``redact``, secrets are replaced in all of them; the values of attributes with
    secret-like names (``token``) are replaced wherever they recur in the message and args too.
    """
    scoped = redact.for_error(error) if redact is not None else None

    def child(v: Any) -> Any:
        return encode_value(v, scoped)

    attrs = {k: _under(k, v, scoped, child) for k, v in vars(error).items()
             if not k.startswith("_") and isinstance(v, str | int | float | bool | type(None))}
    message = str(error)
    return {"type": _path(type(error)), "message": scoped.text(message) if scoped is not None else message,
            "args": child(list(error.args)), "attrs": attrs}


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
