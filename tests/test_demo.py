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
    assert main(["demo", "--runs", "3", "--dir", str(tmp_path / "traces")]) == 0
    out = capsys.readouterr().out
    (out_dir,) = (tmp_path / "traces").glob("demo-*")
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
    assert "fault: a poisoned document in the refund ticket: escaped" in out and "1 blocked" in out
    assert "search: inject '" in out and "breaks e-mail only customers" in out
    report = tmp_path / "report.html"
    assert f"report: {report}" in out.replace("\n", "")
    html = report.read_text(encoding="utf-8")
    assert "mattrace demo: the support desk" in html and "6 traces, 3 breaking a contract" in html


def test_each_demo_gets_a_folder_whose_glob_matches_only_its_own_traces(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two demos in one directory: each writes into a folder of its own, counts what is in it, and the
    check command it prints globs exactly its own five traces; it says whether the faulted run was contained."""
    import glob
    import re

    monkeypatch.delenv("MATTRACE_MODEL", raising=False)
    monkeypatch.chdir(tmp_path)
    seen: list[set[str]] = []
    for _ in range(2):
        assert main(["demo", "--runs", "3"]) == 0
        out = capsys.readouterr().out.replace("\n", " ")
        (pattern,) = re.findall(r"mattrace check (\S+\*\.jsonl)", out)
        matched = set(glob.glob(pattern))
        count = int(re.search(r"(\d+) trace\(s\) in", out).group(1))  # type: ignore[union-attr]
        assert len(matched) == count == 5
        fault = re.search(r"fault: a poisoned document in the refund ticket: (contained|escaped|degraded)", out)
        assert fault is not None, out
        assert fault.group(1) == "escaped" and "escaped: safety contract 'no untrusted action' failed" in out
        seen.append(matched)
    assert not seen[0] & seen[1]
    assert len(list((tmp_path / ".mattrace" / "traces").rglob("*.jsonl"))) >= 10
