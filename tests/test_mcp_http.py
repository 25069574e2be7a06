"""``mattrace mcp --http URL``: the proxy in front of a streamable-HTTP server, both on loopback,
driven by the SDK's streamable-HTTP client; and what a session records of the server's own
requests (sampling, elicitation, roots), over HTTP and stdio."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CreateMessageResult, ElicitResult, ListRootsResult, Root, TextContent

from mattrace.trace import StepKind, Trace
from tests.test_mcp_proxy import traces

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
ASK_SERVER = [sys.executable, str(HERE / "mcp_ask_server.py")]
Script = Callable[[ClientSession], Awaitable[Any]]
SLOW_USER = 1.5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test server over streamable HTTP on 127.0.0.1; its URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen([*ASK_SERVER, "http", str(port)], stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.terminate()
        server.wait(10)


@contextmanager
def proxy(tmp_path: Path, url: str, options: list[str]) -> Iterator[str]:
    """``mattrace mcp --http url`` listening on a free loopback port; the URL it prints."""
    process = subprocess.Popen([sys.executable, "-m", "mattrace", "mcp", "--dir", str(tmp_path / "traces"),
                                "--http", url, *options], stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HOME": str(tmp_path)}, cwd=tmp_path)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+/mcp) ", line)
        assert found, line + process.stderr.read()
        yield found.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(15)
        if process.stderr is not None:
            process.stderr.close()
        assert status == 0


def _sampling(answer: str) -> Any:
    async def callback(context: Any, params: Any) -> CreateMessageResult:
        asked = params.messages[0].content.text
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text=f"{answer} ({asked})"),
                                   model="test-model", stop_reason="endTurn")
    return callback


async def _elicit(context: Any, params: Any) -> ElicitResult:
    await anyio.sleep(SLOW_USER)   # longer than the stdio test's --timeout: a person is typing
    return ElicitResult(action="accept", content={"proceed": True, "note": "go ahead"})


async def _roots(context: Any) -> ListRootsResult:
    return ListRootsResult(roots=[Root(uri="file:///work/shop", name="shop")])


def over_http(url: str, script: Script, seconds: float = 60) -> Any:
    """Run ``script`` on an SDK client session over streamable HTTP at ``url`` (with callbacks for
    the server's requests)."""
    async def main() -> Any:
        with anyio.fail_after(seconds):
            async with streamable_http_client(url) as (read, write), ClientSession(
                    read, write, sampling_callback=_sampling("a short summary"), elicitation_callback=_elicit,
                    list_roots_callback=_roots) as session:
                await session.initialize()
                return await script(session)
    return anyio.run(main)


def _text(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def test_http_proxy_records_calls_and_a_policy_blocks_one(tmp_path: Path, http_server: str) -> None:
    """The SDK client calls tools of a streamable-HTTP server through the proxy: the trace has the
    listing and the calls with their annotation marks, and a governance block reaches the client as an
    error result (the server never runs the call)."""
    (tmp_path / "policy.toml").write_text('[[rule]]\nuse = "block"\nid = "no-wipe"\nstep = { tool = "wipe" }\n'
                                          'reason = "wiping needs a person"\n')

    async def script(session: ClientSession) -> list[Any]:
        listed = await session.list_tools()
        echoed = await session.call_tool("echo", {"text": "over http"})
        wiped = await session.call_tool("wipe", {"path": "/srv"})
        return [sorted(t.name for t in listed.tools), _text(echoed), wiped.is_error, _text(wiped)]

    options = ["--name", "http-session", "--policy", str(tmp_path / "policy.toml"),
               "--cassette", str(tmp_path / "http.cassette")]
    with proxy(tmp_path, http_server, options) as url:
        live = over_http(url, script)
    names, echoed, blocked, reason = live
    assert "echo" in names and "wipe" in names and echoed == "over http"
    assert blocked is True and "no-wipe" in reason and "wiping needs a person" in reason
    recorded = traces(tmp_path)[0]
    assert recorded.name == "http-session" and recorded.outcome is not None
    assert recorded.outcome.status == "success"
    listing = next(s for s in recorded.steps if s.kind is StepKind.MESSAGE)
    assert listing.agent == "ask-server" and {t["name"] for t in listing.result["tools"]} >= {"echo", "wipe"}
    echo = next(s for s in recorded.steps if s.kind is StepKind.TOOL)
    assert (echo.target, echo.args, echo.side_effect) == ("echo", {"text": "over http"}, False)
    assert echo.result["content"][0]["text"] == "over http"
    blocks = [s for s in recorded.steps if s.kind is StepKind.GOVERNANCE and s.args["decision"] == "block"]
    assert [d.target for d in blocks] == ["tool:wipe"] and blocks[0].args["rule"] == "no-wipe"
    assert not any(s.kind is StepKind.TOOL and s.target == "wipe" for s in recorded.steps)

    # --record none: the cassette answers the same session over HTTP; the server's URL is never reached
    (tmp_path / "replay").mkdir()
    with proxy(tmp_path / "replay", f"http://127.0.0.1:{_free_port()}/mcp", [*options, "--record", "none"]) as url:
        assert over_http(url, script) == live
    (replayed,) = traces(tmp_path / "replay")
    assert replayed.fingerprint() == recorded.fingerprint()


def test_an_unreachable_server_is_an_error_not_a_hang(tmp_path: Path) -> None:
    """A server URL nobody listens on: the client's initialize gets a JSON-RPC error at once, the
    session's trace ends in error, and the proxy goes on serving the next client."""
    async def connect(url: str) -> str:
        with anyio.fail_after(30):
            async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
                with pytest.raises(MCPError) as failed:
                    await session.initialize()
                return str(failed.value)

    dead = f"http://127.0.0.1:{_free_port()}/mcp"
    with proxy(tmp_path, dead, []) as url:
        for _ in range(2):
            assert "cannot be reached" in anyio.run(connect, url)
    recorded = traces(tmp_path)
    assert len(recorded) == 2 and all(t.outcome is not None and t.outcome.status == "error" for t in recorded)


def _asks_recorded(recorded: Trace) -> None:
    sampling = next(s for s in recorded.steps if s.kind is StepKind.LLM)
    assert sampling.target == "test-model" and sampling.agent == "main"
    assert sampling.args["systemPrompt"] == "You summarise." and sampling.args["maxTokens"] == 50
    assert sampling.content == "a short summary (Summarise: the long report)" and sampling.untrusted
    assert sampling.attrs["mcp"] == {"method": "sampling/createMessage", "server": "ask-server"}
    elicited = next(s for s in recorded.steps if s.attrs.get("mcp", {}).get("method") == "elicitation/create")
    assert (elicited.kind, elicited.agent, elicited.target) == (StepKind.MESSAGE, "user", "ask-server")
    assert elicited.attrs["mcp"]["message"] == "May I deploy?" and elicited.attrs["mcp"]["action"] == "accept"
    assert elicited.result["content"] == {"proceed": True, "note": "go ahead"}
    roots = next(s for s in recorded.steps if s.attrs.get("mcp", {}).get("method") == "roots/list")
    assert roots.result["roots"][0]["uri"] == "file:///work/shop"
    summarise = next(s for s in recorded.steps if s.kind is StepKind.TOOL and s.target == "summarise")
    assert sampling.index < summarise.index   # the answer came before the call it served ended


async def _ask_everything(session: ClientSession) -> list[str]:
    return [_text(await session.call_tool("summarise", {"text": "the long report"})),
            _text(await session.call_tool("confirm", {"action": "deploy"})),
            _text(await session.call_tool("roots", {}))]


EXPECTED_ANSWERS = ["summary: a short summary (Summarise: the long report)",
                    "accept: proceed=True note=go ahead", "file:///work/shop"]


def test_server_requests_pass_through_http_and_are_recorded(tmp_path: Path, http_server: str) -> None:
    """A tool that asks the client's model (sampling), the user (elicitation) and the client's roots
    gets its answers through the HTTP proxy; each is recorded: an llm step, a message from the user,
    a message with the roots."""
    with proxy(tmp_path, http_server, []) as url:
        answers = over_http(url, _ask_everything)
    assert answers == EXPECTED_ANSWERS
    _asks_recorded(traces(tmp_path)[0])


def test_server_requests_pass_through_stdio_and_are_recorded(tmp_path: Path) -> None:
    """The same over the stdio proxy, with a --timeout shorter than the user takes to answer: the clock
    stands still while the server waits on the client, and a call the server never answers times out."""
    from mcp import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "mattrace", "mcp", "--dir",
                                                                 str(tmp_path / "traces"), "--timeout", "1", "--",
                                                                 *ASK_SERVER,
                                                                 "stdio"],
                                   env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, cwd=str(tmp_path))

    async def main() -> list[str]:
        with anyio.fail_after(60), (tmp_path / "proxy.stderr").open("a") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(
                    read, write, sampling_callback=_sampling("a short summary"), elicitation_callback=_elicit,
                    list_roots_callback=_roots) as session:
                await session.initialize()
                answers = await _ask_everything(session)
                with pytest.raises(MCPError) as stalled:
                    await session.call_tool("stall", {})
                return [*answers, str(stalled.value)]

    *answers, stalled = anyio.run(main)
    assert answers == EXPECTED_ANSWERS and "did not answer tools/call within 1 s" in stalled
    recorded = traces(tmp_path)[0]
    _asks_recorded(recorded)
    assert next(s for s in recorded.steps if s.target == "stall").error is not None


def test_a_silent_server_times_out_over_http(tmp_path: Path, http_server: str) -> None:
    """--timeout: a tools/call the server never answers gets the client a JSON-RPC timeout error within
    the limit, the step records it, and the session goes on."""
    async def script(session: ClientSession) -> list[Any]:
        started = time.monotonic()
        with pytest.raises(MCPError) as stalled:
            await session.call_tool("stall", {})
        waited = time.monotonic() - started
        return [str(stalled.value), waited, _text(await session.call_tool("echo", {"text": "still here"}))]

    with proxy(tmp_path, http_server, ["--timeout", "1"]) as url:
        message, waited, after = over_http(url, script)
    assert "did not answer tools/call within 1 s" in message and 0.9 < waited < 10 and after == "still here"
    recorded = traces(tmp_path)[0]
    stall = next(s for s in recorded.steps if s.target == "stall")
    assert stall.error is not None and "within 1 s" in stall.error.message


def test_bad_http_options_are_refused(tmp_path: Path) -> None:
    """--listen takes a loopback HOST:PORT, --http a URL, --timeout a positive number; anything else is
    one line on stderr and exit status 2."""
    url = "http://127.0.0.1:1/mcp"
    for options, said in ((["--http", url, "--listen", "0.0.0.0:8000"], "loopback only"),
                          (["--http", url, "--listen", "localhost"], "HOST:PORT"),
                          (["--http", url, "--listen", "127.0.0.1:99999"], "0 to"),
                          (["--http", "127.0.0.1:8000"], "http:// or https:// URL"),
                          (["--http", url, "--timeout", "-1"], "above 0"),
                          (["--http", url, "--", "python", "server.py"], "not both")):
        done = subprocess.run([sys.executable, "-m", "mattrace", "mcp", *options], capture_output=True, text=True,
                              cwd=tmp_path, timeout=60)
        assert done.returncode == 2 and said in done.stderr, (options, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_foreign_host_header_is_refused(tmp_path: Path, http_server: str) -> None:
    """DNS rebinding: a request naming a host that is not loopback is refused (421) and opens no
    session (no trace); a proper client is served after it."""
    import httpx2

    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "evil", "version": "1"}}}
    with proxy(tmp_path, http_server, []) as url:
        refused = httpx2.post(url, json=body, headers={"Host": "evil.example:80",
                                                       "Accept": "application/json, text/event-stream"})
        assert refused.status_code == 421
        answers = over_http(url, lambda session: session.call_tool("echo", {"text": "fine"}))
    assert _text(answers) == "fine"
    assert [t.name for t in traces(tmp_path)] == ["mcp-mcp"]


def test_a_client_in_auto_mode_falls_back_to_the_handshake(tmp_path: Path, http_server: str) -> None:
    """The SDK's high-level Client probes with the 2026 stateless protocol first; the proxy answers such a
    request -32022 naming the handshake versions, the client falls back to initialize, and the call is
    recorded."""
    import httpx2
    from mcp.client import Client
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

    async def main(url: str) -> str:
        with anyio.fail_after(30):
            async with Client(url) as client:
                return _text(await client.call_tool("echo", {"text": "auto mode"}))

    with proxy(tmp_path, http_server, []) as url:
        probe = httpx2.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}},
                            headers={"MCP-Protocol-Version": "2026-07-28",
                                     "Accept": "application/json, text/event-stream"})
        assert probe.status_code == 400
        error = probe.json()["error"]
        assert error["code"] == -32022 and error["data"]["supported"] == list(HANDSHAKE_PROTOCOL_VERSIONS)
        assert anyio.run(main, url) == "auto mode"
    (recorded,) = traces(tmp_path)
    assert [s.target for s in recorded.steps if s.kind is StepKind.TOOL] == ["echo"]
