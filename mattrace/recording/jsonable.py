"""Conversion of arbitrary Python values into the JSON-able data a step stores.

Boundary functions return whatever they like (pydantic models, dataclasses, sets,
provider response objects). A trace must hold plain JSON so it can be hashed, diffed and
loaded anywhere; anything with no JSON form is kept as its ``repr`` rather than dropped.
"""

from __future__ import annotations

import dataclasses
import math
from enum import Enum
from typing import Any

from pydantic import BaseModel

__all__ = [
    "to_jsonable",
]


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-able copy of ``value`` (dict keys become strings, sets sorted lists)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if _depth > 64:
        return repr(value)
    if isinstance(value, float):
        # the strings pydantic's ser_json_inf_nan="strings" uses, so both paths agree
        return value if math.isfinite(value) else ("NaN" if math.isnan(value) else
                                                   "Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v, _depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((to_jsonable(v, _depth + 1) for v in value), key=repr)
    if isinstance(value, Enum):
        return to_jsonable(value.value, _depth + 1)
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump(mode="json"), _depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value), _depth + 1)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return repr(value)
