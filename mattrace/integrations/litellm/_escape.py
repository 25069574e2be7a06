"""litellm calls that would bypass the wrapper: rebound where they can be, refused where they cannot.

:func:`~mattrace.integrations.litellm.instrument` replaces ``litellm.completion`` and
``litellm.acompletion``. A module that ran ``from litellm import completion`` earlier holds
the original function, and so would call the model without passing through the run's
interceptor chain: replay-only mode would still call the model, ``Timeout("llm:*")`` would
never fire, governance would never see the call. Two measures, so the import style does
not matter:

* **Rebinding.** When litellm is instrumented, every module-level name in an imported
  module that is bound to one of the original functions is bound to the wrapper instead
  (and put back by ``uninstrument()``), as freezegun rebinds ``datetime`` in loaded modules.
  Modules imported later get the wrapper from ``litellm`` itself.
* **The guard.** A reference held anywhere else (a closure, a default argument, an object
  built before instrumentation) cannot be found. litellm runs every call of its completion
  family through ``litellm.utils.function_setup`` before anything else, so that function
  is wrapped: a call that reaches it inside a ``record()`` block without having passed the
  wrapper is an escaped call, judged by :mod:`mattrace.recording.escapes` before the model
  is asked (refused with ``EscapedCall`` when the run needs it, else let through and
  recorded by litellm's callback).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import Any

from mattrace.recording.context import active_recorder
from mattrace.recording.escapes import refuse_escape
from mattrace.recording.interceptors import Call

__all__ = ["guard", "passing", "rebind", "restore", "through", "through_async"]

_passing: ContextVar[bool] = ContextVar("mattrace_litellm_passing", default=False)
# litellm's call types (the wrapped function's __name__) that reach a chat model
_GUARDED = frozenset({"completion", "acompletion", "text_completion", "atext_completion", "responses", "aresponses"})
_WRAPPED_NAMES = frozenset({"completion", "acompletion"})
_FIX_REFERENCE = ("Call litellm.completion(...) / litellm.acompletion(...) through the module, or make mattrace wrap "
                  "litellm before the code that keeps the reference is imported: "
                  "mattrace.integrations.litellm.instrument() (record() does it on first use). For an observe-only "
                  "run, record with cassette=False and no faults or governor.")
_FIX_OTHER = ("mattrace intercepts litellm's completion and acompletion: call those instead, or, for an observe-only "
              "run, record with cassette=False and no faults or governor.")


@contextmanager
def passing() -> Iterator[None]:
    """Within the block, litellm calls are the wrapper's own (the chain already saw them)."""
    token = _passing.set(True)
    try:
        yield
    finally:
        _passing.reset(token)


def through(original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` called as the wrapper's real call (marked as passing the chain)."""
    def call(**kwargs: Any) -> Any:
        with passing():
            return original(**kwargs)
    return call


def through_async(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The async twin of :func:`through`."""
    async def call(**kwargs: Any) -> Any:
        with passing():
            return await original(**kwargs)
    return call


def guard(setup: Callable[..., Any],
          make_call: Callable[[tuple[Any, ...], dict[str, Any]], Call]) -> Callable[..., Any]:
    """``litellm.utils.function_setup`` that first judges calls which bypassed the wrapper.

    Args:
        setup: litellm's function.
        make_call: builds the :class:`Call` the wrapper would have built from the call's
            positional and keyword arguments.
    """
    def function_setup(original_function: Any, rules_obj: Any, start_time: Any, *args: Any, **kwargs: Any) -> Any:
        if original_function in _GUARDED and not _passing.get():
            rec = active_recorder()
            if rec is not None and not rec.closed:
                call = make_call(args, {k: v for k, v in kwargs.items() if k != "is_async_call"})
                how = (f"litellm.{original_function} through a reference bound before mattrace wrapped it"
                       if original_function in _WRAPPED_NAMES else f"litellm.{original_function} is not intercepted")
                refuse_escape(rec.interceptors, call, how, _FIX_REFERENCE if original_function in _WRAPPED_NAMES
                              else _FIX_OTHER)
        return setup(original_function, rules_obj, start_time, *args, **kwargs)
    function_setup.__wrapped__ = setup  # type: ignore[attr-defined]
    function_setup.__doc__ = setup.__doc__
    return function_setup


def rebind(replacements: dict[int, Callable[..., Any]]) -> list[tuple[ModuleType, str, Any]]:
    """Bind every module-level name that holds one of the originals (keys: their ``id``) to its
    replacement, in every imported module outside litellm; returns what it changed."""
    changed: list[tuple[ModuleType, str, Any]] = []
    for name, module in list(sys.modules.items()):
        if name == "litellm" or name.startswith("litellm.") or not isinstance(module, ModuleType):
            continue
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        try:
            hits = [(attr, value) for attr, value in namespace.items() if id(value) in replacements]
        except RuntimeError:   # another thread is importing into this module: look at a copy
            hits = [(attr, value) for attr, value in dict(namespace).items() if id(value) in replacements]
        for attr, value in hits:
            replacement = replacements[id(value)]
            if replacement is not value and namespace.get(attr) is value:
                namespace[attr] = replacement
                changed.append((module, attr, value))
    return changed


def restore(changed: list[tuple[ModuleType, str, Any]], replacements: dict[int, Callable[..., Any]]) -> None:
    """Undo :func:`rebind` where the name still holds the replacement."""
    current = set(map(id, replacements.values()))
    for module, attr, original in changed:
        if id(module.__dict__.get(attr)) in current:
            module.__dict__[attr] = original
