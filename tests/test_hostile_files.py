"""Files anyone may have written: a reader refuses what it cannot use with a TraceFormatError naming the file
and line, and never crashes, recurses to death or waits forever on it.

A forger can recompute a plain sha256 chain, so these lines carry valid hashes: the reader must survive what
is *inside* a line that verifies.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

import mattrace
from mattrace.cli import main
from mattrace.errors import ImportGapWarning, TraceFormatError
from mattrace.testing import tool_call, trace, user
from mattrace.tracefile import load, read_trace_file, verify
from mattrace.tracefile._json import MAX_DEPTH, JSONInputError, parse_json
from tests.files import write_trace_file


def _bodies(path: Path) -> list[bytes]:
    return [raw[:raw.rfind(b',"h":')] + b"}" for raw in path.read_bytes().splitlines()]


def _chain(bodies: list[bytes], path: Path) -> Path:
    """Write raw line bodies as a plain sha256 chain (the seal's ``final`` recomputed)."""
    prev, out = "", bytearray()
    for body in bodies:
        if body.startswith(b'{"type":"seal"') or b'"type":"seal"' in body:
            record = json.loads(body)
            record["final"] = prev
            body = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
        prev = hashlib.sha256(prev.encode("ascii") + body).hexdigest()
        out += body[:-1] + b',"h":"' + prev.encode("ascii") + b'"}\n'
    path.write_bytes(bytes(out))
    return path


@pytest.fixture
def genuine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MATTRACE_HMAC_KEY", raising=False)
    t = trace(user("look it up"), tool_call("lookup", {"q": "x"}, "PLACEHOLDER"))
    return write_trace_file(t, tmp_path / "genuine.jsonl")


def _with_result(genuine: Path, tmp_path: Path, raw_value: bytes) -> Path:
    """The genuine trace with the tool's result replaced by ``raw_value`` (raw JSON text), re-chained."""
    bodies = [b.replace(b'"PLACEHOLDER"', raw_value) for b in _bodies(genuine)]
    return _chain(bodies, tmp_path / "hostile.jsonl")


@pytest.mark.parametrize(("raw", "reason"), [
    (b"[" * 50_000 + b"]" * 50_000, f"values nested more than {MAX_DEPTH} deep"),
    (b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5), f"values nested more than {MAX_DEPTH} deep"),
    (b"1" * 5_000, "a number too long to read"),
])
def test_a_line_that_verifies_but_cannot_be_used_is_a_located_error(genuine: Path, tmp_path: Path, raw: bytes,
                                                                     reason: str) -> None:
    hostile = _with_result(genuine, tmp_path, raw)
    for read in (load, read_trace_file, mattrace.load):
        with pytest.raises(TraceFormatError) as info:
            read(hostile)
        assert info.value.line == 3 and reason in str(info.value), str(info.value)
    report = verify(hostile)
    assert not report.ok and report.line == 3 and reason in (report.reason or "")


def test_a_lone_surrogate_is_kept_and_shown_escaped(genuine: Path, tmp_path: Path) -> None:
    """"Ren\\ud83d" is valid JSON but no text: it loads exactly as written, and show prints it escaped."""
    hostile = _with_result(genuine, tmp_path, b'"Ren\\ud83d"')
    assert load(hostile).steps[1].result == "Ren\ud83d"
    shown = subprocess.run([sys.executable, "-m", "mattrace", "show", str(hostile)], capture_output=True,
                           env=os.environ | {"PYTHONIOENCODING": "utf-8"}, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert b"Ren\\ud83d" in shown.stdout and b"Traceback" not in shown.stderr


def test_a_recorded_lone_surrogate_survives_every_reader(tmp_path: Path) -> None:
    """A tool that returns a broken string is recorded; show, check and verify then read the trace."""
    @mattrace.tool
    def broken() -> str:
        return json.loads('"Ren\\ud83d"')   # type: ignore[no-any-return]

    with mattrace.record("surrogate", dir=tmp_path) as rec:
        broken()
    assert rec.path is not None
    contracts = tmp_path / "c.toml"
    contracts.write_text('[[contract]]\nuse = "terminates"\n')
    for argv in (["verify"], ["show"], ["check", "-c", str(contracts)]):
        done = subprocess.run([sys.executable, "-m", "mattrace", argv[0], str(rec.path), *argv[1:]],
                              capture_output=True, env=os.environ | {"PYTHONIOENCODING": "utf-8"}, timeout=60)
        assert done.returncode == 0 and b"Traceback" not in done.stderr, (argv, done.stderr[-2000:])


def test_parse_json_refuses_depth_and_long_numbers_and_keeps_ordinary_text() -> None:
    assert parse_json(b'{"a": [1, {"b": "caf\\u00e9 \\ud83d\\ude00"}]}') == {"a": [1, {"b": "café 😀"}]}
    assert parse_json('{"\\udc00k": "\\ud800"}') == {"\udc00k": "\ud800"}   # kept as recorded
    for bad in (b"[" * 3000 + b"]" * 3000, b"1" * 5000, b"{", b"\xff"):
        with pytest.raises(JSONInputError):
            parse_json(bad)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX thing")
def test_a_pipe_a_device_and_a_directory_are_refused_without_waiting(tmp_path: Path) -> None:
    """Opening a FIFO blocks until someone writes, /dev/zero is a line that never ends: both are refused at once."""
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    done: list[str] = []

    def read_all() -> None:
        for path in (fifo, Path("/dev/zero"), tmp_path):
            with pytest.raises(TraceFormatError, match="not a regular file"):
                load(path)
            assert not verify(path).ok
        done.append("ok")

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert done == ["ok"], "a reader waited on a pipe or a device"


def test_a_symlink_loop_is_a_located_error(tmp_path: Path) -> None:
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(loop)
    with pytest.raises(TraceFormatError, match="cannot read"):
        load(loop)


def test_the_store_ingests_a_trace_holding_a_lone_surrogate(tmp_path: Path) -> None:
    """DuckDB's JSON reader refuses lone surrogates; the store keeps the trace, the text as U+FFFD."""
    from mattrace.store import Store

    name = b"report-\xff.txt".decode("utf-8", "surrogateescape")
    with mattrace.record("surrogates", dir=tmp_path / "traces") as rec:
        mattrace.message("lister", f"found {name}")
    with Store.open(tmp_path / "m.duckdb") as store:
        report = store.ingest([rec.path])
        assert report.ok and report.traces_added == 1, str(report)
        _, rows = store.query("SELECT content FROM steps WHERE idx = 0")
    assert rows == [("found report-\ufffd.txt",)]


# -- importers ---------------------------------------------------------------------------------------------------

_SPAN = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "x", "startTimeUnixNano": "1", "endTimeUnixNano": "2"}


def _otlp(tmp_path: Path, spans: list[dict[str, object]] | object, name: str = "spans.json") -> Path:
    path = tmp_path / name
    body = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]} if isinstance(spans, list) else spans
    path.write_text(json.dumps(body))
    return path


@pytest.mark.parametrize("body", [[], "text", 3, None])
def test_an_otlp_file_that_is_no_export_object_is_bad_input_not_an_empty_success(
        tmp_path: Path, body: object, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps(body))
    assert main(["import", "otlp", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "not an OTLP trace export" in capsys.readouterr().err


def test_spans_that_are_their_own_ancestors_import_without_hanging(tmp_path: Path) -> None:
    """A span that is its own parent, and two spans each the other's parent: the walk up the tree ends."""
    from mattrace.io import import_otlp

    selfish = dict(_SPAN, parentSpanId="cd" * 8)
    a, b = dict(_SPAN, spanId="11" * 8, parentSpanId="22" * 8), dict(_SPAN, spanId="22" * 8, parentSpanId="11" * 8)
    done: list[int] = []

    def read_both() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImportGapWarning)   # spans of no known kind: said, not the point here
            done.extend(len(t.steps) for spans in ([selfish], [a, b]) for t in import_otlp(_otlp(tmp_path, spans)))

    worker = threading.Thread(target=read_both, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert done and all(n >= 1 for n in done), "the import of a span cycle did not finish"


@pytest.mark.parametrize("data", [b"\xff\xfe\x00garbage", b'{"resourceSpans": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                                  b'{"resourceSpans": [' + b"1" * 5000 + b"]}", b'{"resourceSpans": [[1], "x"]}'])
def test_hostile_otlp_bytes_are_bad_input(tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(data)
    code = main(["import", "otlp", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err, err


@pytest.mark.parametrize(("data", "reason"), [
    (b"[" * 50_000 + b"]" * 50_000, f"values nested more than {MAX_DEPTH} deep"),
    (b'{"messages": [' + b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5) + b"]}", "nested more than"),
    (b'{"messages": [' + b"1" * 5_000 + b"]}", "a number too long to read"),
])
def test_hostile_chat_logs_are_bad_input_at_their_line(tmp_path: Path, data: bytes, reason: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.json"
    path.write_bytes(data)
    assert main(["import", "openai", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err, err


def test_too_deep_takes_any_json_value() -> None:
    from mattrace.tracefile import too_deep

    assert [too_deep(v) for v in (1, "x", None, 2.5, [], {"a": [1]})] == [False] * 6
    deep: object = []
    for _ in range(MAX_DEPTH):
        deep = [deep]
    assert too_deep(deep) and not too_deep([[[]]])


def test_ingest_skips_a_file_name_that_is_not_utf8_and_survives_a_symlink_loop(tmp_path: Path) -> None:
    """One undecodable file name failed the whole batch, and a link to an ancestor walked forever: now the name is
    skipped with a reason, every directory is entered once, and the good trace is ingested."""
    from mattrace.store import Store

    traces = tmp_path / "traces"
    with mattrace.record("ok", dir=traces) as rec:
        mattrace.message("a", "hi")
    assert rec.path is not None
    os.link(rec.path, os.fsencode(traces) + b"/bad-\xff.jsonl")
    (traces / "sub").mkdir()
    (traces / "sub" / "up").symlink_to(tmp_path)
    done: list[object] = []

    def ingest() -> None:
        with Store.open(tmp_path / "m.duckdb") as store:
            done.append(store.ingest([traces]))

    worker = threading.Thread(target=ingest, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert done, "ingest did not finish"
    report = done[0]
    assert report.traces_added == 1, str(report)   # type: ignore[attr-defined]
    assert any("bad-\\udcff.jsonl: the file name is not UTF-8 text" in e for e in report.errors)   # type: ignore[attr-defined]


@mattrace.tool
def _add(a: int, b: int) -> int:
    return a + b


@mattrace.replayable
def calculation() -> None:
    _add(1, 2)
    _add(3, 4)


def test_a_replay_against_an_unsealed_cassette_is_incomplete_not_identical(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A cassette whose recording never finished may lack the run's last calls: "identical" would vouch for a
    part of the run as if it were all of it. The replay says so and exits 3."""
    from mattrace.replay import replay_trace

    with mattrace.record("calc", dir=tmp_path, entrypoint={"target": f"{__name__}:calculation", "args": [],
                                                            "kwargs": {}}) as rec:
        calculation()
    assert rec.path is not None
    cassette = next(tmp_path.glob("*.cassette"))
    lines = cassette.read_bytes().split(b"\n")
    cassette.write_bytes(b"\n".join(lines[:-2]) + b"\n")   # the seal gone: the recording never finished
    result = replay_trace(rec.path, out_dir=tmp_path / "replays")
    assert result.identical and result.incomplete
    assert result.unfinished == [f"the cassette {cassette} is not sealed"]
    assert main(["replay", str(rec.path), "--out", str(tmp_path / "again")]) == 3
    assert "incomplete: the cassette" in capsys.readouterr().out
