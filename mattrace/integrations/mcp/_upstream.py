"""The server side of a proxied session: requests sent with the proxy's own ids, answers
matched to them, every wait bounded.

:class:`Upstream` is what the stdio server (:class:`StdioServer`, a subprocess on pipes)
and the streamable-HTTP server (:class:`~mattrace.integrations.mcp._http.HttpServer`) share:
the table of requests waiting for an answer, the per-request timeout, and the routing of
what the server sends (answers to their requests; its own requests and notifications to the
client). Only how a message travels differs.

A request the server does not answer within the timeout gets a JSON-RPC error
(``-32001``, request timeout) and the server a ``notifications/cancelled``. The clock is
the server's silence about that request: a progress notification for it starts it again,
and it stands still while the server waits on the client (a sampling or elicitation request
the client has not answered yet, which may be a person typing). ``initialize`` also waits
for the server to start, so it is given at least :data:`START_SECONDS`.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mattrace.errors import McpError
from mattrace.integrations.mcp._asks import record_ask
from mattrace.integrations.mcp._boundary import INTERNAL_ERROR, McpBoundary, McpRemoteError
from mattrace.integrations.mcp._wire import LINE_LIMIT, BadLine, Message, dumps, parse_line
from mattrace.recording import active_recorder

__all__ = ["Downstream", "REQUEST_TIMEOUT", "SERVER_GONE", "StdioServer", "Upstream", "warn"]

SERVER_GONE = -32000
REQUEST_TIMEOUT = -32001
STOP_SECONDS = 2.0
"""How long the server has to exit after its stdin closes, and again after SIGTERM."""
START_SECONDS = 120.0
"""The least time ``initialize`` is given: it waits for the server to start (``uvx`` may download it first)."""


class Downstream(Protocol):
    """The client side of a session: where the server's messages and the proxy's answers go."""

    def send(self, message: Message) -> None: ...

    def error(self, request_id: Any, error: dict[str, Any]) -> None: ...


def warn(text: str) -> None:
    """One line on stderr (the proxy's only channel of its own; stdout may be the protocol)."""
    try:
        print(f"mattrace mcp: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


@dataclass
class _Waiting:
    future: asyncio.Future[dict[str, Any]]
    method: str
    token: Any
    deadline: float = math.inf


@dataclass
class _Ask:
    method: str
    params: Any
    t_start: int


def _progress_token(params: dict[str, Any] | None) -> Any:
    meta = (params or {}).get("_meta")
    return meta.get("progressToken") if isinstance(meta, dict) else None


class Upstream:
    """The server of one session, however it is reached.

    Args:
        client: where the server's own requests and notifications go.
        boundary: the session's boundary (the server's requests are recorded with its names).
        timeout: seconds a request may wait on a silent server; None waits for ever.
    """

    def __init__(self, client: Downstream, boundary: McpBoundary, timeout: float | None) -> None:
        self.client = client
        self.boundary = boundary
        self.timeout = timeout
        self.pending: dict[int, _Waiting] = {}
        self.by_client: dict[Any, int] = {}
        self.ids = itertools.count(1)
        self.exit_reason: str | None = None
        self.gone = asyncio.Event()
        self.asking: dict[Any, _Ask] = {}
        """The server's requests the client has not answered yet, by their id."""

    # -- how messages travel (each transport) ------------------------------------------------

    def send(self, message: Message) -> bool:
        """Send one message; False when the server can no longer be written to."""
        raise NotImplementedError

    async def pump(self) -> None:
        """Read the server's messages into :meth:`route` until it is gone, then :meth:`died`."""
        raise NotImplementedError

    async def stop(self) -> None:
        """End the connection (bounded in time)."""
        raise NotImplementedError

    # -- requests ----------------------------------------------------------------------------

    async def request(self, method: str, params: dict[str, Any] | None, client_id: Any = None) -> dict[str, Any]:
        """Send ``method`` and wait for its result; raises McpRemoteError for an error, a timeout
        or a server that is gone."""
        if self.exit_reason is not None:
            raise McpRemoteError(SERVER_GONE, f"{self.exit_reason}; {method} was not sent")
        server_id = next(self.ids)
        waiting = _Waiting(asyncio.get_running_loop().create_future(), method, _progress_token(params))
        self._touch(waiting)
        self.pending[server_id] = waiting
        if client_id is not None:
            self.by_client[client_id] = server_id
        message: Message = {"jsonrpc": "2.0", "id": server_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            if not self.send(message):
                self.fail_all(f"the MCP server closed its input; {method} was not sent")
            return await self._wait(server_id, waiting)
        finally:
            self.pending.pop(server_id, None)
            if client_id is not None and self.by_client.get(client_id) == server_id:
                del self.by_client[client_id]

    def _limit(self, waiting: _Waiting) -> float | None:
        if self.timeout is None or waiting.method != "initialize":
            return self.timeout
        return max(self.timeout, START_SECONDS)

    def _touch(self, waiting: _Waiting) -> None:
        limit = self._limit(waiting)
        if limit is not None:
            waiting.deadline = asyncio.get_running_loop().time() + limit

    async def _wait(self, server_id: int, waiting: _Waiting) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        while not waiting.future.done():
            left = waiting.deadline - loop.time()
            if left > 0:
                await asyncio.wait({waiting.future}, timeout=None if math.isinf(left) else left)
            elif self.asking:   # the server waits on the client, not the other way round
                self._touch(waiting)
            else:
                reason = f"the MCP server did not answer {waiting.method} within {self._limit(waiting):g} s"
                self.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                           "params": {"requestId": server_id, "reason": reason}})
                self.fail(server_id, McpRemoteError(REQUEST_TIMEOUT, reason))
        return waiting.future.result()

    def fail(self, server_id: int, error: McpRemoteError) -> None:
        waiting = self.pending.pop(server_id, None)
        if waiting is not None and not waiting.future.done():
            waiting.future.set_exception(error)

    def fail_all(self, reason: str) -> None:
        for server_id, waiting in list(self.pending.items()):
            self.fail(server_id, McpRemoteError(SERVER_GONE, f"{reason}; {waiting.method} got no answer"))

    def died(self, reason: str) -> None:
        """The server is gone: every waiting request gets an error, the session ends."""
        self.exit_reason = reason
        self.fail_all(reason)
        self.gone.set()

    def cancel(self, client_id: Any, params: dict[str, Any]) -> None:
        """The client cancelled its request: tell the server, under the id it knows."""
        server_id = self.by_client.get(client_id)
        if server_id is not None:
            self.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                       "params": {**params, "requestId": server_id}})

    # -- what the server sends ----------------------------------------------------------------

    def route(self, message: Message) -> None:
        """An answer to one of the proxy's requests, or the server's own message for the client."""
        method = message.get("method")
        if isinstance(method, str):
            if "id" in message:   # the server asks the client (sampling, elicitation, roots)
                self.asking[message["id"]] = _Ask(method, message.get("params"), time.time_ns())
            elif method == "notifications/progress":
                token = (message.get("params") or {}).get("progressToken")
                for waiting in self.pending.values():
                    if token is not None and waiting.token == token:
                        self._touch(waiting)
            self.client.send(message)
            return
        server_id = message.get("id")
        entry = self.pending.get(server_id) if type(server_id) is int else None
        if entry is None or entry.future.done():
            return   # an answer nobody waits for (already failed, or a duplicate)
        if "error" in message:
            entry.future.set_exception(McpRemoteError.of(message["error"]))
        elif isinstance(message.get("result"), dict):
            entry.future.set_result(message["result"])
        else:
            entry.future.set_exception(McpRemoteError(INTERNAL_ERROR, f"the server's answer to {entry.method} "
                                                                        "has no result object"))

    def answered(self, message: Message) -> None:
        """The client's answer to one of the server's requests: recorded, then passed on."""
        ask = self.asking.pop(message.get("id"), None)
        if ask is not None:
            for waiting in self.pending.values():
                self._touch(waiting)
            rec = active_recorder()
            if rec is not None:
                record_ask(rec, self.boundary, ask.method, ask.params, message, ask.t_start)
        self.send(message)

    def bad(self, line: BadLine) -> None:
        warn(f"the MCP server wrote a line that is not JSON-RPC: {line.reason}")
        if line.has_id and type(line.id) is int and line.id in self.pending:
            self.fail(line.id, McpRemoteError(INTERNAL_ERROR, f"the server's answer was not valid JSON-RPC: "
                                                              f"{line.reason}"))
        else:   # a stdio server writes nothing but messages: this was meant for someone waiting
            for server_id, waiting in list(self.pending.items()):
                self.fail(server_id, McpRemoteError(INTERNAL_ERROR, f"the server wrote a line that is not "
                                                                    f"JSON-RPC while {waiting.method} waited: "
                                                                    f"{line.reason}"))


class StdioServer(Upstream):
    """The server as a subprocess speaking newline-delimited JSON-RPC on its stdin and stdout,
    in its own process group so the whole tree stops with the session."""

    def __init__(self, process: asyncio.subprocess.Process, client: Downstream, boundary: McpBoundary,
                 timeout: float | None) -> None:
        super().__init__(client, boundary, timeout)
        self.process = process

    @classmethod
    async def start(cls, command: Sequence[str], env: dict[str, str], client: Downstream, boundary: McpBoundary,
                    timeout: float | None) -> StdioServer:
        """Start ``command``; raises McpError when it cannot be started."""
        try:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
                env={**os.environ, **env}, start_new_session=True, limit=LINE_LIMIT)
        except (OSError, ValueError) as exc:
            raise McpError(f"cannot start the MCP server {' '.join(command)!r}: {exc}") from None
        return cls(process, client, boundary, timeout)

    def send(self, message: Message) -> bool:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing():
            return False
        try:
            stdin.write(dumps(message))
        except (ConnectionError, RuntimeError, OSError):
            return False
        return True

    async def pump(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            try:
                line = await stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                self.bad(BadLine(f"a line longer than {LINE_LIMIT} bytes", INTERNAL_ERROR))
                continue
            except (ConnectionError, OSError):
                line = b""
            if not line:
                break
            message = parse_line(line)
            if message is None:
                continue
            if isinstance(message, BadLine):
                self.bad(message)
                continue
            self.route(message)
        status = await self.process.wait()
        self.died(f"the MCP server exited with status {status}")

    async def stop(self) -> None:
        """Close the server's stdin, then SIGTERM its process group, then SIGKILL: each bounded."""
        process = self.process
        if process.stdin is not None and not process.stdin.is_closing():
            process.stdin.close()
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and process.returncode is None:
                try:
                    os.killpg(process.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                await asyncio.wait_for(process.wait(), STOP_SECONDS)
                return
            except TimeoutError:
                continue
