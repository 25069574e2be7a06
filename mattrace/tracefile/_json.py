"""JSON from files anyone may have written, parsed so that no input crashes or stalls a reader.

``json.loads`` is fast and exact, and three inputs still break what comes after it: values
nested thousands deep (a ``RecursionError`` in the parser or in any later walk over the
value) and integers longer than Python converts (a ``ValueError`` that is no JSON error).
:func:`parse_json` turns both into one :class:`JSONInputError` with a reason a person can
act on. Lone UTF-16 surrogates (``"\\ud83d"``, an undecodable file name) are kept as they
were recorded: a trace round-trips exactly, and whoever prints one escapes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

__all__ = ["JSONInputError", "MAX_DEPTH", "parse_json", "too_deep"]

MAX_DEPTH = 100
"""How deep arrays and objects may nest. A trace's deepest values (an LLM request's messages,
tool calls and their arguments) nest about ten deep; a hundred leaves room for any real one."""


class JSONInputError(ValueError):
    """The text is not JSON a reader can use (the message says why)."""


def parse_json(data: bytes | str) -> Any:
    """The value of a JSON text, nested at most :data:`MAX_DEPTH` deep.

    Raises:
        JSONInputError: not JSON, not UTF-8, nested too deep, or a number too long to convert.
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise JSONInputError(f"values nested more than {MAX_DEPTH} deep") from None
    except UnicodeDecodeError as exc:
        raise JSONInputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"not valid JSON ({exc})") from None
    except ValueError as exc:   # an integer past the interpreter's conversion limit
        raise JSONInputError(f"a number too long to read ({exc})") from None
    marks = data.count(b"[") + data.count(b"{") if isinstance(data, bytes) else data.count("[") + data.count("{")
    if marks > MAX_DEPTH and too_deep(value):
        raise JSONInputError(f"values nested more than {MAX_DEPTH} deep")
    return value


def too_deep(value: Any) -> bool:
    """Whether ``value`` nests deeper than :data:`MAX_DEPTH` (iteratively: no recursion to exhaust)."""
    if not isinstance(value, dict | list):
        return False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any] = item.values() if isinstance(item, dict) else item
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
