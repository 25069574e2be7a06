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
import binascii
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mattrace.errors import RecordedError, ReplayMismatch
from mattrace.recording.redact import REDACTED, Redactor
from mattrace.replay._trust import Allowance, current_allowance, error_class, settable, value_class
from mattrace.trace import FLOAT_FREE_TYPES

__all__ = ["decode_error", "decode_value", "encode_error", "encode_value", "float_free"]

_MARK = "$mt"
_MAX_DEPTH = 64


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def encode_value(value: Any, redact: Redactor | None = None, _depth: int = 0) -> Any:
    """A JSON-able encoding of ``value`` that :func:`decode_value` turns back into it.

    With ``redact``, secrets are replaced in the same walk: in strings, dict keys, bytes
    (as text), model data, dataclass fields and reprs, and under secret-like keys. What
    comes back on replay is then the redacted value, as the trace shows it.
    """
    if redact is None and type(value) is dict:   # what most tools return, tested first
        flat = _flat_dict(value)
        if flat is not None:
            return flat
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


_SCALARS = FLOAT_FREE_TYPES


def float_free(value: Any) -> bool:
    """Whether ``value`` is a scalar other than a float, or a dict or list of such scalars (what
    most tools take and return). Its encoding then holds no float either, so the cassette line
    needs no check of float notation (:func:`~mattrace.trace.float_free_canonical_bytes`)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict:   # keys too: a dict with other keys is encoded as a list of [key, value] items
        return _SCALARS.issuperset(map(type, value.values())) and _SCALARS.issuperset(map(type, value))
    if kind is list:
        return _SCALARS.issuperset(map(type, value))
    return False


def _flat_dict(value: dict[Any, Any]) -> dict[str, Any] | None:
    """:func:`encode_value` of a dict of text keys and plain scalars (what most tools return),
    without a call per entry; None for any other dict (the walk encodes it)."""
    types = set(map(type, value.values()))
    if not types <= _FLAT_SCALARS or (float in types and not all(
            math.isfinite(v) for v in value.values() if type(v) is float)):
        return None
    keys = list(value)
    if not _TEXT.issuperset(map(type, keys)) or _MARK in value:
        return None
    if keys == sorted(keys):
        return dict(value)
    return {_MARK: "dict", "items": [[k, v] for k, v in value.items()]}


_FLAT_SCALARS = _SCALARS | {float}
_TEXT = frozenset({str})


def _under(key: Any, value: Any, redact: Redactor | None, child: Callable[[Any], Any]) -> Any:
    """The encoding of ``value`` stored under ``key``: a secret-like key's value is redacted whole."""
    if redact is not None and value is not None and redact.is_secret_key(key):
        return REDACTED
    return child(value)


def decode_value(data: Any, where: str = "the recorded result", *, path: str | Path = "the cassette",
                 allowance: Allowance | None = None) -> Any:
    """The value :func:`encode_value` encoded, rebuilt only into classes replay is allowed to build.

    A cassette is data: a stored class name is looked up through :mod:`mattrace.replay._trust`
    (registered, allowed or mattrace's own classes), never imported or called on its own say.

    Args:
        data: the stored value.
        where: what it is, for errors (``step 3: the recorded result of tool search``).
        path: the cassette file, for errors.
        allowance: the modules the user allowed (default: the one in force here).

    Raises:
        ReplayRefused: the value names a class replay may not build (or not a class at all).
        ReplayMismatch: the value could not be stored, is malformed, or its class no longer imports.
    """
    allowance = allowance if allowance is not None else current_allowance()
    try:
        return _decode(data, where, path, allowance)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError, binascii.Error) as exc:
        raise ReplayMismatch(f"{where} in the cassette {path} is malformed ({type(exc).__name__}: {exc}); "
                             "record the run again") from None


def _decode(data: Any, where: str, path: str | Path, allowance: Allowance) -> Any:
    def again(value: Any) -> Any:
        return _decode(value, where, path, allowance)

    if isinstance(data, list):
        return [again(v) for v in data]
    if not isinstance(data, dict):
        return data
    mark = data.get(_MARK)
    if mark is None:
        return {k: again(v) for k, v in data.items()}
    if mark == "float":
        return float(data["value"])
    if mark == "dict":
        return {again(k): again(v) for k, v in data["items"]}
    if mark in ("tuple", "set", "frozenset"):
        items = [again(v) for v in data["items"]]
        return tuple(items) if mark == "tuple" else set(items) if mark == "set" else frozenset(items)
    if mark == "bytes":
        return base64.b64decode(data["b64"], validate=True)
    if mark == "unstorable":
        raise ReplayMismatch(f"{where} was a {data['type']} ({data['repr']}), which a cassette cannot store; "
                             "return JSON-able data, a pydantic model or a dataclass to replay it")
    if mark not in ("model", "dataclass"):
        raise ReplayMismatch(f"{where}: unknown stored value kind {mark!r}; was the cassette written by a "
                             "newer mattrace?")
    cls: Any = value_class(data.get("type"), mark, where, path, allowance)
    if mark == "dataclass":
        fields = {f.name: f for f in dataclasses.fields(cls)}
        stored = data["fields"]
        unknown = sorted(set(stored) - set(fields))
        if unknown:
            raise ReplayMismatch(f"{where}: the recorded {data['type']} has fields {unknown} that the class "
                                 "no longer has")
        # a field with init=False is computed by the class itself (in __post_init__)
        return cls(**{k: again(v) for k, v in stored.items() if fields[k].init})
    try:
        model = cls.model_validate(data["data"])
    except Exception:
        model = _build(cls, data["data"])
    private = data.get("private") or {}
    declared = getattr(cls, "__private_attributes__", {})
    for key, value in private.items():
        if key not in declared:
            continue   # a private attribute this version no longer has (or one it never had)
        try:
            setattr(model, key, again(value))
        except (AttributeError, TypeError, ValueError):
            pass
    return model


def _build(cls: Any, data: dict[str, Any]) -> Any:
    """A provider type that does not validate its own dump, built the way its library builds it.

    litellm's types build themselves in ``__init__``; the OpenAI and Anthropic SDKs build their
    response types from the API's JSON without validating it (``construct``, recursive), so an
    answer with a field the API left out (which the dump writes as null) does not validate.
    """
    construct = getattr(cls, "construct", None)
    if str(getattr(cls, "__module__", "")).startswith(("openai.", "anthropic.")) and callable(construct):
        return construct(**data)
    return cls(**data)


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


def decode_error(data: dict[str, Any], *, allowance: Allowance | None = None) -> BaseException:
    """The recorded exception, rebuilt as its own class when replay may, else a :class:`RecordedError`.

    A class is rebuilt without calling its ``__init__`` (whose signature varies), and only when
    building it runs none of its code or the user trusts it (see :func:`error_class`); the
    module it names is never imported unless allowed.
    """
    allowance = allowance if allowance is not None else current_allowance()
    type_name = data.get("type")
    message = str(data.get("message"))
    try:
        args = tuple(decode_value(data.get("args") or [], "a recorded error", allowance=allowance))
        attrs = {k: decode_value(v, "a recorded error", allowance=allowance)
                 for k, v in (data.get("attrs") or {}).items() if isinstance(k, str)}
    except ReplayMismatch:
        args, attrs = (message,), {}
    cls = error_class(type_name, allowance)
    if cls is None:
        return RecordedError(type_name if isinstance(type_name, str) else repr(type_name), message, attrs)
    try:
        error: BaseException = cls.__new__(cls, *args)
    except Exception:   # a trusted class whose own __new__ wants other arguments
        return RecordedError(str(type_name), message, attrs)
    if error.args != args:
        BaseException.args.__set__(error, args)   # type: ignore[attr-defined]
    for key, value in attrs.items():
        if settable(error, key):
            try:
                setattr(error, key, value)
            except (AttributeError, TypeError):
                pass
    return error
