"""Entry points recorded in a script: ``python app.py`` records ``__main__:trip``.

No other process can import ``__main__:trip``: in ``mattrace replay`` the ``__main__`` module
is mattrace's own. The recorder keeps the script's absolute path beside the target
(``"script"``), and replay runs the function once the user names the script file:
``mattrace replay TRACE --entrypoint app.py:trip``. Naming it is the user vouching for it,
as ``--entrypoint module:function`` is for a module: a trace is data, so the stored path
alone is never loaded, only shown in the command that would load it.

The script is loaded as a module of its own name (not ``__main__``), so its
``if __name__ == "__main__":`` block does not run, and with its directory first on
``sys.path``, as ``python app.py`` has it, so its sibling imports resolve.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from mattrace.errors import ReplayMismatch, ReplayRefused

__all__ = ["MAIN", "is_script_name", "load_script_function", "script_refusal"]

MAIN = "__main__"


def is_script_name(named: str) -> bool:
    """Whether ``--entrypoint`` names a script file (``path/to/app.py:trip``), not a module."""
    path, sep, qualname = named.rpartition(":")
    return bool(sep) and path.endswith(".py") and bool(qualname)


def _shown(text: str) -> str:
    """A path from a file, safe to print: escaped unless it is printable text."""
    return text if text.isprintable() else ascii(text)


def _relative(script: str) -> str:
    """``script`` relative to the current directory when it is under it (a command to copy)."""
    try:
        return os.path.relpath(script) if Path(script).resolve().is_relative_to(Path.cwd()) else script
    except (ValueError, OSError):
        return script


def script_refusal(entry: dict[str, Any], *, path: str | Path, target: str, described: str) -> ReplayRefused:
    """The refusal of a ``__main__`` entry point, saying exactly which ``--entrypoint`` runs it."""
    qualname = target.partition(":")[2]
    script = entry.get("script")
    trace = shlex.quote(str(path))
    if isinstance(script, str) and script:
        shown = _shown(_relative(script))
        where = "" if Path(script).is_file() else (
            " (that is where it was when the run was recorded; it is not there now: name the script's path "
            "on this machine)")
        return ReplayRefused(
            f"{path}: this trace was recorded by a script run as `python {shown}`; its entry point is "
            f"{described}, which no other process can import as __main__. A trace is data: replay loads a "
            f"script only when you name it. If you trust this "
            f"trace to run {qualname} of {shown} with these arguments{where}:\n"
            f"  mattrace replay {trace} --entrypoint {shlex.quote(shown + ':' + qualname)}",
            path=path, target=target)
    return ReplayRefused(
        f"{path}: this trace was recorded in a program's __main__ module ({described}), which no other process "
        f"can import, and it does not say which script that was. Name the script file that defines {qualname} "
        f"(it is loaded as a module, so its `if __name__ == '__main__':` block does not run):\n"
        f"  mattrace replay {trace} --entrypoint path/to/script.py:{qualname}", path=path, target=target)


def load_script_function(named: str, entry: dict[str, Any], *, path: str | Path,
                         target: str) -> Callable[..., Any]:
    """The function ``named`` (``path/to/app.py:qualname``) names, for a trace whose target is ``target``.

    Raises:
        ReplayRefused: the trace's entry point is not in a script, or is another function or
            another file than the one named (checked before anything is loaded).
        ReplayMismatch: the file does not exist, loading it raised, or it has no such function.
    """
    file, _, qualname = named.rpartition(":")
    module, _, recorded = target.partition(":")
    if module != MAIN:
        raise ReplayRefused(f"{path}: the trace names {target} as its entry point, a module function; name it "
                            f"as such: --entrypoint {target}", path=path, target=target)
    if qualname != recorded:
        raise ReplayRefused(f"{path}: the trace names {recorded} (of a script) as its entry point, but you named "
                            f"{_shown(qualname)}; replay runs only the function the trace recorded",
                            path=path, target=target)
    script = entry.get("script")
    if isinstance(script, str) and script and Path(script).name != Path(file).name:
        raise ReplayRefused(f"{path}: the trace was recorded by the script {_shown(Path(script).name)}, but you "
                            f"named {_shown(file)}; replay runs only the script the trace recorded",
                            path=path, target=target)
    source = Path(file).resolve()
    if not source.is_file():
        raise ReplayMismatch(f"{path}: no script {_shown(file)} here (from {Path.cwd()})")
    obj: Any = _load(source, path)
    for part in qualname.split("."):
        namespace = getattr(obj, "__dict__", None)
        if not isinstance(namespace, dict | types.MappingProxyType) or part not in namespace:
            raise ReplayMismatch(f"{path}: the script {_shown(file)} defines no {qualname}")
        obj = namespace[part]
    if not callable(obj):
        raise ReplayMismatch(f"{path}: {qualname} in the script {_shown(file)} is not a function")
    return cast(Callable[..., Any], obj)


def _load(source: Path, path: str | Path) -> types.ModuleType:
    """Run the script as a module named after its file (or a private name if that one is taken)."""
    name = source.stem if source.stem.isidentifier() and source.stem not in sys.modules else \
        f"_mattrace_script_{abs(hash(str(source)))}"
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:
        raise ReplayMismatch(f"{path}: cannot load {source} as a Python script")
    module = importlib.util.module_from_spec(spec)
    if str(source.parent) not in sys.path:
        sys.path.insert(0, str(source.parent))   # as `python app.py` has it: its siblings import
    sys.modules[name] = module   # dataclasses and pickling look their module up there
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise ReplayMismatch(f"{path}: loading the script {source} raised {type(exc).__name__}: {exc}") from None
    return module
