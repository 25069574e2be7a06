"""What replay may run, import and rebuild: a trace and its cassette are data, never code.

Traces and cassettes name code as ``module:qualname`` strings: the entry point to re-run,
the class of each stored value, the class of each recorded exception. The files may come
from anyone (a CI artefact of someone else's branch), so a name in a file is never enough
to import a module (importing runs its code) or call something (a "class" could be
``subprocess:run``). What replay does instead:

* **entry point**: runs only a function the program registered (``@mattrace.record``,
  ``@mattrace.replayable``), a registered one in a module the user allowed (imported for
  that), or the one the user named (``--entrypoint``, ``entrypoint=``). Else
  :class:`~mattrace.errors.ReplayRefused`, showing the entry point and the flag to allow it.
* **values**: rebuilt only into a dataclass or pydantic model that is registered, one of
  mattrace's own result types, or defined in an allowed module (``--allow-module``,
  :func:`allow_modules`) or a response module of the clients mattrace intercepts
  (:data:`BUILTIN_MODULES`); the class must really be defined under the stored name (an
  allowed module's re-export of another module's class does not count). Else refused.
* **exceptions**: an ``Exception`` subclass that is a builtin, registered, in an allowed
  module, or in a module the program already imported (looked up, never imported) is
  rebuilt as itself without running its code (no ``__init__``, no Python ``__new__``,
  ``__setattr__`` or attribute setters); anything else comes back as
  :class:`~mattrace.errors.RecordedError` with the recorded type name, message and attributes.

Allowances are scoped with a context variable (:func:`allow_modules`), read once when a
cassette is opened, so concurrent replays with different allowances do not mix.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import shlex
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mattrace.errors import ReplayMismatch, ReplayRefused
from mattrace.recording.boundaries import Doc
from mattrace.recording.replayable import qualified_name, registered_entrypoint, registered_type
from mattrace.replay._script import MAIN, is_script_name, load_script_function, script_refusal
from mattrace.trace import describe_entrypoint

__all__ = ["Allowance", "allow_modules", "BUILTIN_MODULES", "current_allowance",
           "entrypoint_function", "error_class", "settable", "value_class"]

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_NAME = re.compile(rf"({_DOTTED}):({_DOTTED})")
_MODULE = re.compile(_DOTTED)

BUILTIN_MODULES: tuple[str, ...] = ("litellm.types", "openai.types", "anthropic.types", "mcp.types")
"""Modules whose models replay rebuilds without being told: the response types of the LLM and MCP
clients mattrace intercepts (generated data models, no behaviour of their own)."""

_BUILTIN_TYPES: dict[str, type] = {qualified_name(Doc): Doc}
_INERT_HOOKS = ("__new__", "__setattr__", "__del__")


@dataclass(frozen=True)
class Allowance:
    """The modules (each with its submodules) the user allowed replay to import and rebuild from."""

    modules: tuple[str, ...] = ()

    def covers(self, module: str) -> bool:
        """Whether ``module`` is one of the allowed modules or inside one."""
        return any(module == m or module.startswith(m + ".") for m in self.modules)


_NOTHING = Allowance()
_current: ContextVar[Allowance] = ContextVar("mattrace_replay_allowance", default=_NOTHING)


def current_allowance() -> Allowance:
    """The allowance in force here (what :func:`allow_modules` blocks around this code added)."""
    return _current.get()


@contextmanager
def allow_modules(*modules: str) -> Iterator[Allowance]:
    """Within the block, replay may import ``modules`` (and their submodules) for their registered
    entry points, and rebuild cassette values into the dataclasses and pydantic models they define.

    Cassettes opened inside the block keep the allowance for their whole run.

    Raises:
        ReplayMismatch: a name is not a dotted module name.
    """
    for module in modules:
        if not isinstance(module, str) or not _MODULE.fullmatch(module):
            raise ReplayMismatch(f"allow_modules: {module!r} is not a module name (like pkg or pkg.sub)")
    token = _current.set(Allowance(_current.get().modules + tuple(modules)))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def _split(name: object) -> tuple[str, str] | None:
    match = _NAME.fullmatch(name) if isinstance(name, str) else None
    return (match.group(1), match.group(2)) if match else None


def _lookup(module_name: str, qualname: str, *, may_import: bool) -> Any:
    """The object named, found through ``__dict__`` only (no module ``__getattr__``, no
    descriptors); ``None`` if absent. Imports the module only when ``may_import``."""
    module = sys.modules.get(module_name)
    if module is None:
        if not may_import:
            return None
        module = importlib.import_module(module_name)
    obj: Any = module
    for part in qualname.split("."):
        namespace = getattr(obj, "__dict__", None)
        if not isinstance(namespace, dict | types.MappingProxyType) or part not in namespace:
            return None
        obj = namespace[part]
    return obj


def _allow_hint(module: str) -> str:
    top = module.split(".")[0]
    return (f"if you trust the classes of {top}, allow them: mattrace replay … --allow-module {top} "
            f"(from Python: replay_trace(…, allow_modules=[{top!r}]) or `with mattrace.replay.allow_modules("
            f"{top!r}):`), or register the class in your code with @mattrace.replayable")


def value_class(name: object, kind: str, where: str, path: str | Path, allowance: Allowance) -> type:
    """The class a stored value of ``kind`` (``model`` or ``dataclass``) may be rebuilt into.

    Raises:
        ReplayRefused: the class is not allowed, or is not a dataclass / pydantic model.
        ReplayMismatch: an allowed class no longer imports or exists.
    """
    what = "pydantic model" if kind == "model" else "dataclass"
    shown = name if _split(name) else ascii(name)[:200]   # a file's text, shown escaped
    refuse = f"{where} in the cassette {path} names {shown}"
    cls = (registered_type(name) or _BUILTIN_TYPES.get(name)) if isinstance(name, str) else None
    if cls is None:
        parts = _split(name)
        if parts is None:
            raise ReplayRefused(f"{refuse}, which is not a module:Class name", path=path, target=str(name))
        module, qualname = parts
        if not (allowance.covers(module) or Allowance(BUILTIN_MODULES).covers(module)):
            seen = _lookup(module, qualname, may_import=False)   # a module already imported: look, never import
            if seen is not None and not _buildable(seen, kind, name):
                raise ReplayRefused(f"{refuse} as the {what} to rebuild it into, which it is not; a cassette is data, "
                                    "and replay never calls what it names", path=path, target=str(name))
            raise ReplayRefused(f"{refuse} as the {what} to rebuild it into; a cassette is data, so replay builds "
                                f"only classes you allowed: {_allow_hint(module)}", path=path, target=str(name))
        try:
            cls = _lookup(module, qualname, may_import=True)
        except Exception as exc:   # ImportError, or whatever the allowed module raised
            raise ReplayMismatch(f"{where} was a {name}, which no longer imports ({type(exc).__name__}: "
                                 f"{exc})") from None
        if cls is None:
            raise ReplayMismatch(f"{where} was a {name}, which no longer exists")
        if not isinstance(cls, type) or qualified_name(cls) != name:
            real = qualified_name(cls) if isinstance(cls, type) else type(cls).__name__
            raise ReplayRefused(f"{refuse}, which is not a class defined there (it is {real}); replay builds "
                                "only classes defined in an allowed module", path=path, target=str(name))
    if not _buildable(cls, kind, name):
        raise ReplayRefused(f"{refuse}, which is not a {what}; replay rebuilds values only into dataclasses "
                            "and pydantic models", path=path, target=str(name))
    return cls


def _buildable(obj: object, kind: str, name: object) -> bool:
    """Whether ``obj`` is a class of the stored kind, defined under the stored name."""
    registered = isinstance(name, str) and registered_type(name) is obj
    if not isinstance(obj, type) or (name != qualified_name(obj) and not registered):
        return False
    return issubclass(obj, BaseModel) if kind == "model" else dataclasses.is_dataclass(obj)


def _is_code(value: object) -> bool:
    """Whether a class-dict entry is Python code (a builtin slot wrapper is not)."""
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    return not isinstance(value, types.BuiltinFunctionType | types.WrapperDescriptorType
                          | types.MethodWrapperType | types.MethodDescriptorType)


def _inert(cls: type) -> bool:
    """Whether building ``cls`` without ``__init__`` (and dropping it) runs none of its own Python code."""
    return not any(_is_code(vars(klass)[hook]) for klass in cls.__mro__ for hook in _INERT_HOOKS
                   if hook in vars(klass))


def error_class(name: object, allowance: Allowance) -> type[Exception] | None:
    """The exception class a recorded error may be rebuilt as, or ``None`` (then a RecordedError)."""
    cls: Any = registered_type(name) if isinstance(name, str) else None
    trusted = cls is not None
    if cls is None:
        parts = _split(name)
        if parts is None:
            return None
        module, qualname = parts
        trusted = allowance.covers(module)
        try:
            cls = _lookup(module, qualname, may_import=trusted)
        except Exception:
            return None
    if not (isinstance(cls, type) and issubclass(cls, Exception)) or qualified_name(cls) != name:
        return None
    return cls if trusted or _inert(cls) else None


def settable(obj: object, key: str) -> bool:
    """Whether setting attribute ``key`` on a rebuilt object stores data and runs no Python code."""
    if not key.isidentifier() or key.startswith("_"):
        return False
    static = inspect.getattr_static(obj, key, None)
    return not hasattr(type(static), "__set__") or isinstance(static, types.MemberDescriptorType
                                                                      | types.GetSetDescriptorType)


def entrypoint_function(entry: dict[str, Any], *, path: str | Path, named: str | Callable[..., Any] | None,
                        allowance: Allowance) -> Callable[..., Any]:
    """The function to re-run for a trace whose header holds ``entry``.

    Args:
        entry: the header's entry point (``target``, ``args``, ``kwargs``).
        path: the trace file (named in errors).
        named: the entry point the user named (``--entrypoint``): its ``module:qualname``
            must be the trace's; a callable is run as given; ``path/to/app.py:qualname``
            names the script a ``__main__`` entry point was recorded in (:mod:`._script`).
        allowance: modules the user allowed; a registered entry point in one is imported.

    Raises:
        ReplayRefused: the entry point is not registered, allowed or named (or the user
            named another one); the message shows it and the command to allow it.
        ReplayMismatch: the target is malformed, or an allowed/named module does not import.
    """
    target = entry.get("target")
    parts = _split(target)
    if parts is None or not isinstance(target, str):
        raise ReplayMismatch(f"{path}: the entry point {describe_entrypoint(entry)} is not module:function")
    module, qualname = parts
    if isinstance(named, str) and is_script_name(named):
        return load_script_function(named, entry, path=path, target=target)
    if module == MAIN and not callable(named):
        # no other process can import the recording program's __main__: the user names the script
        fn = registered_entrypoint(target)
        if fn is None:
            raise script_refusal(entry, path=path, target=target, described=describe_entrypoint(entry))
        return fn
    if named is not None:
        given = named if isinstance(named, str) else (
            qualified_name(named) if hasattr(named, "__qualname__") and hasattr(named, "__module__") else repr(named))
        if given != target:
            raise ReplayRefused(f"{path}: the trace names {target} as its entry point, but you named {given}; "
                                "replay runs only the function the trace recorded", path=path, target=target)
        return named if callable(named) else _import_named(module, qualname, path)
    fn = registered_entrypoint(target)
    if fn is None and allowance.covers(module):
        _import_module(module, path)
        fn = registered_entrypoint(target)
        if fn is None:
            raise ReplayRefused(
                f"{path}: the entry point {describe_entrypoint(entry)} is in a module you allowed ({module}), but "
                f"it is not registered (@mattrace.record or @mattrace.replayable); if you trust this trace to run "
                f"it with these arguments:\n  {_command(path, target)}", path=path, target=target)
    if fn is None:
        raise ReplayRefused(
            f"{path}: replay does not run the entry point this trace names, {describe_entrypoint(entry)}: a trace "
            "is data, and replay runs only an entry point your program registered (@mattrace.record or "
            "@mattrace.replayable, in code imported before the replay or in a module allowed with --allow-module) "
            f"or one you name. If you trust this trace to run {target} with these arguments:\n"
            f"  {_command(path, target)}", path=path, target=target)
    return fn


def _command(path: str | Path, target: str) -> str:
    return f"mattrace replay {shlex.quote(str(path))} --entrypoint {target}"


def _import_module(module: str, path: str | Path) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ReplayMismatch(f"{path}: cannot import {module} ({exc}); replay does not add the current directory "
                             "to sys.path: install the project, set PYTHONPATH, or run python -m mattrace "
                             "from the project root") from None


def _import_named(module: str, qualname: str, path: str | Path) -> Any:
    obj: Any = _import_module(module, path)
    try:
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ReplayMismatch(f"{path}: the entry point {module}:{qualname} no longer exists") from None
    if not callable(obj):
        raise ReplayMismatch(f"{path}: the entry point {module}:{qualname} is not a function")
    return obj
