"""The MCP boundary: one client request to a server, through the run's interceptor chain,
recorded as steps.

Both ways of reaching a server use it: the stdio proxy (``mattrace mcp``) and
:func:`~mattrace.integrations.mcp.instrument` for an in-process ``ClientSession``. Each
request becomes a :class:`~mattrace.recording.interceptors.Call` and goes through
:func:`~mattrace.recording.interceptors.run_call_async`, the same chain ``@mattrace.tool``
uses, so governance, faults and the cassette act on MCP calls exactly as on Python tools:

* ``tools/call`` is a ``tool`` call (fault targets ``tool:NAME``; governance judges it; the
  cassette replays it) and a ``tool`` step;
* ``resources/read`` is a ``retrieval`` call on the resource URI and a ``retrieval`` step;
* every other request (``initialize``, ``tools/list``, ``prompts/get``, ``ping`` ...) is a
  ``message`` call, which only the cassette acts on, so a session replays whole without its
  server; ``tools/list`` and ``prompts/get`` are also recorded as ``message`` steps from the
  server.

Requests travel as the JSON the wire carries (``dict``), so the proxy forwards what it is
given and the in-process path converts the SDK's models at its edge. Request ``_meta``
(progress tokens, the 2026 protocol envelope) is forwarded but kept out of the call's
arguments: it does not say what the call does, and it must not stop a replay from matching.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mattrace.errors import ActionBlocked, McpError, ReplayMismatch
from mattrace.integrations.mcp._marks import Marks, ToolMarks, meta_labels, meta_trust
from mattrace.integrations.mcp._pins import ToolPins, definition, read_lock, write_lock
from mattrace.recording import active_recorder
from mattrace.recording.interceptors import Call, CallOutcome, run_call_async
from mattrace.recording.recorder import Recorder
from mattrace.trace import Source, StepError, StepKind

__all__ = ["Forward", "McpBoundary", "McpRemoteError", "rpc_error"]

Forward = Callable[[str, "dict[str, Any] | None"], Awaitable["dict[str, Any]"]]
"""Sends one request to the server and returns its result, or raises :class:`McpRemoteError`."""

INTERNAL_ERROR = -32603
_CALL_RESULT_KEYS = frozenset({"content", "structuredContent", "isError", "_meta", "resultType"})
_READ_RESULT_KEYS = frozenset({"contents", "_meta", "resultType", "ttlMs", "cacheScope"})


class McpRemoteError(Exception):
    """A JSON-RPC error: the server's answer to a request, or the proxy's own when the server
    cannot answer (it died, it wrote something that is not JSON-RPC).

    Not a :class:`~mattrace.errors.MatTraceError`: it is the protocol's error, handed back to
    the client as it came. Its attributes are plain values, so a cassette stores and replays it.
    """

    def __init__(self, code: int, message: str, data_json: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.rpc_message = message
        self.data_json = data_json

    @classmethod
    def of(cls, error: Any) -> McpRemoteError:
        """From a JSON-RPC ``error`` object (anything malformed becomes an internal error)."""
        if not isinstance(error, dict):
            return cls(INTERNAL_ERROR, f"the server answered with a malformed error: {error!r:.200}")
        code = error.get("code")
        data = error.get("data")
        return cls(code if type(code) is int else INTERNAL_ERROR, str(error.get("message", "")),
                   json.dumps(data) if data is not None else None)


def rpc_error(exc: BaseException) -> dict[str, Any]:
    """The JSON-RPC ``error`` object for ``exc`` (a replayed one may be a RecordedError with the
    same attributes)."""
    code = getattr(exc, "code", None)
    message = getattr(exc, "rpc_message", None)
    if type(code) is int and isinstance(message, str):
        out: dict[str, Any] = {"code": code, "message": message}
        data = getattr(exc, "data_json", None)
        if isinstance(data, str):
            try:
                out["data"] = json.loads(data)
            except ValueError:
                pass
        return out
    return {"code": INTERNAL_ERROR, "message": f"{type(exc).__name__}: {exc}"}


def _split_meta(params: dict[str, Any] | None) -> tuple[dict[str, Any], Any]:
    params = dict(params or {})
    meta = params.pop("_meta", None)
    return params, meta


def _with_meta(args: dict[str, Any], meta: Any) -> dict[str, Any]:
    return {**args, "_meta": meta} if meta is not None else dict(args)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _block_text(block: Any) -> str:
    if isinstance(block, dict):
        text = block.get("text")
        if isinstance(text, str):
            return text
        if isinstance(block.get("resource"), dict):
            return _block_text(block["resource"])
        if block.get("type") in ("image", "audio") or "blob" in block:
            return f"<{block.get('mimeType', block.get('type', 'binary'))}>"
    return _text(block)


def _is_block(block: Any) -> bool:
    return isinstance(block, dict) and isinstance(block.get("type"), str)


def call_result(value: Any, faulted: bool) -> dict[str, Any]:
    """A valid ``CallToolResult`` for what the chain produced.

    Untouched results pass as the server sent them. A fault may have changed the value into
    another shape (text for a malformed result, ``{}`` for an empty one, an extra field for a
    poisoned one): what it produced reaches the client as content, as a server would send it.
    """
    if not faulted and isinstance(value, dict) and isinstance(value.get("content"), list):
        return value
    if isinstance(value, dict):
        found = value.get("content")
        content: list[Any] = found if isinstance(found, list) else []
        out = {k: v for k, v in value.items() if k in _CALL_RESULT_KEYS and k != "content"}
        blocks = [b if _is_block(b) else {"type": "text", "text": _block_text(b)} for b in content]
        blocks += [{"type": "text", "text": _text(v)} for k, v in value.items()
                   if k not in _CALL_RESULT_KEYS and v is not None]
        return {**out, "content": blocks, "isError": bool(value.get("isError", False))}
    if value is None:
        return {"content": [], "isError": False}
    if isinstance(value, list):
        return {"content": [b if _is_block(b) else {"type": "text", "text": _block_text(b)} for b in value],
                "isError": False}
    return {"content": [{"type": "text", "text": _text(value)}], "isError": False}


def read_result(value: Any, uri: str, faulted: bool) -> dict[str, Any]:
    """A valid ``ReadResourceResult`` for what the chain produced (see :func:`call_result`)."""
    if not faulted and isinstance(value, dict) and isinstance(value.get("contents"), list):
        return value
    if isinstance(value, dict):
        found = value.get("contents")
        contents: list[Any] = found if isinstance(found, list) else []
        out = {k: v for k, v in value.items() if k in _READ_RESULT_KEYS and k != "contents"}
        items = [c if isinstance(c, dict) and "uri" in c else {"uri": uri, "text": _block_text(c)} for c in contents]
        items += [{"uri": "mattrace:injected", "text": _text(v)} for k, v in value.items()
                  if k not in _READ_RESULT_KEYS and v is not None]
        return {**out, "contents": items}
    if value is None:
        return {"contents": []}
    items_in = value if isinstance(value, list) else [value]
    return {"contents": [{"uri": uri, "text": _block_text(v)} for v in items_in]}


class McpBoundary:
    """The MCP calls of one client session, recorded into the active run.

    Args:
        marks: the user's trust and side-effect overrides.
        pin: a lock file: read when it exists (its definitions are the pins), written from the
            session's first complete ``tools/list`` when it does not.
        agent: who makes the calls (the agent MCP steps are attributed to).

    One per session; calls may overlap (asyncio tasks), each recorded when it completes.
    Outside any ``record()`` block, requests go straight to the server, unrecorded.

    Raises:
        McpError: the lock file exists but is not one.
    """

    def __init__(self, *, marks: Marks | None = None, pin: str | Path | None = None, agent: str = "main") -> None:
        self.marks = marks or Marks()
        self.agent = agent
        self.server = "server"
        self.client: dict[str, Any] = {}
        self.lock_path = Path(pin) if pin is not None else None
        locked = read_lock(self.lock_path) if self.lock_path is not None and self.lock_path.exists() else None
        self.pins = ToolPins(locked, source=str(self.lock_path) if locked is not None else None)

    # -- dispatch --------------------------------------------------------------------------

    async def request(self, method: str, params: dict[str, Any] | None, forward: Forward) -> dict[str, Any]:
        """Answer one client request: through the chain, recorded; raises McpRemoteError for a
        JSON-RPC error to hand back."""
        rec = active_recorder()
        if method == "initialize" and isinstance(params, dict) and isinstance(params.get("clientInfo"), dict):
            self.client = params["clientInfo"]
        if rec is None:
            return await forward(method, params)
        if method == "tools/call":
            return await self._tool(rec, params or {}, forward)
        if method == "resources/read":
            return await self._read(rec, params or {}, forward)
        result = await self._protocol(rec, method, params, forward)
        if method == "initialize":
            info = result.get("serverInfo")
            if isinstance(info, dict) and isinstance(info.get("name"), str) and info["name"]:
                self.server = info["name"]
        elif method == "tools/list":
            self._listed(rec, params, result)
        elif method == "prompts/get":
            self._prompt(rec, params or {}, result)
        return result

    async def _protocol(self, rec: Recorder, method: str, params: dict[str, Any] | None,
                        forward: Forward) -> dict[str, Any]:
        args, meta = _split_meta(params)

        async def send(**arguments: Any) -> dict[str, Any]:
            return await forward(method, _with_meta(arguments, meta) if params is not None else None)

        call = Call(StepKind.MESSAGE, method, args, self.agent)
        outcome = await run_call_async(rec.chain, call, send)
        if outcome.error is not None:
            raise _remote(outcome.error)
        if not isinstance(outcome.result, dict):
            raise McpRemoteError(INTERNAL_ERROR, f"the result of {method} is not an object: {outcome.result!r:.200}")
        return outcome.result

    # -- tools ----------------------------------------------------------------------------

    async def _tool(self, rec: Recorder, params: dict[str, Any], forward: Forward) -> dict[str, Any]:
        name = params.get("name")
        if not isinstance(name, str):
            raise McpRemoteError(-32602, "tools/call needs a string \"name\"")
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise McpRemoteError(-32602, "tools/call \"arguments\" must be an object")
        marks = self.marks.tool(name, self.pins.tool(name))
        rest = {k: v for k, v in params.items() if k != "arguments"}

        async def send(**args: Any) -> dict[str, Any]:
            return await forward("tools/call", {**rest, "arguments": args})

        call = Call(StepKind.TOOL, name, dict(arguments), self.agent, marks.side_effect,
                    attrs={"mcp": {"server": self.server, "destructive": marks.destructive, "marked_by": marks.why}})
        t_start = time.time_ns()
        outcome = await run_call_async(rec.chain, call, send)
        if call.refused:   # governance: the decision step holds the attempt; the client hears why
            return {"content": [{"type": "text", "text": _refusal(outcome)}], "isError": True}
        faulted = bool(call.attrs.get("faults"))
        error: BaseException | StepError | None = outcome.error
        result: dict[str, Any] | None = None
        if outcome.error is not None and not _is_protocol_error(outcome.error):
            result = {"content": [{"type": "text", "text": f"{type(outcome.error).__name__}: {outcome.error}"}],
                      "isError": True}
        elif outcome.error is None:
            result = call_result(outcome.result, faulted)
            if result.get("isError") is True:
                error = StepError(type="ToolError", message=" ".join(_block_text(b) for b in result["content"]))
        sources = [*self._tool_sources(name, marks, result), *call.sources]
        attrs = dict(call.attrs)
        labels = meta_labels((result or {}).get("_meta"))
        if labels:
            attrs["mcp_labels"] = labels
        rec.append(StepKind.TOOL, agent=call.agent, target=name, args=call.args, result=result, error=error,
                   sources=sources, reads=call.reads, side_effect=call.side_effect, attrs=attrs,
                   t_start=t_start, t_end=time.time_ns())
        if result is None:
            assert outcome.error is not None
            raise _remote(outcome.error)
        return result

    def _tool_sources(self, name: str, marks: ToolMarks, result: dict[str, Any] | None) -> list[Source]:
        trusted = marks.trusted
        if not marks.configured_trust and result is not None:
            said = [meta_trust(result.get("_meta"))] + [meta_trust(b.get("_meta")) for b in result.get("content", ())
                                                        if isinstance(b, dict)]
            if False in said:
                trusted = False
            elif True in said:
                trusted = True
        return [Source(kind="tool", ref=name, trusted=trusted)]

    def _listed(self, rec: Recorder, params: dict[str, Any] | None, result: dict[str, Any]) -> None:
        tools = [t for t in result.get("tools", ()) if isinstance(t, dict)] if isinstance(result.get("tools"), list) \
            else []
        first_page = not (params or {}).get("cursor")
        last_page = not result.get("nextCursor")
        was_pinned = self.pins.pinned is not None
        changes = self.pins.observe(tools, first_page=first_page, last_page=last_page)
        if not was_pinned and self.pins.pinned is not None and self.lock_path is not None:
            try:
                write_lock(self.lock_path, self.pins.pinned)
            except OSError as exc:
                raise McpError(f"cannot write the tools lock file: {exc}", path=self.lock_path) from None
            self.pins.source = str(self.lock_path)
        listed = [{"name": t.get("name"), **definition(t)} for t in tools]
        attrs: dict[str, Any] = {"mcp": {"method": "tools/list", "pinned_by": self.pins.source}}
        if changes:
            attrs["mcp_tool_changes"] = changes
        names = ", ".join(str(t.get("name")) for t in tools)
        rec.append(StepKind.MESSAGE, agent=self.server, target=self.agent, content=f"tools: {names}",
                   result={"tools": listed}, sources=[Source(kind="tool", ref=f"{self.server}:tools/list")],
                   attrs=attrs)

    # -- resources and prompts --------------------------------------------------------------

    async def _read(self, rec: Recorder, params: dict[str, Any], forward: Forward) -> dict[str, Any]:
        uri = params.get("uri")
        if not isinstance(uri, str):
            raise McpRemoteError(-32602, "resources/read needs a string \"uri\"")
        rest = {k: v for k, v in params.items() if k != "uri"}

        async def send(**args: Any) -> dict[str, Any]:
            return await forward("resources/read", {**rest, **args})

        call = Call(StepKind.RETRIEVAL, uri, {"uri": uri}, self.agent, attrs={"mcp": {"server": self.server}})
        t_start = time.time_ns()
        outcome = await run_call_async(rec.chain, call, send)
        if call.refused:
            raise McpRemoteError(INTERNAL_ERROR, _refusal(outcome))
        result = read_result(outcome.result, uri, bool(call.attrs.get("faults"))) if outcome.error is None else None
        configured = self.marks.resource(uri)
        base = meta_trust((result or {}).get("_meta"))
        docs: list[dict[str, Any]] = []
        for i, item in enumerate((result or {}).get("contents", ())):
            item = item if isinstance(item, dict) else {"text": _text(item)}
            said = meta_trust(item.get("_meta"))
            trusted = configured if configured is not None else said if said is not None else \
                base if base is not None else True
            docs.append({"id": str(item.get("uri") or f"{uri}#{i}"), "text": _block_text(item), "trusted": trusted})
        sources = [Source(kind="retrieval", ref=d["id"], trusted=d["trusted"]) for d in docs]
        rec.append(StepKind.RETRIEVAL, agent=call.agent, target=uri, args=call.args,
                   result=docs if result is not None else None, error=outcome.error,
                   sources=[*sources, *call.sources], reads=call.reads, attrs=dict(call.attrs),
                   t_start=t_start, t_end=time.time_ns())
        if result is None:
            assert outcome.error is not None
            raise _remote(outcome.error)
        return result

    def _prompt(self, rec: Recorder, params: dict[str, Any], result: dict[str, Any]) -> None:
        name = str(params.get("name", ""))
        found = result.get("messages")
        messages: list[Any] = found if isinstance(found, list) else []
        for message in messages:
            if not isinstance(message, dict):
                continue
            rec.append(StepKind.MESSAGE, agent=self.server, target=self.agent,
                       content=_block_text(message.get("content")),
                       sources=[Source(kind="tool", ref=f"{self.server}:prompt:{name}")],
                       attrs={"mcp": {"method": "prompts/get", "prompt": name, "role": message.get("role"),
                                      "arguments": params.get("arguments") or {}}})


def _refusal(outcome: CallOutcome) -> str:
    if isinstance(outcome.result, dict) and outcome.result.get("blocked"):
        return f"blocked by mattrace governance ({outcome.result.get('rule')}): {outcome.result.get('reason')}"
    if isinstance(outcome.error, ActionBlocked):
        return f"blocked by mattrace governance: {outcome.error}"
    return f"refused by mattrace: {outcome.error or outcome.result}"


def _is_protocol_error(exc: BaseException) -> bool:
    """A JSON-RPC error (the server's, or a replay that cannot answer): handed back as one."""
    return isinstance(exc, McpRemoteError | ReplayMismatch) or (
        type(getattr(exc, "code", None)) is int and isinstance(getattr(exc, "rpc_message", None), str))


def _remote(exc: BaseException) -> McpRemoteError:
    if isinstance(exc, McpRemoteError):
        return exc
    error = rpc_error(exc)
    data = error.get("data")
    return McpRemoteError(error["code"], error["message"], json.dumps(data) if data is not None else None)
