"""The stdio proxy: ``mattrace mcp -- <server command>`` between an MCP client and its server.

The client starts the proxy as if it were the server and speaks JSON-RPC on the proxy's
stdin and stdout; the proxy starts the real server as a subprocess (in its own process
group, so the whole tree stops with the session) and passes every message through. The
client's requests go through :class:`~mattrace.integrations.mcp._boundary.McpBoundary`
inside one ``mattrace.record()`` block per session, so each is governed, faulted, replayed
and recorded like any boundary call, and the trace is crash-safe and hash-chained like
every trace. Everything else (notifications, the server's own requests to the client and
their answers) passes through untouched.

Never a hang, never a traceback on the wire:

* the server dies: every waiting request gets a JSON-RPC error, the trace ends as an error;
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
import contextvars
import itertools
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mattrace.errors import McpError
from mattrace.integrations.mcp._boundary import INTERNAL_ERROR, McpBoundary, McpRemoteError, rpc_error
from mattrace.integrations.mcp._marks import Marks
from mattrace.integrations.mcp._pins import read_lock
from mattrace.integrations.mcp._wire import LINE_LIMIT, BadLine, Message, open_stdio, parse_line, send_line
from mattrace.recording import RecordOptions, record
from mattrace.recording.interceptors import Interceptor
from mattrace.recording.options import DEFAULT_DIR, record_mode

__all__ = ["ProxyOptions", "run_proxy", "serve_stdio"]

SERVER_GONE = -32000
CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo"
GRACE_SECONDS = 2.0
"""How long calls in flight when the client leaves may take to finish (and be recorded)."""
STOP_SECONDS = 2.0
"""How long the server has to exit after its stdin closes, and again after SIGTERM."""

_client_id: contextvars.ContextVar[Any] = contextvars.ContextVar("mattrace_mcp_client_id", default=None)


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
        if not self.server and not self.serves_from_cassette:
            raise McpError("no server command: give it after --, e.g. mattrace mcp -- uvx mcp-server-git")
        if self.pin is not None and Path(self.pin).exists():
            read_lock(self.pin)   # a malformed lock stops the proxy before the client is answered


class _Server:
    """The server subprocess: requests sent with the proxy's own ids, answers matched to them."""

    def __init__(self, process: asyncio.subprocess.Process, client: _Client) -> None:
        self.process = process
        self.client = client
        self.pending: dict[int, tuple[asyncio.Future[dict[str, Any]], str]] = {}
        self.by_client: dict[Any, int] = {}
        self.ids = itertools.count(1)
        self.exit_reason: str | None = None
        self.gone = asyncio.Event()

    @classmethod
    async def start(cls, command: Sequence[str], env: dict[str, str], client: _Client) -> _Server:
        try:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
                env={**os.environ, **env}, start_new_session=True, limit=LINE_LIMIT)
        except (OSError, ValueError) as exc:
            raise McpError(f"cannot start the MCP server {' '.join(command)!r}: {exc}") from None
        return cls(process, client)

    async def request(self, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        if self.exit_reason is not None:
            raise McpRemoteError(SERVER_GONE, f"{self.exit_reason}; {method} was not sent")
        server_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[server_id] = (future, method)
        client_id = _client_id.get()
        if client_id is not None:
            self.by_client[client_id] = server_id
        message: Message = {"jsonrpc": "2.0", "id": server_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            if not self.send(message):
                self.fail_all(f"the MCP server closed its input; {method} was not sent")
            return await future
        finally:
            self.pending.pop(server_id, None)
            if client_id is not None and self.by_client.get(client_id) == server_id:
                del self.by_client[client_id]

    def send(self, message: Message) -> bool:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing():
            return False
        try:
            stdin.write(_line(message))
        except (ConnectionError, RuntimeError, OSError):
            return False
        return True

    def fail(self, server_id: int, error: McpRemoteError) -> None:
        entry = self.pending.pop(server_id, None)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(error)

    def fail_all(self, reason: str) -> None:
        for server_id, (_, method) in list(self.pending.items()):
            self.fail(server_id, McpRemoteError(SERVER_GONE, f"{reason}; {method} got no answer"))

    async def pump(self) -> None:
        """Read the server's messages until it exits: answers to their requests, the rest to the client."""
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
        self.exit_reason = f"the MCP server exited with status {status}"
        self.fail_all(self.exit_reason)
        self.gone.set()

    def route(self, message: Message) -> None:
        if "method" in message:   # the server's own request or notification: for the client
            self.client.send(message)
            return
        server_id = message.get("id")
        entry = self.pending.get(server_id) if type(server_id) is int else None
        if entry is None:
            return   # an answer nobody waits for (already failed, or a duplicate)
        future = entry[0]
        if future.done():
            return
        if "error" in message:
            future.set_exception(McpRemoteError.of(message["error"]))
        elif isinstance(message.get("result"), dict):
            future.set_result(message["result"])
        else:
            future.set_exception(McpRemoteError(INTERNAL_ERROR, f"the server's answer to {entry[1]} has no result "
                                                                "object"))

    def bad(self, line: BadLine) -> None:
        _warn(f"the MCP server wrote a line that is not JSON-RPC: {line.reason}")
        if line.has_id and type(line.id) is int and line.id in self.pending:
            self.fail(line.id, McpRemoteError(INTERNAL_ERROR, f"the server's answer was not valid JSON-RPC: "
                                                              f"{line.reason}"))
        else:   # a stdio server writes nothing but messages: this was meant for someone waiting
            for server_id, (_, method) in list(self.pending.items()):
                self.fail(server_id, McpRemoteError(INTERNAL_ERROR, f"the server wrote a line that is not "
                                                                    f"JSON-RPC while {method} waited: {line.reason}"))

    def cancel(self, client_id: Any, params: dict[str, Any]) -> None:
        server_id = self.by_client.get(client_id)
        if server_id is not None:
            self.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                       "params": {**params, "requestId": server_id}})

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


def _line(message: Message) -> bytes:
    from mattrace.integrations.mcp._wire import dumps

    return dumps(message)


def _warn(text: str) -> None:
    try:
        print(f"mattrace mcp: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class _Client:
    """The client on the proxy's stdin and stdout."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.gone = False

    def send(self, message: Message) -> None:
        if not self.gone and not send_line(self.writer, message):
            self.gone = True

    def error(self, request_id: Any, error: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "id": request_id, "error": error})


async def run_proxy(options: ProxyOptions, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """Serve one client session on ``reader``/``writer``; return the exit status (0, or 1 when the
    server died).

    Raises:
        McpError: bad options, a server that cannot be started, a malformed lock file.
    """
    options.check()
    client = _Client(writer)
    boundary = McpBoundary(marks=options.marks, pin=options.pin)
    server = None if options.serves_from_cassette else await _Server.start(options.server, options.env, client)
    pump = asyncio.create_task(server.pump()) if server is not None else None
    try:
        first = await _first_message(reader, client)
        if first is None:
            return 0
        return await _session(options, boundary, client, server, reader, first)
    finally:
        if server is not None:
            await server.stop()
        if pump is not None:
            await asyncio.wait([pump], timeout=STOP_SECONDS)
            pump.cancel()
        try:
            await writer.drain()
        except (ConnectionError, OSError, RuntimeError):
            pass


async def _first_message(reader: asyncio.StreamReader, client: _Client) -> Message | None:
    while True:
        message = await _read(reader, client)
        if message is None or message is not _SKIP:
            return message


_SKIP: Any = object()


async def _read(reader: asyncio.StreamReader, client: _Client) -> Message | None:
    """The client's next message; None when it left; ``_SKIP`` for a line it was told was bad."""
    try:
        line = await reader.readline()
    except (ValueError, asyncio.LimitOverrunError):
        client.error(None, {"code": -32600, "message": f"a message longer than {LINE_LIMIT} bytes"})
        return _SKIP   # type: ignore[no-any-return]
    except (ConnectionError, OSError):
        return None
    if not line:
        return None
    message = parse_line(line)
    if message is None:
        return _SKIP   # type: ignore[no-any-return]
    if isinstance(message, BadLine):
        client.error(message.id, {"code": message.code, "message": message.reason})
        return _SKIP   # type: ignore[no-any-return]
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


async def _session(options: ProxyOptions, boundary: McpBoundary, client: _Client, server: _Server | None,
                   reader: asyncio.StreamReader, first: Message) -> int:
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
            if message is not _SKIP:
                _dispatch(message, boundary, client, server, tasks)
            if server is not None and server.gone.is_set():
                break
            message = await _next(reader, client, server)
        if tasks:   # calls in flight finish (and are recorded) if they can
            await asyncio.wait(tasks, timeout=GRACE_SECONDS)
        if server is not None and tasks:
            server.fail_all("the client disconnected before the server answered")
            await asyncio.wait(tasks, timeout=GRACE_SECONDS)
        if server is not None and server.exit_reason is not None:
            rec.set_outcome("error", reason=server.exit_reason)
            status = 1
    return status


async def _next(reader: asyncio.StreamReader, client: _Client, server: _Server | None) -> Message | None:
    """The client's next message, or None when the client left or the server died."""
    read = asyncio.ensure_future(_read(reader, client))
    if server is None:
        return await read
    gone = asyncio.ensure_future(server.gone.wait())
    done, _ = await asyncio.wait({read, gone}, return_when=asyncio.FIRST_COMPLETED)
    if read in done:
        gone.cancel()
        return read.result()
    read.cancel()
    return None


def _dispatch(message: Message, boundary: McpBoundary, client: _Client, server: _Server | None,
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
        server.send(message)


async def _answer(message: Message, boundary: McpBoundary, client: _Client, server: _Server | None) -> None:
    request_id = message["id"]
    _client_id.set(request_id)
    params = message.get("params")

    async def forward(method: str, forwarded: dict[str, Any] | None) -> dict[str, Any]:
        if server is None:
            raise McpRemoteError(INTERNAL_ERROR, f"{method} is not in the cassette and no server was started")
        return await server.request(method, forwarded)

    try:
        result = await boundary.request(message["method"], params if isinstance(params, dict) else None, forward)
    except McpRemoteError as exc:
        client.error(request_id, rpc_error(exc))
        return
    except Exception as exc:   # a bug or a refused replay: the client hears it, the proxy goes on
        client.error(request_id, {"code": INTERNAL_ERROR, "message": f"{type(exc).__name__}: {exc}"})
        return
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
