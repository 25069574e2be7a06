"""Newline-delimited JSON-RPC over pipes, as MCP's stdio transport carries it.

The proxy passes messages through as the JSON it received (a field it does not know is
forwarded, not dropped), so it parses each line with :mod:`json` and checks its shape with
the MCP SDK's own JSON-RPC message types. A line that is not JSON-RPC is reported as
:class:`BadLine` with the reason and the id it carried, if any, so the proxy can answer the
other side with a JSON-RPC error instead of leaving it waiting.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from typing import IO, Any

from mcp_types import jsonrpc_message_adapter
from pydantic import ValidationError

__all__ = ["LINE_LIMIT", "BadLine", "Message", "open_stdio", "parse_line", "send_line"]

LINE_LIMIT = 64 * 1024 * 1024
"""The longest message line read (a resource may be large; a runaway line must not eat memory)."""

PARSE_ERROR, INVALID_REQUEST = -32700, -32600


@dataclass(frozen=True)
class BadLine:
    """A line that is not a JSON-RPC message: why, and the request id it carried (if any)."""

    reason: str
    code: int
    id: Any = None
    has_id: bool = False


Message = dict[str, Any]


def parse_line(line: bytes) -> Message | BadLine | None:
    """The message on ``line``, a :class:`BadLine`, or None for a blank line."""
    text = line.strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        return BadLine(f"not JSON ({exc}): {_excerpt(text)}", PARSE_ERROR)
    if not isinstance(data, dict):
        return BadLine(f"not a JSON-RPC object: {_excerpt(text)}", INVALID_REQUEST)
    has_id = "id" in data and isinstance(data.get("id"), str | int) and not isinstance(data.get("id"), bool)
    try:
        jsonrpc_message_adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": str(exc), "loc": ()}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "message"
        return BadLine(f"not a valid JSON-RPC message ({where}: {first.get('msg')}): {_excerpt(text)}",
                       INVALID_REQUEST, data.get("id") if has_id else None, has_id)
    return data


def _excerpt(text: bytes | str, limit: int = 120) -> str:
    shown = text.decode("utf-8", "backslashreplace") if isinstance(text, bytes) else text
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def dumps(message: Message) -> bytes:
    """One message as a line (compact, UTF-8, newline-terminated)."""
    return (json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8", "surrogatepass")


def send_line(writer: asyncio.StreamWriter, message: Message) -> bool:
    """Write ``message``; False when the other side is gone (the pipe closed)."""
    if writer.is_closing():
        return False
    try:
        writer.write(dumps(message))
    except (ConnectionError, RuntimeError, OSError):
        return False
    return True


async def open_stdio(stdin: IO[bytes] | None = None,
                     stdout: IO[bytes] | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """This process's stdin and stdout as asyncio streams (pipes; a regular file is read in a thread)."""
    loop = asyncio.get_running_loop()
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
    except ValueError:   # a regular file or a terminal: feed it from a thread
        def pump() -> None:
            for chunk in iter(lambda: os.read(stdin.fileno(), 65536), b""):
                loop.call_soon_threadsafe(reader.feed_data, chunk)
            loop.call_soon_threadsafe(reader.feed_eof)
        loop.run_in_executor(None, pump)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, stdout)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, writer
