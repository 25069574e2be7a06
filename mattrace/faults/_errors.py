"""The exceptions injected faults raise: ordinary exception types code already handles.

A tool that times out under injection raises a ``TimeoutError`` subclass, so the
orchestrator's own ``except TimeoutError`` is what is being tested; an LLM call raises
litellm's own exception types, as a real provider failure would.
"""

from __future__ import annotations

from typing import Any

__all__ = ["InjectedConnectionError", "InjectedRateLimit", "InjectedServiceError", "InjectedTimeout",
           "llm_error"]


class InjectedTimeout(TimeoutError):
    """An injected timeout."""


class InjectedConnectionError(ConnectionError):
    """An injected connection failure."""


class InjectedServiceError(Exception):
    """An injected HTTP error status from a service."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class InjectedRateLimit(InjectedServiceError):
    """An injected 429 with the seconds to wait."""

    def __init__(self, retry_after: float, message: str) -> None:
        super().__init__(429, message)
        self.retry_after = retry_after


def llm_error(kind: str, call: Any, message: str) -> Exception:
    """One of litellm's exception types, as the provider path would raise it."""
    import litellm

    cls = getattr(litellm, kind)
    model = str(call.args.get("model", call.target))
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    error: Exception = cls(message=message, llm_provider=provider, model=model)
    return error
