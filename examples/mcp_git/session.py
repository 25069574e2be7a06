"""One session with ``mcp-server-git`` through ``mattrace mcp``: recorded, checked, replayed.

Run it from the repository root::

    python -m examples.mcp_git.session              # in a temporary directory
    python -m examples.mcp_git.session --keep DIR   # keep the repository, traces and cassette in DIR

1. A git repository with one commit and one staged change is made in the working directory.
2. The SDK's own ``ClientSession`` (the agent here: a fixed sequence of calls, no model) talks
   to ``mattrace mcp --cassette git.cassette --pin tools.lock -- python -m mcp_server_git
   --repository REPO`` over stdio: it lists the tools, reads the status and the staged diff,
   and resets the index (a destructive call). The proxy records the session as a trace.
3. ``contracts.toml`` is checked against the trace: ``no_destructive_call`` fails at
   ``git_reset``, naming the listing whose annotations say so.
4. The same session runs again with ``--record none``: no server is started (the command
   given is one that does not exist), every answer comes from the cassette, and the replayed
   trace has the recorded trace's fingerprint.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

import mattrace
from mattrace.contracts import load_contracts

HERE = Path(__file__).resolve().parent
CONTRACTS = HERE / "contracts.toml"


@dataclass
class Outcome:
    """What the example found: the agent's answers live and replayed, both traces, the verdicts."""

    live: list[str]
    replayed: list[str]
    recorded: mattrace.Trace
    replay: mattrace.Trace
    report: Any


def make_repository(path: Path) -> Path:
    """A git repository at ``path`` with one commit and one staged change."""
    path.mkdir(parents=True, exist_ok=True)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "ana@example.com")
    git("config", "user.name", "Ana")
    (path / "notes.txt").write_text("first line\n")
    git("add", "notes.txt")
    git("commit", "-qm", "first commit")
    (path / "notes.txt").write_text("first line\nsecond line\n")
    git("add", "notes.txt")
    return path


async def agent(session: ClientSession, repo: Path) -> list[str]:
    """The calls an agent would make: look around, then undo the staged change."""
    listed = await session.list_tools()
    answers = [", ".join(sorted(t.name for t in listed.tools))]
    for tool in ("git_status", "git_diff_staged", "git_reset", "git_status"):
        result = await session.call_tool(tool, {"repo_path": str(repo)})
        answers.append(" ".join(getattr(block, "text", "") for block in result.content))
    return answers


def through_proxy(proxy_args: list[str], server: list[str], repo: Path, cwd: Path) -> list[str]:
    """Run :func:`agent` on a client session with ``mattrace mcp PROXY_ARGS -- SERVER``."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "mattrace", "mcp", *proxy_args, "--", *server],
                                   env={**os.environ}, cwd=str(cwd))

    async def main() -> list[str]:
        with anyio.fail_after(120), (cwd / "proxy.log").open("a") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                return await agent(session, repo)

    return anyio.run(main)


def _sealed(directory: Path) -> mattrace.Trace:
    for _ in range(200):   # the proxy seals its trace as the session ends, just after the client leaves
        found = sorted(directory.glob("*.jsonl"))
        if found:
            trace = mattrace.load(found[-1])
            if trace.outcome is not None:
                return trace
        anyio.run(anyio.sleep, 0.05)
    raise RuntimeError(f"no sealed trace in {directory}")


def run(workdir: Path) -> Outcome:
    """Record, check and replay one session in ``workdir``."""
    repo = make_repository(workdir / "repo")
    cassette = workdir / "git.cassette"
    server = [sys.executable, "-m", "mcp_server_git", "--repository", str(repo)]
    live = through_proxy(["--name", "git-session", "--dir", str(workdir / "traces"), "--cassette", str(cassette),
                          "--pin", str(workdir / "tools.lock")], server, repo, workdir)
    recorded = _sealed(workdir / "traces")
    report = mattrace.check(recorded, load_contracts(CONTRACTS))
    replayed = through_proxy(["--name", "git-session", "--dir", str(workdir / "replayed"), "--record", "none",
                              "--cassette", str(cassette), "--pin", str(workdir / "tools.lock")],
                             ["no-such-mcp-server"], repo, workdir)
    return Outcome(live, replayed, recorded, _sealed(workdir / "replayed"), report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep what was made there")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        outcome = run(workdir.resolve())
    steps = [f"{s.index}: {s.kind.value} " + (f"from {s.agent}" if s.target is None or s.kind.value == "message"
                                              else s.target) for s in outcome.recorded.steps]
    print(f"recorded {outcome.recorded.name}: {len(steps)} steps")
    print("  " + "\n  ".join(steps))
    for verdict in outcome.report.verdicts:
        said = verdict.violation.reason if verdict.violation is not None else ""
        print(f"{verdict.status.value:5} {verdict.contract}" + (f": {said}" if said else ""))
    same = outcome.replay.fingerprint() == outcome.recorded.fingerprint()
    print(f"replayed without the server: same answers {outcome.replayed == outcome.live}, same fingerprint {same}")


if __name__ == "__main__":
    main()
