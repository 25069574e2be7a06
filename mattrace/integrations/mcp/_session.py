"""In-process MCP: :func:`instrument` records a ``ClientSession``'s requests like the proxy does.

Code that talks to a server through the SDK's ``ClientSession`` needs no proxy: every
request the session sends goes through ``send_request``, so wrapping that one method on the
session object sends ``initialize``, ``tools/list``, ``tools/call``, ``resources/read`` and the
rest through the same :class:`~mattrace.integrations.mcp._boundary.McpBoundary` inside the
active ``mattrace.record()`` block: the same steps, the same chain, and a whole session that
replays from its cassette with ``record_mode="none"`` without reaching the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, TypeAdapter

from mattrace.errors import RecordingError
from mattrace.integrations.mcp._boundary import McpBoundary, McpRemoteError, rpc_error
from mattrace.integrations.mcp._marks import Marks

__all__ = ["instrument"]

_S = TypeVar("_S", bound=ClientSession)


def _wire(value: Any) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        dumped: dict[str, Any] = value.model_dump(by_alias=True, mode="json", exclude_none=True)
        return dumped
    if isinstance(value, dict):
        return value
    raise TypeError(f"an MCP result is an object, got {type(value).__name__}")


def _typed(result_type: Any, raw: dict[str, Any]) -> Any:
    if isinstance(result_type, TypeAdapter):
        return result_type.validate_python(raw, by_name=False)
    return result_type.model_validate(raw, by_name=False)


def instrument(session: _S, *, marks: Marks | None = None, pin: str | Path | None = None,
               agent: str = "main") -> _S:
    """Record ``session``'s requests into the active ``mattrace.record()`` block; returns the session.

    Args:
        session: an SDK ``ClientSession`` (before or after ``initialize()``).
        marks: trust and side-effect overrides (default: from the tool annotations).
        pin: a tools lock file, read if it exists, written from the first listing if not.
        agent: who the session's calls are attributed to.

    Outside a ``record()`` block the session behaves as before. A JSON-RPC error from the
    server is raised as the SDK's ``MCPError``, as without instrumentation. Idempotent.

    Raises:
        RecordingError: ``session`` is not a ``ClientSession``.
        McpError: ``pin`` names a file that is not a tools lock.
    """
    if not isinstance(session, ClientSession):
        raise RecordingError(f"instrument() takes an mcp ClientSession, got {type(session).__name__}")
    if getattr(session, "_mattrace_boundary", None) is not None:
        return session
    boundary = McpBoundary(marks=marks, pin=pin, agent=agent)
    original = session.send_request

    async def send_request(request: Any, result_type: Any, request_read_timeout_seconds: float | None = None,
                           metadata: Any = None, progress_callback: Any = None) -> Any:
        data = request.model_dump(by_alias=True, mode="json", exclude_none=True)
        method, params = data["method"], data.get("params")

        async def forward(sent_method: str, sent: dict[str, Any] | None) -> dict[str, Any]:
            outgoing = request if sent == params else type(request).model_validate(
                {"method": sent_method, **({"params": sent} if sent is not None else {})}, by_name=False)
            try:
                result = await original(outgoing, result_type, request_read_timeout_seconds, metadata,
                                        progress_callback)
            except MCPError as exc:
                raise McpRemoteError.of(exc.error.model_dump(mode="json", exclude_none=True)) from None
            return _wire(result)

        try:
            raw = await boundary.request(method, params, forward)
        except McpRemoteError as exc:
            error = rpc_error(exc)
            raise MCPError(error["code"], error["message"], error.get("data")) from None
        return _typed(result_type, raw)

    session.send_request = send_request   # type: ignore[method-assign]
    session._mattrace_boundary = boundary   # type: ignore[attr-defined]
    return session
