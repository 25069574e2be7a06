"""The streamable-HTTP proxy: ``mattrace mcp --http URL`` in front of a server that speaks HTTP.

The proxy listens on loopback (``--listen 127.0.0.1:PORT``; port 0 picks a free one and the
URL is printed on stderr), so a client's configuration changes one URL. Both sides use the
MCP SDK's own transports: each client session that opens here (an ``initialize`` without a
session id) gets a :class:`~mcp.server.streamable_http.StreamableHTTPServerTransport` of its
own, and its own connection to the server through
:func:`~mcp.client.streamable_http.streamable_http_client`. Between them runs the same
session loop as the stdio proxy (:func:`~mattrace.integrations.mcp._proxy.serve_session`):
one trace per client session, sealed when the client ends it (``DELETE``) or the proxy stops.

Clients of the 2026 stateless era (a ``MCP-Protocol-Version`` header no ``initialize``
handshake negotiates) are answered ``-32022`` naming the handshake versions, which the SDK's
clients take as the cue to fall back to ``initialize``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import signal
import socket
from collections.abc import MutableMapping
from typing import Any
from uuid import uuid4

import anyio
from mcp.client.streamable_http import streamable_http_client
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER, StreamableHTTPServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.message import ClientMessageMetadata, ServerMessageMetadata, SessionMessage
from mcp_types import UNSUPPORTED_PROTOCOL_VERSION, jsonrpc_message_adapter
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from mattrace.errors import McpError
from mattrace.integrations.mcp._boundary import McpBoundary
from mattrace.integrations.mcp._proxy import SKIP, ProxyOptions, SessionClient, serve_session
from mattrace.integrations.mcp._upstream import Upstream, warn
from mattrace.integrations.mcp._wire import Message

__all__ = ["HttpServer", "parse_listen", "serve_http"]

STOP_SECONDS = 2.0


def _to_wire(item: SessionMessage) -> Message:
    dumped: Message = item.message.model_dump(by_alias=True, mode="json", exclude_unset=True)
    return dumped


class HttpServer(Upstream):
    """The server at ``url``, reached with the SDK's streamable-HTTP client transport."""

    def __init__(self, url: str, client: SessionClient, boundary: McpBoundary, timeout: float | None) -> None:
        super().__init__(client, boundary, timeout)
        self.url = url
        self.outbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self.version: str | None = None
        self.closed = False

    def send(self, message: Message) -> bool:
        if self.closed:
            return False
        self.outbox.put_nowait(message)
        return True

    def route(self, message: Message) -> None:
        entry = self.pending.get(message.get("id")) if "method" not in message else None   # type: ignore[arg-type]
        if entry is not None and entry.method == "initialize" and isinstance(message.get("result"), dict):
            version = message["result"].get("protocolVersion")
            self.version = version if isinstance(version, str) else None
        super().route(message)

    def _framed(self, message: Message) -> SessionMessage:
        parsed = jsonrpc_message_adapter.validate_python(message, by_name=False)
        if self.version is None or message.get("method") == "initialize":
            return SessionMessage(parsed)
        return SessionMessage(parsed, metadata=ClientMessageMetadata(headers={MCP_PROTOCOL_VERSION_HEADER:
                                                                              self.version}))

    async def _write(self, write: Any) -> None:
        async with write:
            while (message := await self.outbox.get()) is not None:
                await write.send(self._framed(message))

    async def pump(self) -> None:
        reason = f"the MCP server at {self.url} ended the session"
        try:
            async with streamable_http_client(self.url) as (read, write):
                writer = asyncio.create_task(self._write(write))
                try:
                    async for item in read:
                        if isinstance(item, Exception):
                            warn(f"the MCP server at {self.url} sent something that is not JSON-RPC: {item}")
                            continue
                        self.route(_to_wire(item))
                finally:
                    writer.cancel()
        except Exception as exc:   # the transport's task group failed: the server is unreachable or broke
            reason = f"the MCP server at {self.url} cannot be reached: {_cause(exc)}"
        self.closed = True
        self.died(reason)

    async def stop(self) -> None:
        """Close the connection: the transport ends the server's session (``DELETE``)."""
        self.outbox.put_nowait(None)


def _cause(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


class _HttpClient:
    """One client session on the proxy's listening side."""

    def __init__(self, read: Any, write: Any) -> None:
        self.read = read
        self.write = write
        self.outbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self.in_flight: dict[Any, str] = {}

    def send(self, message: Message) -> None:
        self.outbox.put_nowait(message)

    def error(self, request_id: Any, error: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "id": request_id, "error": error})

    def begin(self, request_id: Any, method: str) -> None:
        self.in_flight[request_id] = method

    def end(self, request_id: Any) -> None:
        self.in_flight.pop(request_id, None)

    async def receive(self) -> Message | None:
        try:
            item = await self.read.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return None
        if isinstance(item, Exception):
            return SKIP   # type: ignore[no-any-return]
        return _to_wire(item)

    def _related(self) -> Any:
        """The client request the server's own message most likely belongs to: its stream carries it.

        The HTTP client transport does not say which of the proxy's requests a server request
        arrived on, so it goes on the stream of the latest ``tools/call`` in flight (a tool asking
        for a completion or the user's answer), else of any request in flight, else the
        session's standalone stream.
        """
        calls = [rid for rid, method in self.in_flight.items() if method == "tools/call"]
        found = calls or list(self.in_flight)
        return found[-1] if found else None

    async def pump_out(self) -> None:
        while (message := await self.outbox.get()) is not None:
            parsed = jsonrpc_message_adapter.validate_python(message, by_name=False)
            metadata = ServerMessageMetadata(related_request_id=self._related()) if "method" in message else None
            try:
                await self.write.send(SessionMessage(parsed, metadata=metadata))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) on loopback; raises McpError otherwise."""
    host, colon, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise McpError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8765 (port 0: any free port)") \
            from None
    if not colon or not 0 <= number < 65536:
        raise McpError(f"--listen {listen!r}: expected HOST:PORT with a port from 0 to 65535")
    if not loopback:
        raise McpError(f"--listen {listen!r}: the proxy listens on loopback only (127.0.0.1, ::1 or localhost)")
    return host, number


def _json(status: int, body: dict[str, Any]) -> tuple[int, bytes]:
    return status, json.dumps(body).encode()


class _Listener:
    """The ASGI application: one transport, one session task and one trace per client session."""

    def __init__(self, options: ProxyOptions) -> None:
        self.options = options
        self.sessions: dict[str, StreamableHTTPServerTransport] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        version = headers.get(MCP_PROTOCOL_VERSION_HEADER.lower())
        session_id = headers.get(MCP_SESSION_ID_HEADER)
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            await _respond(send, *_json(400, {"jsonrpc": "2.0", "id": None, "error": {
                "code": UNSUPPORTED_PROTOCOL_VERSION, "message": f"the mattrace proxy speaks the initialize "
                f"handshake, not protocol version {version}",
                "data": {"supported": list(HANDSHAKE_PROTOCOL_VERSIONS), "requested": version}}}))
            return
        if session_id is not None:
            transport = self.sessions.get(session_id)
            if transport is None:
                await _respond(send, *_json(404, {"jsonrpc": "2.0", "id": None,
                                                  "error": {"code": -32600, "message": "Session not found"}}))
                return
            await transport.handle_request(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _respond(send, *_json(400, {"jsonrpc": "2.0", "id": None, "error": {
                "code": -32600, "message": "Bad Request: open a session with an initialize POST"}}))
            return
        transport = StreamableHTTPServerTransport(mcp_session_id=uuid4().hex, security_settings=self.security)
        ready = asyncio.Event()
        task = asyncio.create_task(self._session(transport, ready))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        await ready.wait()
        status: list[int] = []

        async def watch(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await transport.handle_request(scope, receive, watch)
        if not status or status[0] >= 400:   # refused (a bad Host, not an initialize ...): no session opened
            await transport.terminate()

    async def _session(self, transport: StreamableHTTPServerTransport, ready: asyncio.Event) -> None:
        session_id = transport.mcp_session_id
        assert session_id is not None
        self.sessions[session_id] = transport
        url = self.options.http
        assert url is not None

        async def connect(client: SessionClient, boundary: McpBoundary) -> Upstream:
            return HttpServer(url, client, boundary, self.options.timeout)

        try:
            async with transport.connect() as (read, write):
                client = _HttpClient(read, write)
                writer = asyncio.create_task(client.pump_out())
                ready.set()
                try:
                    await serve_session(self.options, client, connect)
                finally:
                    client.outbox.put_nowait(None)
                    await asyncio.wait([writer], timeout=STOP_SECONDS)
                    writer.cancel()
                    self.sessions.pop(session_id, None)   # its id answers 404 from now on
                    if not transport.is_terminated:   # ended here, before its streams close under it
                        await transport.terminate()
        except Exception as exc:   # one session's failure is said, and the others go on
            warn(f"session {session_id[:8]} ended with {type(exc).__name__}: {exc}")
        finally:
            ready.set()
            self.sessions.pop(session_id, None)
            if not transport.is_terminated:
                await transport.terminate()

    async def close(self) -> None:
        """End every session (each trace is sealed) and wait for them, bounded."""
        for transport in list(self.sessions.values()):
            await transport.terminate()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=STOP_SECONDS * 2)


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def serve_http(options: ProxyOptions) -> int:
    """Listen on ``options.listen`` and proxy every client session to ``options.http`` until
    SIGINT or SIGTERM; the exit status (0).

    Raises:
        McpError: bad options, or an address that cannot be listened on.
    """
    import uvicorn

    options.check()
    host, port = parse_listen(options.listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)   # before the URL is printed: a client that connects at once waits in the backlog
    except OSError as exc:
        sock.close()
        raise McpError(f"cannot listen on {options.listen}: {exc}") from None
    bound = sock.getsockname()[1]
    path = _path(options.http)
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    listener = _Listener(options)
    config = uvicorn.Config(listener, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=1)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # a stop, not a crash: every session is sealed and the proxy exits 0 (uvicorn would
            # raise the signal again once it has shut down)
            self.force_exit = self.should_exit and sig == signal.SIGINT
            self.should_exit = True

    server = Server(config)

    async def main() -> None:
        warn(f"listening on http://{shown}:{bound}{path} (for {options.http})")
        try:
            await server.serve(sockets=[sock])
        finally:
            await listener.close()

    asyncio.run(main())
    return 0


def _path(url: str | None) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url or "").path or "/"
