"""A provider SDK as fault injection sees it: its own exceptions and refusals, built as it builds them.

Code under test catches ``openai.RateLimitError`` and reads ``e.status_code`` and
``e.response.headers["retry-after"]``; the SDK's retry logic looks at the same. So an
injected failure is the SDK's exception class, constructed the way the SDK constructs it:
around an HTTP request (and, for a status, a response with headers and an error body) of
the HTTP library the SDK is built on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from mattrace.recording.clients import ErrorKind
from mattrace.recording.interceptors import Call

__all__ = ["SDKClient"]

# HTTP status -> the exception class both SDKs name for it (an SDK without the name: by range)
_STATUS_ERRORS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
                  404: "NotFoundError", 409: "ConflictError", 413: "RequestTooLargeError",
                  422: "UnprocessableEntityError", 429: "RateLimitError", 503: "ServiceUnavailableError",
                  529: "OverloadedError"}


@dataclass(frozen=True)
class SDKClient:
    """An SDK as fault injection sees it (an :class:`LLMClient`): its exception types, built the way
    the SDK builds them, around an HTTP request and response of the HTTP library it uses.

    Attributes:
        name: ``openai`` or ``anthropic``.
        sdk: the SDK module (its exception classes).
        http: the HTTP library the SDK uses (``httpx``; ``httpx2`` for recent Anthropic SDKs).
        url: the endpoint's URL on the client the call was made with.
        refuse: builds the SDK's response (or stream chunks) in which the model declined.
    """

    name: str
    sdk: ModuleType
    http: ModuleType
    url: str
    refuse: Callable[[Call], Any]

    def error(self, kind: ErrorKind, message: str, call: Call, *, status: int | None = None,
              retry_after: float | None = None) -> BaseException:
        request = self.http.Request("POST", self.url)
        if kind == "timeout":
            return self.sdk.APITimeoutError(request=request)  # type: ignore[no-any-return]
        if kind == "connection":
            return self.sdk.APIConnectionError(message=message, request=request)  # type: ignore[no-any-return]
        code = status if status is not None else 500
        cls = getattr(self.sdk, _STATUS_ERRORS.get(code, ""), None)
        if cls is None:
            cls = self.sdk.InternalServerError if code >= 500 else self.sdk.APIStatusError
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
        body = {"type": "error", "error": {"type": "injected_fault", "message": message}}
        response = self.http.Response(code, request=request, headers=headers, json=body)
        return cls(message, response=response, body=body)  # type: ignore[no-any-return]

    def refusal(self, call: Call) -> Any:
        return self.refuse(call)

    def empty_response(self) -> Any:
        """An empty 200 answer, the ``response`` of a replayed stream."""
        return self.http.Response(200, request=self.http.Request("POST", self.url))
