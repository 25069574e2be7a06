"""The Model Context Protocol boundary: record, govern, fault and replay an agent's MCP tools.

Two ways in, the same steps out:

* the proxy, ``mattrace mcp [options] -- <server command>``, which any MCP client (Claude
  Desktop, Cursor, an Agents SDK, LangGraph ...) is pointed at by changing one line of its
  configuration (:func:`serve_stdio`, :class:`ProxyOptions`), or ``mattrace mcp --http URL``
  in front of a streamable-HTTP server (:func:`serve_http`), where the client changes one URL;
* :func:`instrument` for Python code that holds an SDK ``ClientSession``.

Each ``tools/call`` is a ``tool`` step (arguments, result content, ``isError``) whose side
effect and trust come from the tool's annotations (:class:`Marks`), ``resources/read`` is a
``retrieval`` step, ``tools/list`` and ``prompts/get`` are messages from the server. All of them
go through the run's interceptor chain: governance answers a blocked call with an MCP error
result, faults (``tool:git_*``) change results, and the cassette replays the whole session
without the server. Tool definitions are pinned (:class:`ToolPins`, ``--pin tools.lock``); a
change is recorded and the stock contract ``tool_definitions_stable()`` fails at it.
See docs/mcp.md.
"""

from pathlib import Path
from typing import Any

from mattrace.integrations.mcp._boundary import McpBoundary, McpRemoteError
from mattrace.integrations.mcp._marks import Marks, ToolMarks
from mattrace.integrations.mcp._pins import ToolPins, read_lock, write_lock
from mattrace.integrations.mcp._proxy import ProxyOptions, run_proxy, serve_stdio


def instrument(session: Any, *, marks: Marks | None = None, pin: str | Path | None = None, agent: str = "main") -> Any:
    """Record an SDK ``ClientSession``'s requests into the active ``mattrace.record()`` block.

    See :func:`mattrace.integrations.mcp._session.instrument`; imported on first use, so the
    proxy starts without loading the whole SDK (it needs only its message types).
    """
    from mattrace.integrations.mcp._session import instrument as instrument_session

    return instrument_session(session, marks=marks, pin=pin, agent=agent)


def serve_http(options: ProxyOptions) -> int:
    """The streamable-HTTP proxy (``mattrace mcp --http URL``): see
    :func:`mattrace.integrations.mcp._http.serve_http`; imported on first use (it loads the
    SDK's HTTP transports and uvicorn)."""
    from mattrace.integrations.mcp._http import serve_http as serve

    return serve(options)

__all__ = [
    "instrument",
    "Marks",
    "McpBoundary",
    "McpRemoteError",
    "ProxyOptions",
    "read_lock",
    "run_proxy",
    "serve_http",
    "serve_stdio",
    "ToolMarks",
    "ToolPins",
    "write_lock",
]
