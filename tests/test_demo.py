"""`mattrace demo` runs the support desk offline, writes verifiable traces and points at the injection."""

from __future__ import annotations

from pathlib import Path

import pytest

import mattrace
from mattrace.cli import main


def test_demo_records_three_verifiable_runs_and_reports_the_tainted_action(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo exits 0, writes three sealed traces, and names the e-mail fed by the forum post."""
    monkeypatch.delenv("MATTRACE_MODEL", raising=False)
    out_dir = tmp_path / "traces"
    assert main(["demo", "--runs", "3", "--dir", str(out_dir)]) == 0
    out = capsys.readouterr().out
    files = sorted(out_dir.glob("*.jsonl"))
    assert len(files) == 3
    assert all(mattrace.verify(f).ok for f in files)
    assert "untrusted text reached an action in support_desk/slow-refund" in out
    tainted = next(f for f in files if "slow-refund" in f.name)
    assert f"mattrace show {tainted}" in out
    assert f"mattrace replay {tainted}" in out
    outcomes = {mattrace.load(f).name: mattrace.load(f).outcome.status for f in files}  # type: ignore[union-attr]
    assert outcomes == {"support_desk/refund": "success", "support_desk/shipping": "success",
                        "support_desk/slow-refund": "failure"}
