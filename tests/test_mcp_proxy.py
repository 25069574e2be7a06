"""The MCP proxy end to end: real servers behind ``mattrace mcp``, driven by the SDK's real client over stdio."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

import mattrace
from examples.mcp_git.session import make_repository
from mattrace.contracts import never, no_destructive_call, step, tool_definitions_stable
from mattrace.integrations.mcp import read_lock
from mattrace.trace import StepKind, Trace

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
TEST_SERVER = [sys.executable, str(HERE / "mcp_test_server.py")]
Script = Callable[[ClientSession], Awaitable[Any]]


def _proxy(tmp_path: Path, options: list[str], server: list[str]) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable,
                                 args=["-m", "mattrace", "mcp", "--dir", str(tmp_path / "traces"), *options, "--",
                                       *server],
                                 env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)}, cwd=str(tmp_path))


def drive(tmp_path: Path, options: list[str], server: list[str], script: Script, seconds: float = 60) -> Any:
    """Run ``script`` on a client session through the proxy; the script's value."""
    async def main() -> Any:
        with anyio.fail_after(seconds), (tmp_path / "proxy.stderr").open("a") as errlog:
            async with stdio_client(_proxy(tmp_path, options, server), errlog=errlog) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await script(session)
    return anyio.run(main)


def traces(tmp_path: Path) -> list[Trace]:
    """The sessions recorded so far, oldest first."""
    for _ in range(100):   # the proxy seals its trace as the session ends, just after the client leaves
        files = sorted((tmp_path / "traces").glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns)
        loaded = [mattrace.load(f) for f in files]
        if loaded and all(t.outcome is not None for t in loaded):
            return loaded
        time.sleep(0.05)
    raise AssertionError(f"no sealed trace in {tmp_path / 'traces'}")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit and one staged change (``notes.txt``), as the example makes it."""
    return make_repository(tmp_path / "repo")


def _git_server(repo: Path) -> list[str]:
    return [sys.executable, "-m", "mcp_server_git", "--repository", str(repo)]


def _text(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def test_git_session_is_recorded_with_marks_and_replays_without_the_server(tmp_path: Path, repo: Path) -> None:
    """mcp-server-git behind the proxy: tools and calls recorded with annotation marks, a contract
    catches the destructive call, and --record none replays the session with no server, same fingerprint."""
    async def script(session: ClientSession) -> list[str]:
        listed = await session.list_tools()
        status = await session.call_tool("git_status", {"repo_path": str(repo)})
        reset = await session.call_tool("git_reset", {"repo_path": str(repo)})
        return [",".join(t.name for t in listed.tools), _text(status), _text(reset)]

    live = drive(tmp_path, ["--name", "git-session"], _git_server(repo), script)
    assert "Changes to be committed" in live[1] and live[2] == "All staged changes reset"
    recorded = traces(tmp_path)[0]
    assert recorded.name == "git-session" and recorded.outcome is not None and recorded.outcome.status == "success"
    listing, status, reset = (s for s in recorded.steps if s.kind is not StepKind.END)
    assert listing.kind is StepKind.MESSAGE and listing.agent == "mcp-git"
    assert {t["name"] for t in listing.result["tools"]} >= {"git_status", "git_reset", "git_commit"}
    reset_def = next(t for t in listing.result["tools"] if t["name"] == "git_reset")
    assert reset_def["annotations"]["destructiveHint"] is True and "inputSchema" in reset_def
    assert (status.target, status.side_effect, status.untrusted) == ("git_status", False, False)
    assert status.args == {"repo_path": str(repo)} and status.result["isError"] is False
    assert (reset.target, reset.side_effect, reset.attrs["mcp"]["destructive"]) == ("git_reset", True, True)
    destructive = never(step.where(lambda s: bool(s.attrs.get("mcp", {}).get("destructive")),
                                   "a destructive MCP tool call")).named("no destructive calls")
    violation = mattrace.check(recorded, [destructive]).first_violation
    assert violation is not None and violation.step == reset.index
    stock = mattrace.check(recorded, [no_destructive_call()]).first_violation
    assert stock is not None and stock.step == reset.index and stock.witness == (listing.index, reset.index)
    assert "tool git_reset" in stock.reason and "destructiveHint: true (listed at step 0)" in stock.reason
    assert mattrace.check(recorded, [no_destructive_call(allow=["git_re*"])]).ok

    cassette = sorted((tmp_path / "traces").glob("*.cassette"))[0]
    replay_dir = tmp_path / "replayed"
    replayed = drive(tmp_path, ["--name", "git-session", "--record", "none", "--cassette", str(cassette),
                                "--dir", str(replay_dir)], ["/nonexistent/mcp-server"], script)
    assert replayed == live
    again = [mattrace.load(p) for p in replay_dir.glob("*.jsonl")]
    assert len(again) == 1 and again[0].fingerprint() == recorded.fingerprint()


def test_policy_blocks_a_destructive_call_and_a_planned_fault_is_recorded(tmp_path: Path, repo: Path) -> None:
    """A governance policy answers git_reset with an MCP error result naming the reason (nothing is reset),
    and a fault plan aimed at tool:git_* times the first call out, recorded as a fault step."""
    (tmp_path / "policy.toml").write_text(
        '[[rule]]\nuse = "block"\nid = "no-reset"\nstep = { tool = "git_reset" }\n'
        'reason = "resetting the index needs a person"\n')
    (tmp_path / "faults.toml").write_text('[[fault]]\ntype = "Timeout"\ntarget = "tool:git_*"\non_call = 1\n')

    async def script(session: ClientSession) -> list[Any]:
        await session.list_tools()
        first = await session.call_tool("git_log", {"repo_path": str(repo)})
        reset = await session.call_tool("git_reset", {"repo_path": str(repo)})
        return [first.is_error, _text(first), reset.is_error, _text(reset)]

    faulted, fault_text, blocked, reason = drive(
        tmp_path, ["--policy", str(tmp_path / "policy.toml"), "--faults", str(tmp_path / "faults.toml")],
        _git_server(repo), script)
    assert faulted is True and "InjectedTimeout" in fault_text
    assert blocked is True and "no-reset" in reason and "resetting the index needs a person" in reason
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=repo, capture_output=True, text=True)
    assert staged.stdout.strip() == "notes.txt"   # the reset never ran
    recorded = traces(tmp_path)[0]
    kinds = [(s.kind.value, s.target) for s in recorded.steps]
    fault = next(s for s in recorded.steps if s.kind is StepKind.FAULT)
    log = next(s for s in recorded.steps if s.kind is StepKind.TOOL and s.target == "git_log")
    assert fault.target == "tool:git_log" and fault.index in log.reads and log.error is not None
    decisions = [s for s in recorded.steps if s.kind is StepKind.GOVERNANCE and s.args["decision"] == "block"]
    assert [d.target for d in decisions] == ["tool:git_reset"] and decisions[0].args["rule"] == "no-reset"
    assert ("tool", "git_reset") not in kinds


def test_a_changed_description_and_a_rename_are_caught_at_their_listing(tmp_path: Path) -> None:
    """A server that rewrites a tool's description after its first call, or renames it, fails
    tool_definitions_stable() at the listing that shows it."""
    async def script(session: ClientSession) -> None:
        await session.list_tools()
        await session.call_tool("weather", {"city": "Oslo"})
        await session.list_tools()

    drive(tmp_path, [], [*TEST_SERVER, "rugpull"], script)
    drive(tmp_path, [], [*TEST_SERVER, "rename"], script)
    rugpull, rename = traces(tmp_path)
    for recorded, expected in ((rugpull, "the description of 'weather' changed"),
                               (rename, "'weather' was renamed to 'forecast'")):
        listings = [s for s in recorded.steps if s.attrs.get("mcp", {}).get("method") == "tools/list"]
        violation = mattrace.check(recorded, [tool_definitions_stable()]).first_violation
        assert violation is not None and violation.step == listings[1].index, recorded.name
        assert expected in violation.reason and violation.witness == (listings[0].index, listings[1].index)


def test_a_lock_file_pins_definitions_across_sessions(tmp_path: Path) -> None:
    """--pin writes the lock from the first session; a later server describing a tool otherwise fails at
    its first listing."""
    lock = tmp_path / "tools.lock"

    async def script(session: ClientSession) -> None:
        await session.list_tools()

    drive(tmp_path, ["--pin", str(lock)], [*TEST_SERVER, "plain"], script)
    assert "weather" in read_lock(lock)
    drive(tmp_path, ["--pin", str(lock)], [*TEST_SERVER, "plain", "--describe", "Weather, and mail the logs."], script)
    first, second = traces(tmp_path)
    assert mattrace.check(first, [tool_definitions_stable()]).first_violation is None
    violation = mattrace.check(second, [tool_definitions_stable()]).first_violation
    assert violation is not None and violation.step == 0 and str(lock) in violation.reason


def test_labels_resources_and_a_dying_server(tmp_path: Path) -> None:
    """A result labelled untrusted in _meta is recorded untrusted, a resource read is a retrieval step,
    and a server that exits mid-call gives the client a JSON-RPC error and a sealed trace ending in error."""
    async def script(session: ClientSession) -> str:
        await session.list_tools()
        await session.call_tool("labelled", {})
        await session.read_resource("note://readme")
        with pytest.raises(MCPError) as died:
            await session.call_tool("crash", {})
        return str(died.value)

    message = drive(tmp_path, [], [*TEST_SERVER, "plain"], script)
    assert "exited with status 3" in message
    recorded = traces(tmp_path)[0]
    labelled = next(s for s in recorded.steps if s.target == "labelled")
    assert labelled.untrusted and labelled.side_effect is False and labelled.attrs["mcp_labels"]
    read = next(s for s in recorded.steps if s.kind is StepKind.RETRIEVAL)
    assert read.target == "note://readme" and read.result[0]["text"] == "The readme says hello."
    crash = next(s for s in recorded.steps if s.target == "crash")
    assert crash.error is not None and "exited with status 3" in crash.error.message
    assert recorded.outcome is not None and recorded.outcome.status == "error"


def test_malformed_server_lines_become_json_rpc_errors(tmp_path: Path) -> None:
    """A server answering with a line that is not JSON, or with a result that is not an object, gives the
    waiting client a JSON-RPC error; the session goes on."""
    async def script(session: ClientSession) -> list[str]:
        await session.list_tools()
        errors = []
        for tool in ("garble", "badshape"):
            with pytest.raises(MCPError) as bad:
                await session.call_tool(tool, {})
            errors.append(str(bad.value))
        echoed = await session.call_tool("echo", {"x": 1})
        return [*errors, _text(echoed)]

    garbled, badshape, echoed = drive(tmp_path, [], [*TEST_SERVER, "raw"], script)
    assert "not JSON-RPC" in garbled and "this is not json" in garbled
    assert "not a valid JSON-RPC message" in badshape and echoed == '{"x": 1}'
    recorded = traces(tmp_path)[0]
    assert [s.target for s in recorded.steps if s.error is not None] == ["garble", "badshape"]
    assert recorded.outcome is not None and recorded.outcome.status == "success"
