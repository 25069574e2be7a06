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
    assert len(files) == 5          # three tickets, then a faulted and a governed run
    assert all(mattrace.verify(f).ok for f in files)
    assert "untrusted text reached an action in support_desk/slow-refund" in out
    plain = [f for f in files if "fault" not in mattrace.load(f).config and "governed" not in mattrace.load(f).config]
    tainted = next(f for f in plain if "slow-refund" in f.name)
    assert f"mattrace show {tainted}" in out
    assert f"mattrace replay {tainted} --allow-module mattrace.apps.demo" in out
    outcomes = {mattrace.load(f).name: mattrace.load(f).outcome.status for f in plain}  # type: ignore[union-attr]
    assert outcomes == {"support_desk/refund": "success", "support_desk/shipping": "success",
                        "support_desk/slow-refund": "failure"}


def test_demo_ends_with_a_fault_a_governed_run_a_search_and_the_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MATTRACE_MODEL", raising=False)
    assert main(["demo", "--dir", str(tmp_path / "traces")]) == 0
    out = capsys.readouterr().out
    assert "fault: a poisoned document in the refund ticket" in out and "1 blocked" in out
    assert "search: inject '" in out and "breaks e-mail only customers" in out
    report = tmp_path / "report.html"
    assert f"report: {report}" in out.replace("\n", "")
    html = report.read_text(encoding="utf-8")
    assert "mattrace demo: the support desk" in html and "6 traces, 3 breaking a contract" in html
