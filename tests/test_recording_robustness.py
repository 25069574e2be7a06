"""A recorded run survives a failing disk, keeps secrets out of every field, and stores any text exactly."""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

import mattrace
from mattrace import TornTailWarning, TraceWriteWarning
from mattrace.recording.redact import REDACTED


def test_a_failing_disk_does_not_stop_the_run_and_loses_no_step(trace_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """When the trace file stops being writable the tool still returns, rec.trace keeps every step, and
    the file holds every step written before the failure."""
    @mattrace.tool
    def add(a: int, b: int) -> int:
        return a + b

    real_write = os.write
    with mattrace.record("disk full", dir=trace_dir) as rec:
        assert add(1, 2) == 3
        target = os.fstat(rec._writer._fd).st_ino  # type: ignore[union-attr]

        def enospc(fd: int, data: Any) -> int:
            if os.fstat(fd).st_ino == target:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", enospc)
        with pytest.warns(TraceWriteWarning, match="cannot write step 1"):
            assert add(3, 4) == 7
        assert add(5, 6) == 11
    monkeypatch.setattr(os, "write", real_write)
    assert isinstance(rec.write_error, OSError)
    assert [s.result for s in rec.trace.steps if s.kind == "tool"] == [3, 7, 11]
    assert rec.trace.steps[-1].kind == "end"
    with pytest.warns(TornTailWarning, match="before its end was written"):
        on_disk = mattrace.load(rec.path)
    assert [s.result for s in on_disk.steps] == [3]


def test_secrets_are_redacted_from_config_entrypoint_errors_and_outcome(trace_dir: Path) -> None:
    """API keys in the run config, a failing call's error message and the outcome reason never reach the file."""
    key = "sk-" + "a1b2c3d4" * 4

    @mattrace.tool
    def login(user: str) -> str:
        raise PermissionError(f"rejected key {key} for {user}")

    with mattrace.record("secrets", dir=trace_dir, config={"model": "m", "apiKey": key},
                         entrypoint={"target": "m:f", "kwargs": {"token": key}}) as rec:
        with pytest.raises(PermissionError):
            login("ana")
        rec.set_outcome(success=False, reason=f"auth failed with {key}")
    text = rec.path.read_text(encoding="utf-8")
    assert key not in text
    trace = mattrace.load(rec.path)
    assert trace.config == {"model": "m", "apiKey": REDACTED}
    assert trace.entrypoint == {"target": "m:f", "kwargs": {"token": REDACTED}}
    assert trace.steps[0].error is not None and REDACTED in trace.steps[0].error.message
    assert trace.outcome is not None and trace.outcome.reason == f"auth failed with {REDACTED}"


def test_camel_case_secret_keys_are_redacted_and_look_alikes_kept() -> None:
    """accessToken and clientSecret are secrets; maxTokens and tokenizer are not."""
    redact = mattrace.Redactor()
    out = redact({"accessToken": "t", "clientSecret": "s", "maxTokens": 5, "tokenizer": "bpe"})
    assert out == {"accessToken": REDACTED, "clientSecret": REDACTED, "maxTokens": 5, "tokenizer": "bpe"}


def test_unsealed_file_with_complete_lines_is_not_called_torn(trace_dir: Path) -> None:
    """A file whose writer stopped between lines warns that it is unsealed, not that a line is torn."""
    with mattrace.record("abandoned", dir=trace_dir) as rec:
        mattrace.message("a", "hello there")
        rec.abandon()
        path = rec.path
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trace = mattrace.load(path)
    torn = [w.message for w in caught if isinstance(w.message, TornTailWarning)]
    assert len(torn) == 1 and torn[0].torn is False and torn[0].line == 3
    assert "partial" not in str(torn[0])
    assert [s.content for s in trace.steps] == ["hello there"]


def test_text_with_lone_surrogates_round_trips_exactly(trace_dir: Path) -> None:
    """An undecodable file name is stored escaped and loads back as the very same string."""
    name = b"report-\xff.txt".decode("utf-8", "surrogateescape")
    with mattrace.record("surrogates", dir=trace_dir) as rec:
        mattrace.message("lister", f"found {name}")
    loaded = mattrace.load(rec.path)
    assert loaded.steps[0].content == f"found {name}"
    assert loaded.fingerprint() == rec.trace.fingerprint()
    assert mattrace.verify(rec.path).ok


def test_invalid_run_metadata_is_a_recording_error(trace_dir: Path) -> None:
    """Labels that are not text, or a config that is not a mapping, fail with a RecordingError naming the run."""
    with pytest.raises(mattrace.RecordingError, match=r"record\('labels'\): invalid run metadata: labels"):
        with mattrace.record("labels", dir=trace_dir, labels={"seed": 3}):  # type: ignore[dict-item]
            pass
    with pytest.raises(mattrace.RecordingError, match="invalid run metadata"):
        with mattrace.record("config", dir=trace_dir, config=["not", "a", "mapping"]):  # type: ignore[arg-type]
            pass
    assert mattrace.active_recorder() is None
