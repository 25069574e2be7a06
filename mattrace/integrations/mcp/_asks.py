"""The server's requests to the client, recorded when the client answers them.

An MCP server may ask its client for things in the middle of a call: a model completion
(``sampling/createMessage``), an answer from the user (``elicitation/create``), the client's
roots (``roots/list``). The proxy passes them through untouched and records each, with the
client's answer, as what it is:

* sampling is an ``llm`` step of the client's agent: the server's messages and system prompt
  are its arguments (its source is the server, untrusted: the server wrote that prompt), the
  client's answer its result, the model its target;
* elicitation is a ``message`` from the user to the server: the answer's content (and the
  action: accept, decline, cancel), with the server's question in ``attrs["mcp"]``;
* ``roots/list`` and anything else is a ``message`` from the client's agent to the server
  holding the answer.

A JSON-RPC error the client answers with is the step's error.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mattrace.integrations.mcp._boundary import McpBoundary
from mattrace.integrations.mcp._wire import Message
from mattrace.recording.recorder import Recorder
from mattrace.trace import Source, StepError, StepKind

__all__ = ["record_ask"]


def _text(content: Any) -> str:
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return str(content["text"])
    if isinstance(content, list):
        return " ".join(_text(c) for c in content)
    return json.dumps(content, ensure_ascii=False, default=str)


def record_ask(rec: Recorder, boundary: McpBoundary, method: str, params: Any, answer: Message,
               t_start: int) -> None:
    """Record the server's request ``method`` (``params``) and the client's ``answer`` as one step."""
    params = {k: v for k, v in params.items() if k != "_meta"} if isinstance(params, dict) else {}
    result = answer.get("result") if isinstance(answer.get("result"), dict) else None
    failed = answer.get("error")
    error = None
    if failed is not None:
        said = failed.get("message") if isinstance(failed, dict) else failed
        error = StepError(type="McpError", message=str(said))
    server = boundary.server
    mcp: dict[str, Any] = {"method": method, "server": server}
    t_end = time.time_ns()
    if method == "sampling/createMessage":
        model = (result or {}).get("model")
        rec.append(StepKind.LLM, agent=boundary.agent, target=str(model) if model else "sampling",
                   content=_text((result or {}).get("content")) if result is not None else None,
                   args=params, result=result, error=error,
                   sources=[Source(kind="tool", ref=f"{server}:sampling", trusted=False)],
                   attrs={"mcp": mcp}, t_start=t_start, t_end=t_end)
    elif method == "elicitation/create":
        mcp.update({"message": params.get("message"), "requested_schema": params.get("requestedSchema"),
                    "action": (result or {}).get("action")})
        if params.get("url") is not None:
            mcp["url"] = params["url"]
        content = (result or {}).get("content")
        rec.append(StepKind.MESSAGE, agent="user", target=server,
                   content=_text(content) if content is not None else str(mcp["action"]),
                   result=result, error=error, sources=[Source(kind="user", ref="user")], attrs={"mcp": mcp},
                   t_start=t_start, t_end=t_end)
    else:
        rec.append(StepKind.MESSAGE, agent=boundary.agent, target=server, content=_text(result or {}),
                   args=params or None, result=result, error=error,
                   sources=[Source(kind="agent", ref=boundary.agent)], attrs={"mcp": mcp},
                   t_start=t_start, t_end=t_end)
