"""How cheap is reading a long trace file: verify, check and show, in time and peak memory?

Run by hand from the repository root::

    python bench/reading.py              # a 200,000-step trace file
    python bench/reading.py --steps 50000 --reps 1   # a rough look

It writes one sealed trace file of ``--steps`` steps (the planner/researcher/writer turns of
``bench/contracts.py``: messages, LLM calls with tokens, tool calls, retrievals, claims,
timestamps; each turn's texts name the turn, as a real run's do, so the context flow finds
the few earlier outputs a step copies rather than every earlier turn's identical sentence)
into a temporary folder, then runs each command in a fresh ``python -m mattrace``
process and takes its wall time and peak resident memory (``/usr/bin/time``'s maximum
resident set size of that process):

* ``verify FILE``, ``check FILE -c stock:CONTRACTS`` (the ten contracts of
  ``bench/contracts.py``; none fails on this trace, so every step is checked),
* ``show FILE``: seconds to its first line of output and to its last, and to ``/dev/null``,
* ``show FILE --step N --around 5`` with N the middle step,

and as the baseline, in the same run, a plain pass of ``json.loads`` over the file's lines
(streaming, and holding every record in a list). Figures are the best of ``--reps``; the
ratios to the streaming baseline are what to compare across machines. The targets:
``verify`` and ``check`` peak at most 100 MB, ``show`` prints its first line in under 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contracts import synthetic_steps

from mattrace.trace import Outcome, Step, Trace
from mattrace.tracefile import TraceWriter

_MEMORY_TARGET_MB = 100.0
_FIRST_LINE_TARGET_S = 1.0
_TURN = 12
_T0 = 1_760_000_000_000_000_000
# sentences of bench/contracts.py's turns that are the same in every turn; here each names its turn
_PER_TURN = {
    "delegate to researcher": "delegate topic {turn} to researcher",
    "Shall I send the summary?": "Shall I send the summary of topic {turn}?",
    "Yes, send it.": "Yes, send summary {turn}.",
    "Draft: topic grew 12% in 2024.": "Draft {turn}: topic grew 12% in 2024.",
    "Topic grew 12% in 2024.": "Topic grew 12% in 2024 (summary {turn}).",
}


def bench_steps(n: int) -> Iterator[Step]:
    """``n`` steps of planner/researcher/writer turns, each turn's texts its own, with timestamps."""
    for s in synthetic_steps(n):
        turn = s.index // _TURN
        update: dict[str, object] = {"t_start": _T0 + s.index * 1_000_000, "t_end": _T0 + s.index * 1_000_000 + 800_000}
        if s.content in _PER_TURN:
            update["content"] = _PER_TURN[s.content].format(turn=turn)
        if s.args is not None and s.args.get("body") in _PER_TURN:
            update["args"] = s.args | {"body": _PER_TURN[s.args["body"]].format(turn=turn)}
        yield s.model_copy(update=update)


def write_trace(path: Path, n: int) -> None:
    """A sealed trace file of ``n`` steps at ``path``."""
    trace = Trace(trace_id="bench-reading", name="bench_reading", config={"model": "gpt", "steps": n})
    writer = TraceWriter(path, trace)
    for s in bench_steps(n):
        writer.write_step(s)
    writer.seal(Outcome(status="success"))


_TIME = shutil.which("time", path="/usr/bin:/bin")


def _run(argv: list[str], cwd: Path, env: dict[str, str], *, first_line: bool = False) -> tuple[float, float | None,
                                                                                                     float, int]:
    """Run ``argv``: (seconds, seconds to its first line of output or None, peak RSS in MB, exit code).

    The peak is what ``/usr/bin/time`` reports of the command: a process forked from this one
    starts with this one's high-water mark (Linux carries it across ``exec``), so its own
    ``ru_maxrss`` would never read below this process's size. Without ``time`` it is that.
    """
    measured = Path(cwd) / "maxrss.txt"
    command = [_TIME, "-f", "%M", "-o", str(measured), *argv] if _TIME else argv
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE if first_line else subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first: float | None = None
    if proc.stdout is not None:
        proc.stdout.readline()
        first = time.perf_counter() - t0
        while proc.stdout.read(1 << 16):
            pass
        proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_kb = int(measured.read_text().split()[-1]) if _TIME else usage.ru_maxrss
    return seconds, first, peak_kb / 1024, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200_000, help="steps in the trace file (default 200000)")
    parser.add_argument("--reps", type=int, default=3, help="runs of each command; the best counts (default 3)")
    parser.add_argument("--keep", metavar="DIR", help="write the file into DIR and keep it (reused when there)")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mattrace-bench-reading-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _bench(folder, args.steps, args.reps)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def _bench(folder: Path, n: int, reps: int) -> None:
    path = folder / f"reading-{n}.jsonl"
    if not path.exists():
        t0 = time.perf_counter()
        write_trace(path, n)
        print(f"wrote {path} ({n:,} steps, {path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.1f} s")
    (folder / "stock.py").write_text("from contracts import stock_contracts\n\nCONTRACTS = stock_contracts()\n")
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), str(Path(__file__).resolve().parent),
                                                                     os.environ.get("PYTHONPATH")]))}
    py, f, middle = sys.executable, str(path), n // 2
    plain = "import json, sys\nfor line in open(sys.argv[1], 'rb'):\n    json.loads(line)\n"
    held = "import json, sys\nrecords = [json.loads(line) for line in open(sys.argv[1], 'rb')]\n"
    cases: list[tuple[str, list[str], bool, str]] = [
        ("baseline: json.loads per line", [py, "-c", plain, f], False, ""),
        ("baseline: json.loads, list kept", [py, "-c", held, f], False, ""),
        ("verify", [py, "-m", "mattrace", "verify", f], False, "mem"),
        ("check (10 stock contracts)", [py, "-m", "mattrace", "check", f, "-c", "stock:CONTRACTS"], False, "mem"),
        ("show (to a pipe)", [py, "-m", "mattrace", "show", f], True, "first"),
        ("show > /dev/null", [py, "-m", "mattrace", "show", f], False, ""),
        (f"show --step {middle} --around 5", [py, "-m", "mattrace", "show", f, "--step", str(middle), "--around", "5"],
         False, ""),
    ]
    print(f"{'command':<34} {'seconds':>8} {'x base':>7} {'first line':>11} {'peak MB':>8}  target")
    base: float | None = None
    for label, argv, first_line, target in cases:
        runs = [_run(argv, folder, env, first_line=first_line) for _ in range(reps)]
        seconds = min(r[0] for r in runs)
        firsts = [r[1] for r in runs if r[1] is not None]
        first = min(firsts) if firsts else None
        peak = min(r[2] for r in runs)
        codes = {r[3] for r in runs}
        base = base or seconds
        verdict = ""
        if target == "mem":
            verdict = f"peak <= {_MEMORY_TARGET_MB:.0f} MB: {'met' if peak <= _MEMORY_TARGET_MB else 'MISSED'}"
        elif target == "first" and first is not None:
            met = first < _FIRST_LINE_TARGET_S
            verdict = f"first line < {_FIRST_LINE_TARGET_S:.0f} s: {'met' if met else 'MISSED'}"
        if codes != {0}:
            verdict += f" (exit {sorted(codes)})"
        shown_first = f"{first:>10.2f}s" if first is not None else f"{'':>11}"
        print(f"{label:<34} {seconds:>8.2f} {seconds / base:>7.2f} {shown_first} {peak:>8.0f}  {verdict}", flush=True)


if __name__ == "__main__":
    main()
