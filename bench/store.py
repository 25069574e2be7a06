"""How fast does the store ingest trace files, and how fast are its metrics at 1M and 10M steps?

Run by hand from the repository root::

    python bench/store.py              # 1M steps in two layouts, metrics at 1M and 10M steps
    python bench/store.py --quick      # 100k steps, a rough look in seconds

Part 1 writes synthetic multi-agent traces (the planner/researcher/writer turns of
``bench/contracts.py``: LLM calls with tokens, tool calls, untrusted retrievals, claims)
as real trace files with :class:`mattrace.tracefile.TraceWriter`, in two layouts of the
same step count: 1,000 traces of 1,000 steps and 10,000 traces of 100 steps (more files
cost more: each is opened, and DuckDB's reader pays per file). A results file gives every
trace five verdicts and factuality counts, as the pytest plugin's would. The files are
written once into ``--data`` and reused. Each figure is the best of ``--reps`` ingests
into a fresh store file (steps/s counts steps; the seconds include creating the store, the
results file and closing the store), then a re-ingest of the unchanged files. ``target``
is steps/s against the goal of 1M steps/s. The machine is shared and noisy, so each layout
also gets a baseline measured in the same run: ``floor s`` is DuckDB alone loading the
same step lines into a fresh file (``read_ndjson`` with the step's fields as columns, one
``CREATE TABLE … AS``: no trace ids, no checks, no derived columns, no per-trace rows),
and ``x floor`` is the ingest's time against it, the part of the cost that is mattrace's.
``JSON floor steps/s`` is the same load with each step kept as one ``JSON`` value instead of
typed columns: the speed a store that types step fields only when queried could reach.

Part 2 times the full metrics query (``Store.metrics(by=("config",))``: success,
termination, compliance, factuality, pass^k, flip rate, with Wilson intervals), the
per-contract compliance and a scan of the steps table, on the 1M-step store of 10,000
traces and on a 10M-step store of 100,000 traces made from it by copying its rows nine
times in DuckDB under new trace ids (writing 10M steps of files would take minutes and
measure the writer, not the store).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contracts import synthetic_steps

from mattrace.contracts import Report, Status, Verdict, Violation
from mattrace.store import Store
from mattrace.store.results import ResultsWriter, new_run
from mattrace.trace import Outcome, Trace
from mattrace.tracefile import TraceWriter

SEEDS = 5
TARGET = 1_000_000   # steps/s: the goal a fresh ingest is measured against
CONTRACTS = ["terminates", "no untrusted action", "stays in role", "confirmed before send_email", "claims supported"]


def write_layout(directory: Path, traces: int, steps: int) -> None:
    """``traces`` trace files of ``steps`` steps each, and a results file; skipped when already there."""
    done = directory / "COMPLETE"
    if done.exists():
        return
    shutil.rmtree(directory, ignore_errors=True)
    body = list(synthetic_steps(steps))
    run = new_run("bench-run", argv=["pytest"])
    with ResultsWriter(directory / "results" / "bench-run" / "main.jsonl", run) as results:
        for i in range(traces):
            task, seed = divmod(i, SEEDS)
            success = (task + seed) % 4 != 0
            t = Trace(trace_id=f"bench-{traces}-{i:07d}", name=f"test_{task % 200}",
                      config={"model": ["gpt-4o", "claude"][task % 2], "orchestration": ["flat", "tree"][task % 3 % 2],
                              "seed": seed},
                      labels={"mattrace.run": "bench-run", "mattrace.test": f"test_{task}",
                              "mattrace.trial": str(seed)})
            path = directory / "traces" / f"{t.trace_id}.jsonl"
            writer = TraceWriter(path, t)
            for s in body:
                writer.write_step(s)
            writer.seal(Outcome(status="success" if success else "failure"))
            verdicts = tuple(
                Verdict(c, Status.FAIL, violation=Violation(c, 7, "broken", (3, 7)))
                if (i + j) % 11 == 0 else Verdict(c, Status.PASS) for j, c in enumerate(CONTRACTS))
            results.write_check(trace_id=t.trace_id, trace_file=path, report=Report(verdicts), test=t.name,
                                trial=seed, seed=seed, factuality={"claims": 8, "supported": 7, "propagated": i % 2})
    done.write_text("ok\n")


def best(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """The fastest of ``reps`` calls (seconds) and the last result."""
    times, result = [], None
    for _ in range(reps):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def bench_ingest(data: Path, store: Path, reps: int) -> tuple[float, float, int]:
    """Best seconds for a fresh ingest of ``data``, seconds for a re-ingest, steps ingested."""
    def once() -> int:
        for stale in store.parent.glob(store.name + "*"):
            stale.unlink()
        with Store.open(store) as s:
            report = s.ingest([data / "traces", data / "results"])
        assert report.ok and report.verdicts_added > 0, report
        return report.steps_added

    seconds, steps = best(once, reps)
    with Store.open(store) as s:
        again, report = best(lambda: s.ingest([data / "traces", data / "results"]), 1)
    assert report.traces_added == 0
    return seconds, again, steps


def bench_floor(data: Path, store: Path, reps: int, *, as_json: bool = False) -> float:
    """Best seconds for DuckDB alone to load the step lines of ``data`` into a fresh file (the
    baseline), with the step's fields as typed columns or (``as_json``) each step as one JSON
    value: what a store that types fields at query time would pay."""
    import duckdb

    from mattrace.store._records import STEP_RECORD
    from mattrace.store._sql import literal, sql_type

    files = sorted(str(p) for p in (data / "traces").glob("*.jsonl"))
    columns = f"{{step: {literal(sql_type(STEP_RECORD['step']))}, type: 'VARCHAR'}}"
    select = "unnest(step)"
    if as_json:
        columns, select = "{step: 'JSON', type: 'VARCHAR'}", "step"

    def once() -> int:
        for stale in store.parent.glob(store.name + "*"):
            stale.unlink()
        con = duckdb.connect(str(store))
        try:
            con.execute(f"CREATE TABLE steps AS SELECT {select} FROM read_ndjson(?, columns={columns}) "
                        "WHERE type = 'step'", [files])
            row = con.execute("SELECT count(*) FROM steps").fetchone()
        finally:
            con.close()
        return int(row[0]) if row else 0

    return best(once, reps)[0]


def bench_queries(store: Path, reps: int) -> dict[str, float]:
    """Best seconds of the metrics query, per-contract compliance and a steps scan."""
    with Store.open(store, read_only=True) as s:
        return {
            "metrics by config": best(lambda: s.metrics(by=("config",)), reps)[0],
            "metrics by model, k=2": best(lambda: s.metrics(by=("model",), k=2), reps)[0],
            "compliance per contract": best(lambda: s.compliance(per="contract"), reps)[0],
            "steps scan (tokens by kind)": best(lambda: s.query(
                "SELECT kind, count(*), sum(tokens) FROM steps GROUP BY kind"), reps)[0],
        }


def grow(store: Path, bigger: Path, times: int) -> int:
    """Copy ``store`` to ``bigger`` with every trace's rows repeated ``times`` times; return its steps."""
    shutil.copy(store, bigger)
    with Store.open(bigger) as s:
        con = s.connection
        con.execute("BEGIN TRANSACTION")
        for table in ("steps", "traces", "checks", "verdicts", "violations"):
            con.execute(f"INSERT INTO {table} SELECT t.* REPLACE (t.trace_id || '~' || r.i AS trace_id) "
                        f"FROM {table} t, range(1, {times}) r(i)")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        return int(s.query("SELECT count(*) FROM steps")[1][0][0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k steps, fewer repetitions")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "mattrace-bench-store",
                        help="where the generated trace files are kept between runs")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per figure (default 3, quick 1)")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    total = 100_000 if args.quick else 1_000_000
    layouts = [(total // 1000, 1000), (total // 100, 100)]
    import duckdb

    print(f"mattrace store benchmark: Python {platform.python_version()}, DuckDB {duckdb.__version__}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    work = Path(tempfile.mkdtemp(prefix="mattrace-bench-"))
    try:
        print(f"\n{'layout':<24}{'ingest s':>10}{'steps/s':>12}{'target':>8}{'floor s':>9}{'x floor':>9}"
              f"{'re-ingest s':>13}{'JSON floor steps/s':>20}")
        last_store = None
        for traces, steps in layouts:
            data = args.data / f"{traces}x{steps}"
            write_started = time.perf_counter()
            write_layout(data, traces, steps)
            wrote = time.perf_counter() - write_started
            store = work / f"{traces}x{steps}.duckdb"
            seconds, again, ingested = bench_ingest(data, store, reps)
            floor = bench_floor(data, work / "floor.duckdb", reps)
            json_floor = bench_floor(data, work / "floor.duckdb", reps, as_json=True)
            label = f"{traces:,} x {steps:,} steps"
            print(f"{label:<24}{seconds:>10.2f}{ingested / seconds:>12,.0f}{ingested / seconds / TARGET:>8.2f}"
                  f"{floor:>9.2f}{seconds / floor:>9.2f}{again:>13.2f}{ingested / json_floor:>20,.0f}"
                  + (f"   (files written in {wrote:.0f} s)" if wrote > 1 else ""))
            last_store = store
        assert last_store is not None   # the many-traces layout: the harder case for per-trace metrics
        bigger = work / "10x.duckdb"
        big_steps = grow(last_store, bigger, 10)
        print(f"\n{'query':<30}{f'{total:,} steps':>16}{f'{big_steps:,} steps':>18}")
        small, large = bench_queries(last_store, max(reps, 3)), bench_queries(bigger, max(reps, 3))
        for name in small:
            print(f"{name:<30}{small[name] * 1000:>13.0f} ms{large[name] * 1000:>15.0f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
