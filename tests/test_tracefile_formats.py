"""One reader for every chained file: traces, cassettes and governance audit logs are known to every
reader from a static table, in any process, whatever was imported first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mattrace.errors import TraceFormatError
from mattrace.tracefile import AUDIT_LOG, CASSETTE, FORMATS, TRACE, RecordWriter, read_records, verify


def _record_file(path: Path, fmt: object, entries: int = 2) -> Path:
    writer = RecordWriter(path, fmt, {"trace_id": "t" * 32, "name": "run"})  # type: ignore[arg-type]
    for i in range(entries):
        writer.write_entry({"n": i})
    writer.seal()
    return path


def test_the_table_holds_every_format_mattrace_writes() -> None:
    """Trace, cassette and audit log are in FORMATS under their header names, with distinct suffixes."""
    assert set(FORMATS) == {"mattrace-trace", "mattrace-cassette", "mattrace-governance"}
    assert FORMATS[TRACE.name] is TRACE and FORMATS[CASSETTE.name] is CASSETTE
    assert len({f.suffix for f in FORMATS.values()}) == 3


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".governance", ".cassette"])
def test_verify_of_a_record_file_in_a_fresh_process(tmp_path: Path, suffix: str) -> None:
    """`mattrace verify x.governance` in a new process (nothing imported the governance package) says OK."""
    fmt = AUDIT_LOG if suffix == ".governance" else CASSETTE
    path = _record_file(tmp_path / f"run{suffix}", fmt)
    proc = subprocess.run([sys.executable, "-m", "mattrace", "verify", str(path), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [report] = json.loads(proc.stdout)
    assert report["ok"] is True and report["steps"] == 2


def test_a_record_file_read_as_another_format_is_refused(tmp_path: Path) -> None:
    """An audit log is not a cassette: reading it as one names the file, line 1 and what it is not."""
    path = _record_file(tmp_path / "run.governance", AUDIT_LOG)
    with pytest.raises(TraceFormatError, match=r"run.governance:1: not a mattrace cassette file"):
        read_records(path, CASSETTE)
    assert verify(path).ok


def test_a_torn_record_file_keeps_its_complete_entries(tmp_path: Path) -> None:
    """A record file cut mid-line reads back every complete entry and warns where it was torn."""
    path = _record_file(tmp_path / "run.cassette", CASSETTE, entries=3)
    data = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(data[:3]) + b"\n" + data[3][:10])   # header, two entries, a torn third
    found = read_records(path, CASSETTE)
    assert [e["n"] for e in found.entries] == [0, 1] and not found.sealed
    assert found.warnings[0].line == 4
    report = verify(path)
    assert not report.ok and "not sealed" in (report.reason or "")
