"""An MCP server for the proxy's HTTP, timeout and server-request tests, built on the SDK's ``MCPServer``.

``python tests/mcp_ask_server.py stdio`` serves on stdin and stdout;
``python tests/mcp_ask_server.py http PORT`` serves streamable HTTP on ``127.0.0.1:PORT/mcp``.

Tools:

* ``echo`` (read-only, closed world) answers with its text;
* ``wipe`` (destructive) says it wiped a path;
* ``stall`` never answers (it sleeps for an hour);
* ``summarise`` asks the client's model for a completion (``sampling/createMessage``) and answers with it;
* ``confirm`` asks the user (``elicitation/create``) and answers with what they said;
* ``roots`` asks the client for its roots (``roots/list``).
"""

from __future__ import annotations

import asyncio
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import SamplingMessage, TextContent, ToolAnnotations
from pydantic import BaseModel

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)


class Answer(BaseModel):
    """What ``confirm`` asks the user for."""

    proceed: bool
    note: str = ""


def build() -> MCPServer:
    server = MCPServer("ask-server", version="1.0")

    @server.tool(description="Answer with the text.", annotations=READ_ONLY)
    def echo(text: str) -> str:
        return text

    @server.tool(description="Remove everything under a path.", annotations=DESTRUCTIVE)
    def wipe(path: str) -> str:
        return f"wiped {path}"

    @server.tool(description="Never answer.", annotations=READ_ONLY)
    async def stall() -> str:
        await asyncio.sleep(3600)
        return "late"

    @server.tool(description="Summarise a text with the client's model.", annotations=READ_ONLY)
    async def summarise(text: str, ctx: Context) -> str:
        result = await ctx.session.create_message(
            [SamplingMessage(role="user", content=TextContent(type="text", text=f"Summarise: {text}"))],
            max_tokens=50, system_prompt="You summarise.", related_request_id=ctx.request_id)
        content = result.content
        return f"summary: {content.text if isinstance(content, TextContent) else content}"

    @server.tool(description="Ask the user before going on.", annotations=READ_ONLY)
    async def confirm(action: str, ctx: Context) -> str:
        answer = await ctx.elicit(f"May I {action}?", Answer)
        if answer.action == "accept":
            return f"{answer.action}: proceed={answer.data.proceed} note={answer.data.note}"
        return answer.action

    @server.tool(description="List the client's roots.", annotations=READ_ONLY)
    async def roots(ctx: Context) -> str:
        listed = await ctx.session.list_roots()
        return ", ".join(str(r.uri) for r in listed.roots)

    return server


if __name__ == "__main__":
    if sys.argv[1] == "http":
        build().run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        build().run("stdio")
