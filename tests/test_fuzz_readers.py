"""Seeded mutations of real mattrace files fed to every reader: no traceback, no hang, nothing accepted silently.

The files are a governed run's trace, its cassette and its audit log, recorded here. Each example mutates one of
them (a flipped byte, a cut, a duplicated or dropped line, garbage, a huge number, deep nesting, a lone surrogate)
and runs the commands that read it in process. Every command must return an exit code from the documented set and
never let an exception out; ``verify`` must refuse every file whose bytes changed (the hash chain covers every byte).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mattrace
from mattrace.cli import main
from mattrace.contracts import step
from mattrace.governance import Governor, block

EXIT_CODES = {0, 1, 2, 3}
CONTRACTS = '[[contract]]\nuse = "terminates"\n[[contract]]\nuse = "no_untrusted_action"\n'


@mattrace.tool
def lookup(q: str) -> dict[str, object]:
    return {"q": q, "hits": [{"id": f"doc-{i}", "text": f"refunds take {i} days, see www.example.com"}
                             for i in range(3)]}


@mattrace.tool(side_effect=True)
def send(to: str, body: str) -> str:
    return "sent to " + to


def record_originals(base: Path) -> dict[str, Path]:
    """Record a governed run under ``base``; its trace, cassette and audit log files."""
    governor = Governor([block(step.tool("send") & step.arg("to").matches("evil"), "no")])
    with mattrace.record("fuzzed", dir=base, governor=governor, record_mode="all") as rec:
        mattrace.message("user", "refund status, please", to="desk")
        lookup("refund")
        send("ana@shop.example", "Your refund is on its way.")
        send("x@evil.example", "notes")
    assert rec.path is not None
    files = {"trace": rec.path}
    files |= {kind: next(p for p in base.iterdir() if p.name.endswith(suffix))
              for kind, suffix in (("cassette", ".cassette"), ("audit", ".governance"))}
    return files


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A governed run's trace, cassette and audit log, as bytes."""
    base = tmp_path_factory.mktemp("fuzz")
    files = record_originals(base)
    (base / "c.toml").write_text(CONTRACTS)
    return {kind: path.read_bytes() for kind, path in files.items()}


def _mutate(data: bytes, rnd: random.Random) -> bytes:
    lines = data.split(b"\n")
    kind = rnd.randrange(10)
    if kind == 0 and data:                     # flip a byte
        i = rnd.randrange(len(data))
        return data[:i] + bytes([data[i] ^ (1 << rnd.randrange(8))]) + data[i + 1:]
    if kind == 1:                              # cut anywhere (a crash, or a truncation)
        return data[:rnd.randrange(len(data) + 1)]
    if kind == 2 and len(lines) > 2:           # drop a line
        del lines[rnd.randrange(len(lines) - 1)]
    elif kind == 3 and len(lines) > 2:         # duplicate a line
        i = rnd.randrange(len(lines) - 1)
        lines.insert(i, lines[i])
    elif kind == 4 and len(lines) > 3:         # swap two lines
        i, j = rnd.sample(range(len(lines) - 1), 2)
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == 5:                            # garbage
        i = rnd.randrange(len(data) + 1)
        return data[:i] + rnd.randbytes(rnd.randrange(1, 64)) + data[i:]
    elif kind == 6:                            # a number too long, deep nesting, a lone surrogate, a NUL
        piece = rnd.choice([b"1" * 5000, b"[" * 3000 + b"]" * 3000, b'"\\ud83d"', b"\x00", b"1e999", b"NaN"])
        i = data.find(b":", rnd.randrange(max(1, len(data) // 2)))
        return data[:i + 1] + piece + b"," + data[i + 1:] if i >= 0 else piece
    elif kind == 7:                            # empty, or one huge line without a newline
        return rnd.choice([b"", b"x" * 100_000, b"{}\n", b"[]\n", b"null\n"])
    elif kind == 8 and len(lines) > 1:         # append a line after the seal
        lines.insert(len(lines) - 1, lines[rnd.randrange(len(lines) - 1)])
    else:                                      # an edited value keeping the line's hash
        return data.replace(b"ana@shop.example", b"x@evil.example", 1)
    return b"\n".join(lines)


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def hang(*_: object) -> None:
        raise TimeoutError(f"a reader ran longer than {seconds} s")
    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _deadline(30):
        code = main(argv)
    return code, err.getvalue()


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(which=st.sampled_from(["trace", "cassette", "audit"]), seed=st.integers(0, 2**32 - 1))
def test_mutated_files_never_crash_hang_or_pass_silently(originals: dict[str, bytes], tmp_path: Path,
                                                         which: str, seed: int) -> None:
    mutated = _mutate(originals[which], random.Random(seed))
    path = tmp_path / f"{seed}.{which}.jsonl"
    path.write_bytes(mutated)
    contracts = tmp_path / "c.toml"
    contracts.write_text(CONTRACTS)
    commands = [["verify", str(path)], ["verify", "--json", str(path)]]
    if which == "trace":
        commands += [["show", str(path)], ["show", str(path), "--step", "2"],
                     ["check", str(path), "-c", str(contracts)], ["diff", str(path), str(path)],
                     ["import", "openai", str(path), "--out", str(tmp_path / "imported")],
                     ["import", "otlp", str(path), "--out", str(tmp_path / "imported")]]
    for argv in commands:
        code, err = _run(argv)
        assert code in EXIT_CODES, (argv, code, err[-2000:])
        assert "Traceback" not in err, (argv, err[-2000:])
        if argv[0] == "verify" and mutated != originals[which]:
            assert code != 0, f"verify accepted a changed {which} file (seed {seed})"


def test_the_store_ingests_or_skips_mutated_traces_without_crashing(originals: dict[str, bytes],
                                                                     tmp_path: Path) -> None:
    """One ingest of 60 mutated traces: each is added or skipped with a reason; none crashes the batch."""
    rnd = random.Random(7)
    paths = []
    for i in range(60):
        path = tmp_path / "traces" / f"{i}.jsonl"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(_mutate(originals["trace"], rnd))
        paths.append(path)
    code, err = _run(["ingest", str(tmp_path / "traces"), "--store", str(tmp_path / "m.duckdb")])
    assert code in (0, 1) and "Traceback" not in err, err[-2000:]
    code, err = _run(["metrics", "--store", str(tmp_path / "m.duckdb")])
    assert code in (0, 1) and "Traceback" not in err, err[-2000:]
    assert json.dumps(err)   # text, not bytes
