"""The MCP boundary from the client's side: an instrumented in-process ClientSession, and clients that
misbehave towards the proxy (bad lines, leaving mid-call, a SIGTERM)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

import mattrace
from mattrace.cli import main
from mattrace.integrations.mcp import instrument
from mattrace.trace import StepKind

pytestmark = pytest.mark.slow
SERVER = [sys.executable, str(Path(__file__).parent / "mcp_test_server.py")]


async def _calls(session: ClientSession) -> list[Any]:
    await session.initialize()
    listed = await session.list_tools()
    weather = await session.call_tool("weather", {"city": "Oslo"})
    note = await session.read_resource("note://readme")
    return [[t.name for t in listed.tools], weather.content[0].text, note.contents[0].text]   # type: ignore[union-attr]


def test_an_instrumented_session_records_the_same_steps_and_replays_without_a_server(tmp_path: Path) -> None:
    """instrument(ClientSession) records tools/list, tools/call and resources/read like the proxy; under
    record_mode="none" the session's streams lead nowhere and the run has the same fingerprint."""
    params = StdioServerParameters(command=SERVER[0], args=[SERVER[1], "plain"], env={"PATH": os.environ["PATH"]})
    cassette = tmp_path / "session.cassette"

    async def live() -> list[Any]:
        with anyio.fail_after(60), (tmp_path / "server.stderr").open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                async with mattrace.record("in-process", cassette=cassette) as rec:
                    out = await _calls(instrument(session))
        return [out, rec.trace]

    async def replay() -> list[Any]:
        send, receive = anyio.create_memory_object_stream[Any](math.inf)   # nothing on the other end
        with anyio.fail_after(30):
            async with ClientSession(receive, send) as session:
                async with mattrace.record("in-process", cassette=cassette, record_mode="none") as rec:
                    out = await _calls(instrument(session))
        return [out, rec.trace]

    (answers, recorded), (replayed_answers, replayed) = anyio.run(live), anyio.run(replay)
    assert answers == [["weather", "crash", "garble", "labelled"], "sunny in Oslo", "The readme says hello."]
    assert [(s.kind, s.target) for s in recorded.steps] == [
        (StepKind.MESSAGE, "main"), (StepKind.TOOL, "weather"), (StepKind.RETRIEVAL, "note://readme"),
        (StepKind.END, None)]
    weather = recorded.steps[1]
    assert weather.side_effect is False and not weather.untrusted and weather.args == {"city": "Oslo"}
    assert replayed_answers == answers and replayed.fingerprint() == recorded.fingerprint()


def _proxy(tmp_path: Path, *mode: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "mattrace", "mcp", "--dir", str(tmp_path / "traces"), "--",
                             *SERVER, *mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=tmp_path)


def _send(proxy: subprocess.Popen[bytes], *lines: str) -> None:
    assert proxy.stdin is not None
    proxy.stdin.write("".join(line + "\n" for line in lines).encode())
    proxy.stdin.flush()


def _answer(proxy: subprocess.Popen[bytes]) -> dict[str, Any]:
    assert proxy.stdout is not None
    line = proxy.stdout.readline()
    assert line, "the proxy closed its output"
    answer: dict[str, Any] = json.loads(line)
    return answer


INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw-client", "version": "1"}}})


def _sealed(tmp_path: Path) -> mattrace.Trace:
    (path,) = (tmp_path / "traces").glob("*.jsonl")
    return mattrace.load(path)


def test_malformed_client_lines_get_json_rpc_errors_and_leaving_mid_call_seals_the_trace(tmp_path: Path) -> None:
    """A line that is not JSON gets a parse error, one that is not JSON-RPC an invalid-request error with its
    id; a client that leaves while a call runs gets the call recorded and the trace sealed."""
    with _proxy(tmp_path, "plain") as proxy:
        _send(proxy, INIT)
        assert _answer(proxy)["result"]["serverInfo"]["name"] == "test-server"
        _send(proxy, "{this is not json", json.dumps({"jsonrpc": "2.0", "id": 7, "method": 5}))
        parse, invalid = _answer(proxy), _answer(proxy)
        assert parse["id"] is None and parse["error"]["code"] == -32700
        assert invalid["id"] == 7 and invalid["error"]["code"] == -32600
        _send(proxy, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
              json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                          "params": {"name": "weather", "arguments": {"city": "Rome"}}}))
        assert proxy.stdin is not None
        proxy.stdin.close()   # the client leaves before the answer
        assert proxy.wait(timeout=30) == 0
    recorded = _sealed(tmp_path)
    assert recorded.name == "mcp-raw-client" and recorded.outcome is not None
    weather = next(s for s in recorded.steps if s.target == "weather")
    assert weather.kind is StepKind.TOOL and weather.result["content"][0]["text"] == "sunny in Rome"


def test_sigterm_ends_the_session_with_a_sealed_trace(tmp_path: Path) -> None:
    """A client that stops the proxy with SIGTERM (as SDK clients do) still leaves a sealed trace."""
    with _proxy(tmp_path, "plain") as proxy:
        _send(proxy, INIT)
        _answer(proxy)
        proxy.send_signal(signal.SIGTERM)
        assert proxy.wait(timeout=30) == 0
    recorded = _sealed(tmp_path)
    assert recorded.outcome is not None and recorded.steps[-1].kind is StepKind.END


def test_usage_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """No server command, --record none without a cassette, or a bad lock file: one line, exit 2, no traceback."""
    assert main(["mcp"]) == 2
    assert main(["mcp", "--record", "none", "--", "x"]) == 2
    (tmp_path / "bad.lock").write_text("[]")
    started = time.monotonic()
    assert main(["mcp", "--pin", str(tmp_path / "bad.lock"), "--", sys.executable, "-c", "pass"]) == 2
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("mattrace: error: no server command")
    assert err[1].startswith("mattrace: error: --record none replays a recorded session")
    assert err[2].startswith("mattrace: error: ") and "bad.lock:1: not a tools lock file" in err[2]
    assert len(err) == 3
