"""Trust and side effects of MCP tools and resources: from the server's annotations, the
labels it sends in ``_meta``, and what the user configured.

The MCP tool annotations say what a tool does: ``readOnlyHint`` (default false: it may
change its environment), ``destructiveHint`` (default true) and ``openWorldHint`` (default
true: it reaches an open world, the web or an inbox, whose text anyone may have written).
mattrace reads them with the specification's defaults, so an unannotated tool is a side
effect with untrusted output, the cautious reading:

* ``side_effect`` = not read-only;
* the output is untrusted when the tool is open-world.

Labels a server sends in ``_meta`` (on a tool's definition, a result, or one content block)
win over the annotations, and what the user configured (``--trusted``, ``--untrusted``,
``--side-effect``, ``--read-only`` patterns) wins over both. A ``_meta`` key counts when its
last segment (after any ``/`` namespace) is ``trusted`` or ``untrusted`` (a boolean),
``trust`` (``"trusted"`` or ``"untrusted"``), or ``labels`` / ``security_label`` (a string or a
list holding ``"trusted"`` or ``"untrusted"``). Annotations are hints from the server, not
guarantees: a server that lies about them is caught by pinning, not here.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mattrace.errors import McpError

__all__ = ["Marks", "ToolMarks", "meta_labels", "meta_trust"]

_TRUST_VALUES = {"trusted": True, "untrusted": False}


def meta_trust(meta: Any) -> bool | None:
    """What a ``_meta`` object says about trust: True, False, or None when it says nothing."""
    if not isinstance(meta, Mapping):
        return None
    verdict: bool | None = None
    for key, value in meta.items():
        last = str(key).rsplit("/", 1)[-1].lower()
        said: bool | None = None
        if last in ("trusted", "untrusted") and isinstance(value, bool):
            said = value if last == "trusted" else not value
        elif last == "trust" and isinstance(value, str):
            said = _TRUST_VALUES.get(value.lower())
        elif last in ("labels", "security_label", "security_labels"):
            values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
            found = {_TRUST_VALUES[v.lower()] for v in values if isinstance(v, str) and v.lower() in _TRUST_VALUES}
            said = (False not in found) if found else None
        if said is False:
            return False   # any label that says untrusted wins
        if said is True:
            verdict = True
    return verdict


def meta_labels(meta: Any) -> dict[str, Any]:
    """The trust-bearing keys of a ``_meta`` object, kept on the step as the server sent them."""
    if not isinstance(meta, Mapping):
        return {}
    keys = ("trusted", "untrusted", "trust", "labels", "security_label", "security_labels")
    return {str(k): v for k, v in meta.items() if str(k).rsplit("/", 1)[-1].lower() in keys}


@dataclass(frozen=True)
class ToolMarks:
    """How one tool call is recorded: a side effect or not, trusted output or not, and why."""

    side_effect: bool
    trusted: bool
    destructive: bool
    why: str
    configured_trust: bool = False
    """The user configured this tool's trust: labels in results do not change it."""


def _patterns(values: Iterable[str], what: str) -> tuple[str, ...]:
    out = tuple(values)
    for value in out:
        kind, colon, name = value.partition(":")
        if not colon or not name or kind not in ("tool", "resource"):
            raise McpError(f"{what} {value!r}: expected tool:NAME or resource:URI (globs allowed, e.g. tool:git_*)")
    return out


@dataclass(frozen=True)
class Marks:
    """The user's overrides, as ``tool:GLOB`` / ``resource:GLOB`` patterns.

    Raises:
        McpError: a pattern that is not ``tool:...`` or ``resource:...``.
    """

    trusted: tuple[str, ...] = ()
    untrusted: tuple[str, ...] = ()
    side_effect: tuple[str, ...] = ()
    read_only: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("trusted", "untrusted", "side_effect", "read_only"):
            object.__setattr__(self, name, _patterns(getattr(self, name), f"--{name.replace('_', '-')}"))

    @staticmethod
    def _hit(patterns: tuple[str, ...], kind: str, name: str) -> bool:
        return any(p.partition(":")[0] == kind and fnmatch.fnmatchcase(name, p.partition(":")[2]) for p in patterns)

    def tool(self, name: str, definition: dict[str, Any] | None) -> ToolMarks:
        """The marks of a call of tool ``name`` whose listed definition is ``definition``."""
        annotations = (definition or {}).get("annotations") or {}
        if not isinstance(annotations, dict):
            annotations = {}
        read_only = annotations.get("readOnlyHint") is True
        open_world = annotations.get("openWorldHint", True) is not False
        destructive = not read_only and annotations.get("destructiveHint", True) is not False
        why = "annotations" if definition is not None and annotations else (
            "the tool was not listed: MCP defaults" if definition is None else "no annotations: MCP defaults")
        trusted = not open_world
        labelled = meta_trust((definition or {}).get("_meta"))
        if labelled is not None:
            trusted, why = labelled, "_meta labels"
        side_effect = not read_only
        if self._hit(self.side_effect, "tool", name):
            side_effect, why = True, "configured"
        if self._hit(self.read_only, "tool", name):
            side_effect, destructive, why = False, False, "configured"
        configured = False
        if self._hit(self.trusted, "tool", name):
            trusted, why, configured = True, "configured", True
        if self._hit(self.untrusted, "tool", name):
            trusted, why, configured = False, "configured", True
        return ToolMarks(side_effect=side_effect, trusted=trusted, destructive=destructive, why=why,
                         configured_trust=configured)

    def resource(self, uri: str) -> bool | None:
        """The configured trust of resource ``uri``: True, False or None (not configured)."""
        if self._hit(self.untrusted, "resource", uri):
            return False
        if self._hit(self.trusted, "resource", uri):
            return True
        return None
