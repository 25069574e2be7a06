"""The proxy's session loop, and the stdio proxy: ``mattrace mcp -- <server command>``.

The client starts the proxy as if it were the server and speaks JSON-RPC on the proxy's
stdin and stdout; the proxy starts the real server as a subprocess
(:class:`~mattrace.integrations.mcp._upstream.StdioServer`) and passes every message through.
The streamable-HTTP proxy (:mod:`~mattrace.integrations.mcp._http`) runs the same loop,
:func:`serve_session`, once per client session. The client's requests go through
:class:`~mattrace.integrations.mcp._boundary.McpBoundary` inside one ``mattrace.record()``
block per session, so each is governed, faulted, replayed and recorded like any boundary
call, and the trace is crash-safe and hash-chained like every trace. The server's own
requests to the client pass through and are recorded when the client answers
(:mod:`~mattrace.integrations.mcp._asks`); notifications pass through untouched.

Never a hang, never a traceback on the wire:

* the server dies: every waiting request gets a JSON-RPC error, the trace ends as an error;
* the server does not answer a request within the timeout: that request gets a JSON-RPC
  error, the session goes on;
* the server writes a line that is not JSON-RPC: the request it answered (or, when the line
  names none, every waiting request, since a stdio server must write nothing else) gets a
  JSON-RPC error and late answers to those requests are dropped;
* the client writes a line that is not JSON-RPC: it gets a parse or invalid-request error;
* the client leaves: calls in flight get a grace period to finish and be recorded, then the
  trace is sealed and the server is stopped (stdin closed, then SIGTERM, then SIGKILL).

With ``record_mode="none"`` (or ``once`` with a cassette that exists) no server is started:
the cassette answers every request.
"""
from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mattrace.errors import McpError
from mattrace.integrations.mcp._boundary import INTERNAL_ERROR, McpBoundary, McpRemoteError, rpc_error
from mattrace.integrations.mcp._marks import Marks
from mattrace.integrations.mcp._pins import read_lock
from mattrace.integrations.mcp._upstream import StdioServer, Upstream
from mattrace.integrations.mcp._wire import LINE_LIMIT, BadLine, Message, open_stdio, parse_line, send_line
from mattrace.recording import RecordOptions, record
from mattrace.recording.interceptors import Interceptor
from mattrace.recording.options import DEFAULT_DIR, record_mode

__all__ = ["ProxyOptions", "run_proxy", "serve_session", "serve_stdio", "SessionClient", "SKIP"]

CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo"
GRACE_SECONDS = 2.0
"""How long calls in flight when the client leaves may take to finish (and be recorded)."""
STOP_SECONDS = 2.0
DEFAULT_TIMEOUT = 60.0
"""Seconds a request may wait on a silent server (``--timeout``)."""

SKIP: Any = object()
"""What :meth:`SessionClient.receive` returns for a message it has already answered (a bad one)."""


@dataclass
class ProxyOptions:
    """What ``mattrace mcp`` was asked to do.

    Attributes:
        server: the server command and its arguments (not needed when the cassette answers all).
        name: the trace's name (default ``mcp-<client name>`` from the client's ``initialize``).
        dir, record_mode, cassette, fsync: as for ``mattrace.record()``.
        faults: a fault plan (``mattrace.faults.load_faults``) or None.
        governor: a governor (``mattrace.governance.load_policy``) or None.
        marks: trust and side-effect overrides.
        pin: a tools lock file (read if it exists, else written from the first listing).
        env: extra environment for the server (the proxy's own environment is passed on).
        http: the URL of a streamable-HTTP server to stand in front of (instead of ``server``).
        listen: where the HTTP proxy listens, ``HOST:PORT`` (port 0: any free port).
        timeout: seconds a request may wait on a silent server before the client gets a
            JSON-RPC error (None: no limit).
    """

    server: Sequence[str] = ()
    name: str | None = None
    dir: str | Path = DEFAULT_DIR
    record_mode: str = "once"
    cassette: str | Path | None = None
    fsync: bool = False
    faults: Any = None
    governor: Interceptor | None = None
    marks: Marks = field(default_factory=Marks)
    pin: str | Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    http: str | None = None
    listen: str = "127.0.0.1:0"
    timeout: float | None = DEFAULT_TIMEOUT

    @property
    def serves_from_cassette(self) -> bool:
        """True when the cassette answers everything, so no server is started."""
        mode = str(self.record_mode)
        return mode == "none" or (mode == "once" and self.cassette is not None and Path(self.cassette).exists())

    def check(self) -> None:
        """Raises McpError for options that cannot work together (before anything starts)."""
        if str(self.record_mode) == "none" and self.cassette is None:
            raise McpError("--record none replays a recorded session: name its cassette with --cassette PATH")
        if str(self.record_mode) == "none" and not Path(str(self.cassette)).exists():
            raise McpError("no cassette to replay from (record mode 'none')", path=str(self.cassette))
        if self.http is not None and self.server:
            raise McpError("give either --http URL or a server command after --, not both")
        if self.http is not None and not self.http.startswith(("http://", "https://")):
            raise McpError(f"--http {self.http!r}: expected an http:// or https:// URL")
        if not self.server and self.http is None and not self.serves_from_cassette:
            raise McpError("no server command: give it after --, e.g. mattrace mcp -- uvx mcp-server-git")
        if self.timeout is not None and not self.timeout > 0:
            raise McpError(f"--timeout {self.timeout!r}: expected a number of seconds above 0")
        if self.pin is not None and Path(self.pin).exists():
            read_lock(self.pin)   # a malformed lock stops the proxy before the client is answered


class SessionClient(Protocol):
    """The client of one session, however it is reached (stdio, or one streamable-HTTP session)."""

    def send(self, message: Message) -> None: ...

    def error(self, request_id: Any, error: dict[str, Any]) -> None: ...

    async def receive(self) -> Message | None:
        """The client's next message; None when it left; :data:`SKIP` for one it was told was bad."""
        ...

    def begin(self, request_id: Any, method: str) -> None:
        """A request of the client's is being answered (HTTP routes the server's requests by it)."""
        ...

    def end(self, request_id: Any) -> None: ...


class _StdioClient:
    """The client on the proxy's stdin and stdout."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.gone = False

    def send(self, message: Message) -> None:
        if not self.gone and not send_line(self.writer, message):
            self.gone = True

    def error(self, request_id: Any, error: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "id": request_id, "error": error})

    def begin(self, request_id: Any, method: str) -> None:
        pass

    def end(self, request_id: Any) -> None:
        pass

    async def receive(self) -> Message | None:
        try:
            line = await self.reader.readline()
        except (ValueError, asyncio.LimitOverrunError):
            self.error(None, {"code": -32600, "message": f"a message longer than {LINE_LIMIT} bytes"})
            return SKIP   # type: ignore[no-any-return]
        except (ConnectionError, OSError):
            return None
        if not line:
            return None
        message = parse_line(line)
        if message is None:
            return SKIP   # type: ignore[no-any-return]
        if isinstance(message, BadLine):
            self.error(message.id, {"code": message.code, "message": message.reason})
            return SKIP   # type: ignore[no-any-return]
        return message


Connect = Callable[[SessionClient, McpBoundary], Awaitable[Upstream]]
"""Reaches the server for one session (started, or connected to)."""


async def serve_session(options: ProxyOptions, client: SessionClient, connect: Connect) -> int:
    """Serve one client session; return the exit status (0, or 1 when the server died).

    Raises:
        McpError: bad options, a server that cannot be reached, a malformed lock file.
    """
    options.check()
    boundary = McpBoundary(marks=options.marks, pin=options.pin)
    server = None if options.serves_from_cassette else await connect(client, boundary)
    pump = asyncio.create_task(server.pump()) if server is not None else None
    try:
        first = await _first_message(client)
        if first is None:
            return 0
        return await _session(options, boundary, client, server, first)
    finally:
        if server is not None:
            await server.stop()
        if pump is not None:
            await asyncio.wait([pump], timeout=STOP_SECONDS)
            pump.cancel()


async def run_proxy(options: ProxyOptions, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """Serve one client session on ``reader``/``writer`` with the stdio server of ``options``;
    return the exit status (0, or 1 when the server died).

    Raises:
        McpError: bad options, a server that cannot be started, a malformed lock file.
    """
    async def start(client: SessionClient, boundary: McpBoundary) -> Upstream:
        return await StdioServer.start(options.server, options.env, client, boundary, options.timeout)

    try:
        return await serve_session(options, _StdioClient(reader, writer), start)
    finally:
        try:
            await writer.drain()
        except (ConnectionError, OSError, RuntimeError):
            pass


async def _first_message(client: SessionClient) -> Message | None:
    while True:
        message = await client.receive()
        if message is None or message is not SKIP:
            return message


def _session_name(options: ProxyOptions, first: Message) -> tuple[str, dict[str, Any]]:
    params = first.get("params") if isinstance(first.get("params"), dict) else {}
    info = params.get("clientInfo") if isinstance(params, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    if not isinstance(info, dict) and isinstance(meta, dict):
        info = meta.get(CLIENT_INFO_META_KEY)
    info = info if isinstance(info, dict) else {}
    client = {k: str(info[k]) for k in ("name", "version") if isinstance(info.get(k), str | int)}
    name = options.name or (f"mcp-{client['name']}" if client.get("name") else "mcp-session")
    return name, client


async def _session(options: ProxyOptions, boundary: McpBoundary, client: SessionClient, server: Upstream | None,
                   first: Message) -> int:
    name, client_info = _session_name(options, first)
    record_options: RecordOptions = {"dir": options.dir, "record_mode": record_mode(options.record_mode),
                                     "fsync": options.fsync, "config": {"mcp": {"client": client_info}}}
    if options.cassette is not None:
        record_options["cassette"] = options.cassette
    if options.faults is not None:
        record_options["faults"] = options.faults
    if options.governor is not None:
        record_options["governor"] = options.governor
    tasks: set[asyncio.Task[None]] = set()
    status = 0
    async with record(name, **record_options) as rec:
        message: Message | None = first
        while message is not None:
            if message is not SKIP:
                _dispatch(message, boundary, client, server, tasks)
            if server is not None and server.gone.is_set():
                break
            message = await _next(client, server)
        if tasks:   # calls in flight finish (and are recorded) if they can
            await asyncio.wait(tasks, timeout=GRACE_SECONDS)
        if server is not None and tasks:
            server.fail_all("the client disconnected before the server answered")
            await asyncio.wait(tasks, timeout=GRACE_SECONDS)
        if server is not None and server.exit_reason is not None:
            rec.set_outcome("error", reason=server.exit_reason)
            status = 1
    return status


async def _next(client: SessionClient, server: Upstream | None) -> Message | None:
    """The client's next message, or None when the client left or the server died."""
    read = asyncio.ensure_future(client.receive())
    if server is None:
        return await read
    gone = asyncio.ensure_future(server.gone.wait())
    done, _ = await asyncio.wait({read, gone}, return_when=asyncio.FIRST_COMPLETED)
    if read in done:
        gone.cancel()
        return read.result()
    read.cancel()
    return None


def _dispatch(message: Message, boundary: McpBoundary, client: SessionClient, server: Upstream | None,
              tasks: set[asyncio.Task[None]]) -> None:
    method = message.get("method")
    if isinstance(method, str) and "id" in message:
        task = asyncio.create_task(_answer(message, boundary, client, server))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    elif isinstance(method, str):   # a notification: for the server (none to give it on replay)
        if server is None:
            return
        params = message.get("params")
        if method == "notifications/cancelled" and isinstance(params, dict) and "requestId" in params:
            server.cancel(params["requestId"], params)
        else:
            server.send(message)
    elif server is not None:   # the client's answer to one of the server's requests
        server.answered(message)


async def _answer(message: Message, boundary: McpBoundary, client: SessionClient, server: Upstream | None) -> None:
    request_id = message["id"]
    params = message.get("params")
    client.begin(request_id, str(message["method"]))

    async def forward(method: str, forwarded: dict[str, Any] | None) -> dict[str, Any]:
        if server is None:
            raise McpRemoteError(INTERNAL_ERROR, f"{method} is not in the cassette and no server was started")
        return await server.request(method, forwarded, request_id)

    try:
        result = await boundary.request(message["method"], params if isinstance(params, dict) else None, forward)
    except McpRemoteError as exc:
        client.error(request_id, rpc_error(exc))
        return
    except Exception as exc:   # a bug or a refused replay: the client hears it, the proxy goes on
        client.error(request_id, {"code": INTERNAL_ERROR, "message": f"{type(exc).__name__}: {exc}"})
        return
    finally:
        client.end(request_id)
    client.send({"jsonrpc": "2.0", "id": request_id, "result": result})


def serve_stdio(options: ProxyOptions) -> int:
    """Run the proxy on this process's stdin and stdout until the client leaves; the exit status.

    SIGTERM and SIGINT (how clients stop a server that does not exit when its stdin closes)
    end the session as the client leaving would: the trace is sealed, the server stopped.
    """
    async def main() -> int:
        reader, writer = await open_stdio()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, reader.feed_eof)
            except (NotImplementedError, RuntimeError, ValueError):   # not the main thread, or Windows
                pass
        return await run_proxy(options, reader, writer)

    return asyncio.run(main())
