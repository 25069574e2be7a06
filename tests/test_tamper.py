"""Tamper and corruption detection of trace files, crash recovery, and HMAC signing."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mattrace
from mattrace import Outcome, Step, TornTailWarning, Trace, TraceFormatError
from mattrace.errors import RecordingError
from mattrace.tracefile import HMAC_ENV, TraceWriter, read_trace_file

KEY = b"test-key"


def _write_sealed(path: Path, count: int, *, key: bytes | None = None) -> Path:
    """A sealed trace with ``count`` steps of awkward content (unicode, quotes, newlines)."""
    writer = TraceWriter(path, Trace(trace_id="abc", name="tamper ✓", config={"seed": 3}), key=key)
    for i in range(count):
        writer.write_step(Step(index=i, kind="tool" if i % 2 else "message", agent=f"a{i}",
                               content=f'step {i}: "quoted"\nline two 😀 ' + "x" * (i * 7),
                               args={"i": i, "f": i / 3}, result=[i, None, True]))
    writer.seal(Outcome(status="success", output="done"))
    return path


@pytest.fixture(scope="module")
def sealed_files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, bytes | None]]:
    """Bytes of sealed files to mutate: 0, 1 and 4 steps, sha256 and HMAC."""
    base = tmp_path_factory.mktemp("sealed")
    files = []
    for count, key in [(0, None), (1, None), (4, None), (3, KEY)]:
        path = _write_sealed(base / f"{count}-{bool(key)}.jsonl", count, key=key)
        files.append((path.read_bytes(), key))
    return files


def _lines(data: bytes) -> list[bytes]:
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def _join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _line_of(data: bytes, offset: int) -> int:
    """1-based number of the line holding byte ``offset`` (a newline belongs to its line)."""
    return data[:offset].count(b"\n") + 1


@st.composite
def _mutations(draw: st.DrawFn, data: bytes) -> tuple[str, bytes, int | None]:
    """(description, mutated bytes, expected first bad line) for one mutation of ``data``."""
    lines = _lines(data)
    n = len(lines)
    what = draw(st.sampled_from(["flip", "delete", "swap", "duplicate", "truncate"]))
    if what == "flip":
        # The byte's line no longer hashes (or no longer has a hash). A newline flipped away
        # glues its line to the next one, which fails at the first of the two; flipping the
        # seal's final newline leaves a torn, unsealed last line: the seal line again.
        pos = draw(st.integers(0, len(data) - 1))
        mask = draw(st.integers(1, 255))
        mutated = bytearray(data)
        mutated[pos] ^= mask
        return f"flip byte {pos} ^ {mask}", bytes(mutated), _line_of(data, pos)
    if what == "delete":
        # Line k is then the old line k+1, chained to a hash it no longer follows; deleting
        # the seal leaves an unsealed file whose missing seal is line n.
        k = draw(st.integers(1, n))
        return f"delete line {k}", _join(lines[:k - 1] + lines[k:]), k
    if what == "swap":
        i = draw(st.integers(1, n - 1))
        j = draw(st.integers(i + 1, n))
        swapped = list(lines)
        swapped[i - 1], swapped[j - 1] = swapped[j - 1], swapped[i - 1]
        return f"swap lines {i} and {j}", _join(swapped), i
    if what == "duplicate":
        # Insert a copy of line k so that it becomes line p. The copy verifies only where
        # the original was (p == k); then the original, now line k+1, is the first bad one.
        k = draw(st.integers(1, n))
        p = draw(st.integers(1, n + 1))
        copied = [*lines[:p - 1], lines[k - 1], *lines[p - 1:]]
        return f"copy line {k} to line {p}", _join(copied), (k + 1 if p == k else p)
    # Truncation: the first line that is missing or partial. An empty file has no line to
    # name, and TraceFormatError documents line=None for "the whole file is bad".
    offset = draw(st.integers(0, len(data) - 1))
    return f"truncate at {offset}", data[:offset], (_line_of(data, offset) if offset else None)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_mutation_of_a_sealed_file_fails_verify_at_the_first_bad_line(
        data: st.DataObject, sealed_files: list[tuple[bytes, bytes | None]],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Flipping, deleting, swapping, duplicating or truncating makes verify fail at the first bad line."""
    original, key = data.draw(st.sampled_from(sealed_files))
    what, mutated, expected = data.draw(_mutations(original))
    path = tmp_path_factory.getbasetemp() / "mutated.jsonl"
    path.write_bytes(mutated)
    report = mattrace.verify(path, key=key)
    assert not report.ok, what
    assert report.line == expected, (what, report)
    # the lenient reader agrees: it raises at that line, or recovers an unsealed file and
    # names the same line as torn/missing
    try:
        result = read_trace_file(path, key=key)
    except TraceFormatError as exc:
        assert exc.line == expected, (what, exc)
        assert exc.path == str(path)
    else:
        assert not result.sealed, what
        assert [w.line for w in result.warnings] == [expected], what


def test_unmutated_sealed_files_verify(sealed_files: list[tuple[bytes, bytes | None]],
                                      tmp_path: Path) -> None:
    """The files the mutation test starts from verify, so every failure above is the mutation's."""
    for n, (data, key) in enumerate(sealed_files):
        path = tmp_path / f"{n}.jsonl"
        path.write_bytes(data)
        report = mattrace.verify(path, key=key)
        assert report.ok, report
        assert report.algorithm == ("hmac-sha256" if key else "sha256")


# -- HMAC -------------------------------------------------------------------------------------


def test_hmac_file_verifies_only_with_its_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file signed with one MATTRACE_HMAC_KEY verifies with it and fails with another at line 1."""
    monkeypatch.setenv(HMAC_ENV, "right")
    path = _write_sealed(tmp_path / "signed.jsonl", 2)
    assert mattrace.verify(path).ok
    assert len(mattrace.load(path).steps) == 2
    monkeypatch.setenv(HMAC_ENV, "wrong")
    report = mattrace.verify(path)
    assert (report.ok, report.line) == (False, 1)
    with pytest.raises(TraceFormatError) as exc:
        mattrace.load(path)
    assert exc.value.line == 1


def test_hmac_file_fails_to_load_without_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading an HMAC-signed file with no key raises TraceFormatError naming line 1 and the env var."""
    monkeypatch.setenv(HMAC_ENV, "secret")
    path = _write_sealed(tmp_path / "signed.jsonl", 1)
    monkeypatch.delenv(HMAC_ENV)
    with pytest.raises(TraceFormatError) as exc:
        mattrace.load(path)
    assert (exc.value.path, exc.value.line) == (str(path), 1)
    assert HMAC_ENV in str(exc.value)
    assert not mattrace.verify(path).ok


def test_sha256_file_fails_verify_and_load_when_a_key_is_set(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With a key set, a plain sha256 file (anyone can recompute it) neither verifies nor loads."""
    path = _write_sealed(tmp_path / "plain.jsonl", 2)
    assert mattrace.verify(path).ok
    monkeypatch.setenv(HMAC_ENV, "secret")
    report = mattrace.verify(path)
    assert (report.ok, report.line, report.reason) == (False, 1, f"{HMAC_ENV} is set but the file is not HMAC-signed")
    with pytest.raises(TraceFormatError) as exc:
        mattrace.load(path)
    assert (exc.value.line, exc.value.reason) == (1, report.reason)


def test_resume_continues_an_hmac_file_with_its_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resuming an unsealed signed file appends lines signed with the same key; a sha256 one is refused."""
    monkeypatch.setenv(HMAC_ENV, "secret")
    path = tmp_path / "signed.jsonl"
    writer = TraceWriter(path, Trace(trace_id="t", name="n"))
    writer.write_step(Step(index=0, kind="message", content="before the crash"))
    writer.close()
    resumed = TraceWriter.resume(path)
    resumed.write_step(Step(index=1, kind="message", content="after resume"))
    resumed.seal(Outcome(status="success"))
    assert [s.content for s in mattrace.load(path).steps] == ["before the crash", "after resume"]
    assert mattrace.verify(path).ok and mattrace.verify(path).algorithm == "hmac-sha256"
    monkeypatch.delenv(HMAC_ENV)
    plain = tmp_path / "plain.jsonl"
    TraceWriter(plain, Trace(trace_id="p", name="n")).close()
    monkeypatch.setenv(HMAC_ENV, "secret")
    with pytest.raises(TraceFormatError, match="not HMAC-signed"):
        TraceWriter.resume(plain)


# -- corrupt files ------------------------------------------------------------------------------


def _hashed(prev: str, body: bytes, key: bytes | None = None) -> tuple[bytes, str]:
    """A line with a correct chain hash over ``body`` (a JSON object's bytes), per the format."""
    import hmac as _hmac
    data = prev.encode("ascii") + body
    h = (_hmac.new(key, data, hashlib.sha256).hexdigest() if key
         else hashlib.sha256(data).hexdigest())
    return body[:-1] + b',"h":"' + h.encode() + b'"}', h


def _forge(path: Path, bodies: list[bytes | dict[str, Any]]) -> Path:
    """Write a file whose lines carry valid hashes over arbitrary (possibly invalid) bodies."""
    prev, out = "", []
    for body in bodies:
        raw = body if isinstance(body, bytes) else json.dumps(body, sort_keys=True).encode()
        line, prev = _hashed(prev, raw)
        out.append(line)
    path.write_bytes(_join(out))
    return path


HEADER = {"type": "header", "format": "mattrace-trace", "version": 1, "alg": "sha256",
          "trace": {"trace_id": "t", "name": "forged"}}


def test_forged_well_chained_file_loads(tmp_path: Path) -> None:
    """The forging helper writes the documented format: a well-formed forged file loads and verifies."""
    path = _forge(tmp_path / "ok.jsonl", [
        HEADER, {"type": "step", "step": {"index": 0, "kind": "message", "content": "hi"}},
        {"type": "seal", "steps": 1, "final": "", "outcome": {"status": "success"}}])
    assert [s.content for s in mattrace.load(path).steps] == ["hi"]
    assert mattrace.verify(path).ok


@pytest.mark.parametrize(("content", "line"), [
    (b"", None),
    (b"\x00\xff\xfe garbage \x80\n", 1),
    (b"hello world\nsecond line\n", 1),
    (b'{"type": "header"}\n', 1),
    (b"\n", 1),
    ("ünïcode but no trace\n".encode(), 1),
])
def test_garbage_files_raise_trace_format_error(tmp_path: Path, content: bytes, line: int | None) -> None:
    """Empty, binary or non-trace files raise TraceFormatError with the file and line."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(TraceFormatError) as exc:
        mattrace.load(path)
    assert (exc.value.path, exc.value.line) == (str(path), line)
    assert str(path) in str(exc.value)
    report = mattrace.verify(path)
    assert (report.ok, report.line) == (False, line)


def test_missing_file_raises_trace_format_error(tmp_path: Path) -> None:
    """A file that does not exist raises TraceFormatError naming it (not a bare OSError)."""
    path = tmp_path / "nope.jsonl"
    with pytest.raises(TraceFormatError) as exc:
        mattrace.load(path)
    assert (exc.value.path, exc.value.line) == (str(path), None)
    assert not mattrace.verify(path).ok


STEP0 = {"type": "step", "step": {"index": 0, "kind": "message", "content": "fine"}}


@pytest.mark.parametrize(("bodies", "line", "words"), [
    ([HEADER, b"{not json at all}"], 2, "not valid JSON"),
    ([HEADER, b'{"type":"step","bytes":"\xff\xfe"}'], 2, "not UTF-8 text"),
    ([HEADER, STEP0, {"type": "step", "step": {"index": 1, "kind": "bogus"}}], 3, "invalid step"),
    ([HEADER, {"type": "step", "step": {"index": 0, "kind": "tool", "nope": 1}}], 2, "invalid step"),
    ([HEADER, {"type": "step", "step": {"index": 1, "kind": "tool"}}], 2, "index 1"),
    ([HEADER, STEP0, {"type": "mystery"}], 3, "unknown record type"),
    ([HEADER, STEP0, {"type": "seal", "steps": 2, "final": "", "outcome": None}], 3, "seal counts"),
    ([HEADER, {"type": "seal", "steps": 0, "outcome": {"status": "meh"}}], 2, "outcome"),
    ([HEADER | {"version": 99}], 1, "version"),
    ([HEADER | {"alg": "md5"}], 1, "algorithm"),
    ([HEADER | {"format": "other"}], 1, "not a mattrace trace"),
    ([HEADER | {"trace": {"name": "no id"}}], 1, "invalid header"),
    ([HEADER, {"type": "seal", "steps": 0, "outcome": None}, STEP0], 3, "after the seal"),
])
def test_well_chained_but_invalid_lines_name_their_line(tmp_path: Path, bodies: list[Any], line: int,
                                                       words: str) -> None:
    """A line whose hash is right but whose content is invalid raises TraceFormatError at that line."""
    path = _forge(tmp_path / "forged.jsonl", bodies)
    with pytest.raises(TraceFormatError) as exc:
        mattrace.load(path)
    assert (exc.value.path, exc.value.line) == (str(path), line)
    assert words in exc.value.reason
    assert mattrace.verify(path).line == line


# -- unsealed files -----------------------------------------------------------------------------


def _unsealed(path: Path, count: int) -> Path:
    writer = TraceWriter(path, Trace(trace_id="t", name="crashed"))
    for i in range(count):
        writer.write_step(Step(index=i, kind="message", content=f"complete step {i}"))
    writer.close()
    return path


@pytest.mark.parametrize("count", [0, 1, 3])
def test_file_closed_without_seal_loads_with_torn_tail_warning(tmp_path: Path, count: int) -> None:
    """A writer closed without a seal leaves a file that loads every step with a TornTailWarning."""
    path = _unsealed(tmp_path / "open.jsonl", count)
    with pytest.warns(TornTailWarning) as record:
        trace = mattrace.load(path)
    assert [s.content for s in trace.steps] == [f"complete step {i}" for i in range(count)]
    assert trace.outcome is None
    (warning,) = [w.message for w in record]
    assert isinstance(warning, TornTailWarning)
    assert (warning.path, warning.line, warning.steps) == (str(path), count + 2, count)
    report = mattrace.verify(path)
    assert (report.ok, report.line, report.steps) == (False, count + 2, count)


@pytest.mark.parametrize("cut", [1, 10, 0.5, -1])
def test_partial_last_line_loads_complete_steps_with_warning(tmp_path: Path, cut: float) -> None:
    """A file ending in a partial line loads the complete steps and warns naming the torn line."""
    path = _unsealed(tmp_path / "torn.jsonl", 3)
    full = TraceWriter.resume(path)
    full.write_step(Step(index=3, kind="tool", content="this one is torn"))
    full.close()
    data = path.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    last_len = len(data) - last_start
    keep = int(last_len * cut) if isinstance(cut, float) else (cut if cut > 0 else last_len + cut)
    path.write_bytes(data[:last_start + keep])
    with pytest.warns(TornTailWarning) as record:
        trace = mattrace.load(path)
    assert [s.content for s in trace.steps] == [f"complete step {i}" for i in range(3)]
    assert [w.message.line for w in record] == [5]  # type: ignore[union-attr]
    assert mattrace.verify(path).line == 5


def test_resume_cuts_the_torn_tail_and_the_result_seals_and_verifies(tmp_path: Path) -> None:
    """TraceWriter.resume cuts a torn tail, appends more steps, seals, and the file verifies."""
    path = _unsealed(tmp_path / "torn.jsonl", 2)
    with path.open("ab") as f:
        f.write(b'{"step":{"index":2,"kind":"message","content":"half a li')
    writer = TraceWriter.resume(path)
    assert writer.steps_written == 2
    for i in (2, 3):
        writer.write_step(Step(index=i, kind="tool", content=f"resumed {i}"))
    writer.seal(Outcome(status="failure", output={"why": "crash"}))
    assert b"half a li" not in path.read_bytes()
    report = mattrace.verify(path)
    assert (report.ok, report.steps) == (True, 4)
    trace = mattrace.load(path)
    assert [s.content for s in trace.steps] == [
        "complete step 0", "complete step 1", "resumed 2", "resumed 3"]
    assert trace.outcome == Outcome(status="failure", output={"why": "crash"})


def test_resume_refuses_sealed_files_and_out_of_order_steps(tmp_path: Path) -> None:
    """Resuming a sealed file, or writing a step with the wrong index, raises RecordingError."""
    sealed = _write_sealed(tmp_path / "sealed.jsonl", 1)
    with pytest.raises(RecordingError, match="sealed"):
        TraceWriter.resume(sealed)
    writer = TraceWriter.resume(_unsealed(tmp_path / "open.jsonl", 1))
    with pytest.raises(RecordingError, match="expected 1"):
        writer.write_step(Step(index=2, kind="message"))
    writer.seal(None)
    with pytest.raises(RecordingError, match="sealed"):
        writer.write_step(Step(index=1, kind="message"))
    assert mattrace.verify(tmp_path / "open.jsonl").ok


def test_a_failed_write_does_not_corrupt_the_rest_of_the_file(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails half-way (disk full) leaves a file that still loads every step written without error."""
    path = tmp_path / "enospc.jsonl"
    writer = TraceWriter(path, Trace(trace_id="t", name="disk full"))
    real_write = os.write
    armed = {"on": False}
    inode = path.stat().st_ino

    def half_then_enospc(fd: int, data: Any) -> int:
        if armed["on"] and os.fstat(fd).st_ino == inode:
            armed["on"] = False
            real_write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_enospc)
    written: list[str] = []
    for n, text in enumerate(["zero", "one", "two (disk full)", "three", "four"]):
        armed["on"] = n == 2  # this step's write fails half-way, as on a full disk
        try:
            writer.write_step(Step(index=len(written), kind="message", content=text))
        except (OSError, RecordingError):
            continue
        written.append(text)
    try:
        writer.seal(Outcome(status="success"))
    except (OSError, RecordingError):
        writer.close()
    monkeypatch.setattr(os, "write", real_write)
    assert "two (disk full)" not in written
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornTailWarning)  # acceptable if the writer gave up
        trace = mattrace.load(path)  # must not raise TraceFormatError
    assert [s.content for s in trace.steps] == written
