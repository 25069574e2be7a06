"""record()'s options are declared once (RecordOptions), checked at run time, and the extensions that join a
run are named in a table, not registered by whatever happened to be imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mattrace
from mattrace.errors import RecordingError
from mattrace.recording import Recorder, RecordMode, RecordOptions
from mattrace.recording.extensions import EXTENSIONS, resolve
from mattrace.trace import StepKind


def test_a_misspelled_option_is_an_error_with_a_did_you_mean() -> None:
    """record(fautls=...) would silently run without faults; it is refused and the right name suggested."""
    with pytest.raises(RecordingError, match=r"unknown option 'fautls' \(did you mean 'faults'\?\)"):
        mattrace.record("run", fautls=[])  # type: ignore[call-overload]
    with pytest.raises(RecordingError, match="unknown option 'cassete'"):
        Recorder("run", persist=False, cassete=False)  # type: ignore[call-arg]


def test_record_mode_is_a_str_enum_and_plain_strings_still_work(tmp_path: Path) -> None:
    """RecordMode members equal their strings; an unknown mode names the valid ones before any file is written."""
    assert RecordMode.NONE == "none" and [m.value for m in RecordMode] == ["none", "once", "new", "all"]

    @mattrace.tool
    def lookup(key: str) -> str:
        return key.upper()

    with mattrace.record("first", dir=tmp_path, cassette=tmp_path / "c.cassette", record_mode=RecordMode.ALL):
        lookup("a")
    with mattrace.record("again", dir=tmp_path, cassette=tmp_path / "c.cassette", record_mode="none") as rec:
        assert lookup("a") == "A"
    assert [s.kind for s in rec.trace.steps] == [StepKind.TOOL, StepKind.END]
    before = sorted(tmp_path.iterdir())
    with pytest.raises(RecordingError, match="unknown record mode 'sometimes'; expected one of none, once, new, all"):
        mattrace.record("bad", dir=tmp_path, record_mode="sometimes")  # type: ignore[arg-type]
    assert sorted(tmp_path.iterdir()) == before


def test_the_options_typeddict_lists_every_keyword_of_record() -> None:
    """The one definition holds exactly the keywords record() documents."""
    assert set(RecordOptions.__annotations__) == {"config", "dir", "fsync", "entrypoint", "governor", "labels",
                                                  "redact", "cassette", "record_mode", "faults", "match"}


def test_every_extension_in_the_table_resolves_to_a_function() -> None:
    """The built-in extensions (faults, replay) are module:function names that import."""
    assert set(EXTENSIONS) >= {"faults", "replay"}
    for name, entry in EXTENSIONS.items():
        assert callable(resolve(entry, name) if isinstance(entry, str) else entry)
    with pytest.raises(RecordingError, match=r"mattrace\.nowhere:join is not importable"):
        resolve("mattrace.nowhere:join", "test")


@pytest.mark.slow
def test_faults_join_a_run_without_the_faults_package_being_imported_first(tmp_path: Path) -> None:
    """`import mattrace` no longer imports the faults package for its side effect, and a run given faults
    (built from a plan file, so no fault class was imported by the caller either) still injects them."""
    plan = tmp_path / "plan.toml"
    plan.write_text('[[fault]]\ntype = "Timeout"\ntarget = "tool:lookup"\n')
    code = f"""
import sys, mattrace
print("mattrace.faults" in sys.modules)
from mattrace.faults import load_faults

@mattrace.tool
def lookup(key):
    return key

with mattrace.record("r", dir={str(tmp_path)!r}, faults=load_faults({str(plan)!r})) as rec:
    try:
        lookup("a")
    except Exception as exc:
        print(type(exc).__name__)
print([s.kind.value for s in rec.trace.steps])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "False"
    assert "fault" in lines[-1]
