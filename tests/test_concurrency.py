"""Runs in threads and asyncio tasks record into their own traces, and shared runs stay ordered."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
from pathlib import Path
from typing import Any

import mattrace
from mattrace import Recorder, Step

ROUNDS = 4


@mattrace.tool
def echo(run: str, r: int) -> str:
    return f"echo {run} {r}"


@mattrace.tool
async def aecho(run: str, r: int) -> str:
    await asyncio.sleep(0)  # let other tasks run in the middle of the call
    return f"echo {run} {r}"


def _expected(run: str) -> list[dict[str, Any]]:
    """The steps a run named ``run`` records, in order, per round (see _one_round)."""
    steps = []
    for r in range(ROUNDS):
        base = len(steps)
        steps += [
            {"kind": "message", "agent": "user", "content": f"{run} round {r} hello"},
            {"kind": "tool", "agent": f"worker-{run}", "target": "echo" if run[0] == "t" else "aecho",
             "args": {"run": run, "r": r}, "result": f"echo {run} {r}"},
            {"kind": "memory_write", "agent": f"nested-{run}", "target": f"key-{run}",
             "args": {"key": f"key-{run}", "value": f"{run}:{r}"}},
            {"kind": "memory_read", "agent": "main", "target": f"key-{run}",
             "result": f"{run}:{r}", "reads": (base + 2,)},
        ]
    return [*steps, {"kind": "end", "agent": "main"}]


def _check(rec: Recorder, run: str) -> None:
    expected = _expected(run)
    trace = rec.trace
    assert [s.index for s in trace.steps] == list(range(len(expected)))
    for step, want in zip(trace.steps, expected, strict=True):
        got = {k: getattr(step, k) for k in want}
        assert got == want, (run, step.index)
    assert mattrace.verify(rec.path).ok
    assert mattrace.load(rec.path).steps == trace.steps


def test_threads_each_in_their_own_record_block_stay_separate(trace_dir: Path) -> None:
    """16 threads interleaving step by step each get exactly their own steps, agents and reads."""
    memory = mattrace.Memory("shared")  # one Memory across runs: its read edges must not cross
    barrier = threading.Barrier(16, timeout=30)
    recorders: dict[str, Recorder] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        run = f"t{n}"
        try:
            with mattrace.record(f"thread {run}", dir=trace_dir) as rec:
                recorders[run] = rec
                for r in range(ROUNDS):
                    barrier.wait()
                    mattrace.message("user", f"{run} round {r} hello")
                    with mattrace.agent(f"worker-{run}"):
                        echo(run, r)
                    barrier.wait()
                    with mattrace.agent("outer"), mattrace.agent(f"nested-{run}"):
                        memory[f"key-{run}"] = f"{run}:{r}"
                    barrier.wait()
                    assert memory[f"key-{run}"] == f"{run}:{r}"
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({rec.path for rec in recorders.values()}) == 16
    for run, rec in recorders.items():
        _check(rec, run)


def test_asyncio_tasks_each_in_their_own_record_block_stay_separate(trace_dir: Path) -> None:
    """200 interleaved asyncio tasks each get exactly their own steps, agents and reads."""
    memory = mattrace.Memory("shared")
    order: list[str] = []

    async def run_task(n: int) -> tuple[str, Recorder]:
        run = f"a{n}"
        async with mattrace.record(f"task {run}", dir=trace_dir) as rec:
            for r in range(ROUNDS):
                mattrace.message("user", f"{run} round {r} hello")
                await asyncio.sleep(0)
                with mattrace.agent(f"worker-{run}"):
                    await aecho(run, r)
                    order.append(run)
                await asyncio.sleep(0)
                with mattrace.agent(f"nested-{run}"):
                    memory[f"key-{run}"] = f"{run}:{r}"
                await asyncio.sleep(0)
                assert memory[f"key-{run}"] == f"{run}:{r}"
                await asyncio.sleep(0)
        return run, rec

    async def main() -> list[tuple[str, Recorder]]:
        return await asyncio.gather(*(run_task(n) for n in range(200)))

    results = asyncio.run(main())
    # the tasks really interleaved: task a1 ran a round before task a0 finished
    assert order.index("a1") < len(order) - 1 - order[::-1].index("a0")
    assert len({rec.path for _, rec in results}) == 200
    for run, rec in results:
        _check(rec, run)


def test_threads_sharing_one_record_block_get_unique_gap_free_indices(trace_dir: Path) -> None:
    """Threads started with copy_context().run inside one record() block all record into it, in order."""
    workers, per_worker = 8, 25
    barrier = threading.Barrier(workers, timeout=30)

    def work(n: int) -> None:
        with mattrace.agent(f"w{n}"):
            for k in range(per_worker):
                # every worker starts round k together: a worker's steps take less than one
                # scheduler slice, and without the rounds one thread may record all of its own
                # before the next runs, so the threads would never share the recorder at all
                barrier.wait()
                echo(f"w{n}", k)
                mattrace.message(None, f"w{n} says {k}")

    with mattrace.record("shared run", dir=trace_dir) as rec:
        threads = [threading.Thread(target=contextvars.copy_context().run, args=(work, n))
                   for n in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    steps: list[Step] = rec.trace.steps
    total = workers * per_worker * 2 + 1
    assert [s.index for s in steps] == list(range(total))
    assert steps[-1].kind == "end"
    agents = {s.agent for s in steps[:-1]}
    assert agents == {f"w{n}" for n in range(workers)}
    for n in range(workers):
        mine = [s for s in steps if s.agent == f"w{n}"]
        assert [s.args["r"] for s in mine if s.kind == "tool"] == list(range(per_worker))
        assert [s.content for s in mine if s.kind == "message"] == [
            f"w{n} says {k}" for k in range(per_worker)]
        assert all(s.args["run"] == f"w{n}" for s in mine if s.kind == "tool")
    # the threads interleaved (agents alternate somewhere before the last worker's run)
    assert sum(a.agent != b.agent for a, b in itertools.pairwise(steps)) > workers
    report = mattrace.verify(rec.path)
    assert (report.ok, report.steps) == (True, total)
    assert mattrace.load(rec.path).steps == steps


def test_plain_thread_without_context_records_nowhere(trace_dir: Path) -> None:
    """A plain Thread does not inherit the record() context, so its calls run unrecorded, not misfiled."""
    seen: list[Any] = []
    with mattrace.record("outer", dir=trace_dir) as rec:
        t = threading.Thread(target=lambda: seen.append((echo("plain", 1),
                                                         mattrace.active_recorder())))
        t.start()
        t.join()
    assert seen == [("echo plain 1", None)]
    assert [s.kind for s in rec.trace.steps] == ["end"]
