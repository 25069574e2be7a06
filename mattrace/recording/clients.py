"""What an LLM call tells the interceptors about the client library that made it.

Fault injection answers an LLM call with a failure or a refusal, and the code under test
must see what that client would really raise or return: an ``openai.RateLimitError`` for
the OpenAI SDK, ``anthropic.APITimeoutError`` for Anthropic's, litellm's own types for
litellm. The core cannot import those libraries (they sit above it, see ``integrations``),
so each integration puts an :class:`LLMClient` on the :class:`~mattrace.recording.interceptors.Call`
it builds, and faults ask it. A call without one gets litellm's types (the historical default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from mattrace.recording.interceptors import Call

__all__ = ["ErrorKind", "LLMClient"]

ErrorKind = Literal["timeout", "connection", "status"]
"""``timeout``: no answer in time; ``connection``: the connection failed; ``status``: the
service answered with an HTTP error status (429 with ``retry_after``, 5xx ...)."""


@runtime_checkable
class LLMClient(Protocol):
    """The client library behind an LLM call, as fault injection sees it. Thread-safe (stateless)."""

    @property
    def name(self) -> str:
        """The library (``openai``, ``anthropic``, ``litellm``)."""
        ...

    def error(self, kind: ErrorKind, message: str, call: Call, *, status: int | None = None,
              retry_after: float | None = None) -> BaseException:
        """The exception this client raises for a failure of ``kind``, built as the library builds
        it (with the HTTP request and response it carries), so ``except`` clauses and retry logic
        of the code under test see a real one."""
        ...

    def refusal(self, call: Call) -> Any:
        """A well-formed response in which the model declined to answer (content filtered)."""
        ...
