"""Kill a recording process at random points: every step it reported must survive."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mattrace
from mattrace import Outcome, TornTailWarning, Trace
from mattrace.tracefile import TraceWriter
from tests.crash_child import content

CHILD = Path(__file__).with_name("crash_child.py")
REPO = CHILD.parent.parent
KILLS = 24
BATCH = 4  # children start (import, create their file) in parallel, then run one at a time


def _spawn(directory: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("MATTRACE_HMAC_KEY", None)
    return subprocess.Popen([sys.executable, str(CHILD), str(directory)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _file_of(proc: subprocess.Popen[str]) -> Path:
    """Wait until the child has created its trace file (header written) and return it."""
    assert proc.stdout is not None
    header = proc.stdout.readline()
    assert header.startswith("PATH "), (header, proc.stderr.read() if proc.stderr else "")
    return Path(header[5:].strip())


def _send(proc: subprocess.Popen[str], command: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()


def _reap(batch: list[subprocess.Popen[str]]) -> None:
    for proc in batch:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _check_recovered(path: Path, reported: list[int]) -> Trace:
    """Load a crashed file: a TornTailWarning, never TraceFormatError, and every reported step intact."""
    assert reported == list(range(len(reported)))
    with pytest.warns(TornTailWarning):
        trace = mattrace.load(path)
    steps = trace.steps
    assert len(steps) >= len(reported)
    assert [s.index for s in steps] == list(range(len(steps)))
    for step in steps:
        i = step.index
        if i % 2:
            assert (step.kind, step.target, step.args) == ("tool", "echo", {"i": i, "payload": content(i)})
            assert step.result == len(content(i))
        else:
            assert (step.kind, step.agent, step.content) == ("message", "worker", content(i))
    assert trace.outcome is None

    report = mattrace.verify(path)  # stricter than load: unsealed is not ok, but it does not crash
    assert (report.ok, report.steps, report.line) == (False, len(steps), len(steps) + 2)

    # the crashed file can be finished: the torn tail is cut and the result seals and verifies
    writer = TraceWriter.resume(path)
    writer.seal(Outcome(status="error", reason="killed"))
    assert mattrace.verify(path).ok
    assert mattrace.load(path).steps == steps
    return trace


@pytest.mark.slow
def test_sigkilled_recordings_keep_every_reported_step(tmp_path: Path) -> None:
    """After SIGKILL at seeded random points, load recovers every reported step with a TornTailWarning."""
    rng = random.Random(20240617)
    plans = [(1, 0.0), (1, 0.001)] + [
        (rng.choice([1, 2, 3, rng.randint(1, 12), rng.randint(1, 40)]),
         rng.choice([0.0, 0.0, 0.0005, 0.001, 0.003, 0.008]))
        for _ in range(KILLS - 2)
    ]
    deadline = time.monotonic() + 60
    for start in range(0, len(plans), BATCH):
        chunk = plans[start:start + BATCH]
        batch = [_spawn(tmp_path / f"run{start + n}") for n in range(len(chunk))]
        try:
            for proc, (target, delay) in zip(batch, chunk, strict=True):
                path = _file_of(proc)
                _send(proc, "go")
                assert proc.stdout is not None
                reported: list[int] = []
                while len(reported) < target:
                    line = proc.stdout.readline()
                    assert line, f"child exited early with {proc.wait()}"
                    reported.append(int(line))
                if delay:
                    time.sleep(delay)
                proc.kill()
                # read the rest through the same buffered stream readline used: communicate() reads the
                # raw pipe and would miss lines readline had already buffered but not yet returned
                assert proc.stdout is not None
                out = proc.stdout.read()
                proc.communicate()   # nothing left to read: it waits and closes the other pipes
                reported += [int(x) for x in out.split()]  # printed before it died: reported too
                assert proc.returncode == -9
                _check_recovered(path, reported)
                assert time.monotonic() < deadline, "crash test is far too slow"
        finally:
            _reap(batch)


@pytest.mark.slow
def test_writes_cut_off_mid_line_by_a_full_disk_recover(tmp_path: Path) -> None:
    """A write cut short mid-line (file size limit) is rolled back: the run goes on, the file loads and resumes."""
    rng = random.Random(7)
    limits = [rng.randint(1, 2_000) for _ in range(3)] + [rng.randint(2_000, 300_000) for _ in range(5)]
    batch = [_spawn(tmp_path / f"full{n}") for n in range(len(limits))]
    try:
        for proc, extra in zip(batch, limits, strict=True):
            path = _file_of(proc)
            limit = path.stat().st_size + extra
            _send(proc, f"limit {limit}")
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err  # the failed write did not stop the run
            assert "TraceWriteWarning" in err and "File too large" in err, err
            lines = out.split("\n")
            lost = [line for line in lines if line.startswith("LOST")]
            assert len(lost) == 1, out
            assert path.stat().st_size <= limit
            assert path.read_bytes().endswith(b"\n")  # the partial line was cut back off
            _check_recovered(path, [int(x) for x in lines if x.strip().isdigit()])
    finally:
        _reap(batch)
