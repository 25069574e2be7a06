"""The MCP example runs as its README says: recorded through the proxy, checked, replayed without the server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mattrace
from mattrace.contracts import load_contracts
from mattrace.trace import StepKind

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_the_example_records_checks_and_replays_a_git_session(tmp_path: Path) -> None:
    """`python -m examples.mcp_git.session --keep DIR`: mcp-server-git on a temporary repository behind the
    proxy; the contracts catch git_reset; the replay answers the same without the server, same fingerprint."""
    done = subprocess.run([sys.executable, "-m", "examples.mcp_git.session", "--keep", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "recorded git-session: 6 steps" in out and "3: tool git_reset" in out
    assert "fail  no destructive calls: tool git_reset by main at step 3 is a destructive MCP call: its " \
           "annotations say destructiveHint: true (listed at step 0)" in out
    assert "pass  tool definitions stable" in out and "pass  at most 5 git_status calls" in out
    assert "same answers True, same fingerprint True" in out

    (recorded_file,) = (tmp_path / "traces").glob("*.jsonl")
    (replayed_file,) = (tmp_path / "replayed").glob("*.jsonl")
    recorded, replayed = mattrace.load(recorded_file), mattrace.load(replayed_file)
    assert recorded.fingerprint() == replayed.fingerprint()
    reset = recorded.step(3)
    assert reset.kind is StepKind.TOOL and reset.result["content"][0]["text"] == "All staged changes reset"
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=tmp_path / "repo", capture_output=True,
                            text=True, check=True)
    assert staged.stdout == ""   # the live session really reset the index
    assert "git_reset" in (tmp_path / "tools.lock").read_text()
    report = mattrace.check(recorded, load_contracts(ROOT / "examples" / "mcp_git" / "contracts.toml"))
    assert [v.status.value for v in report.verdicts] == ["pass", "fail", "pass"]
