"""Every public module's ``__all__`` is exactly its public names (httpx's ``test_exported_members``).

A module is public when no part of its dotted name starts with ``_``. Its public names are
what it binds at top level without a leading underscore: functions, classes, assignments,
and, in a package's ``__init__``, names it imports from its own submodules (re-exports).
Imports of other modules' names are the module's own business and do not count. A name
missing from ``__all__`` is API nobody decided to publish; a name in ``__all__`` that the
module does not define is a promise it does not keep.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import mattrace

# names with a meaning to a tool, not to a reader of the API
TOOL_NAMES = {"pytest_plugins"}
# underscored names that are public all the same
DUNDER_API = {"__version__"}


def _public_modules() -> list[str]:
    names = ["mattrace"]
    for info in pkgutil.walk_packages(mattrace.__path__, "mattrace."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return names


def _is_alias(name: str) -> bool:
    """A moved module's old name: it replaces itself with the new module (see mattrace._moved)."""
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None
    return "\n__alias__ = True\n" in Path(spec.origin).read_text(encoding="utf-8")


PUBLIC = [name for name in _public_modules() if not _is_alias(name)]


def _bound_names(name: str) -> set[str]:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None
    is_package = spec.submodule_search_locations is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and is_package and (node.module or "").startswith(name + "."):
            names.update(a.asname or a.name for a in node.names)
    return {n for n in names if (not n.startswith("_") or n in DUNDER_API) and n not in TOOL_NAMES}


def test_the_walk_finds_the_public_modules() -> None:
    """The list covers the packages and public modules (so the test below checks something)."""
    assert {"mattrace", "mattrace.recording", "mattrace.integrations.otel", "mattrace.io", "mattrace.testing",
            "mattrace.tracefile", "mattrace.cli", "mattrace.provenance"} <= set(PUBLIC)
    assert "mattrace.recording.otel" not in PUBLIC   # an alias of the moved module
    assert "mattrace.recording.provenance" not in PUBLIC   # the context flow moved to mattrace.provenance


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_exactly_the_public_names(name: str) -> None:
    """``__all__`` lists every public name the module binds, and nothing else."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    bound = _bound_names(name)
    assert sorted(bound - set(exported)) == [], f"public in {name} but not in __all__"
    assert sorted(set(exported) - bound - set(getattr(module, "_LAZY", ()))) == [], \
        f"in {name}.__all__ but not bound there"
    assert all(hasattr(module, n) for n in exported)
