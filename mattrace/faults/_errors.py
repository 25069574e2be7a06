"""The exceptions injected faults raise: ordinary exception types code already handles.

A tool that times out under injection raises a ``TimeoutError`` subclass, so the
orchestrator's own ``except TimeoutError`` is what is being tested; an LLM call raises
litellm's own exception types, as a real provider failure would.
"""

from __future__ import annotations

from typing import Any

from mattrace.recording.clients import ErrorKind

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


# litellm's exception names -> the kind of failure and the HTTP status it stands for
_KINDS: dict[str, tuple[ErrorKind, int | None]] = {
    "Timeout": ("timeout", None), "APIConnectionError": ("connection", None),
    "RateLimitError": ("status", 429), "ServiceUnavailableError": ("status", 503),
    "InternalServerError": ("status", 500)}


def llm_error(kind: str, call: Any, message: str, *, status: int | None = None,
              retry_after: float | None = None) -> BaseException:
    """The exception the client behind ``call`` raises for this failure: its own type when the
    call names its client (the OpenAI and Anthropic SDKs), else one of litellm's, as the
    provider path would raise it."""
    client = getattr(call, "client", None)
    if client is not None:
        generic, default_status = _KINDS[kind]
        code = status if status is not None else default_status
        injected: BaseException = client.error(generic, message, call, status=code, retry_after=retry_after)
        return injected
    import litellm

    cls = getattr(litellm, kind)
    model = str(call.args.get("model", call.target))
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    error: Exception = cls(message=message, llm_provider=provider, model=model)
    return error
