"""How much does recording a step cost, next to what tracing with OpenTelemetry costs?

Run by hand from the repository root::

    python bench/recording.py            # under a minute
    python bench/recording.py --quick    # a rough look in a few seconds

It prints µs per operation (median over repetitions taken in turns, after a warm-up round) for:

* ``Recorder.append`` of a message step (~200 characters of content, small args), early
  in a trace and after 2,000 steps (the recorder keeps per-run state, such as the tool
  calls requested and not yet answered; a step's cost should not grow with the run);
* a call through a ``@mattrace.tool`` wrapper (interceptor chain + one step + one cassette
  line), and the same without a cassette (what the cassette line adds is the difference);
* both with ``fsync=False`` (the default) and ``fsync=True`` (fewer iterations: each
  step waits for the disk);
* one OpenTelemetry SDK span (start + end, four attributes) with a SimpleSpanProcessor
  exporting to memory, which is the baseline, and with a BatchSpanProcessor.

Every figure is also given as a ratio to the OTel span, because absolute microseconds on a
shared, noisy machine mean little and ratios survive better. Costs include what a real run
pays: redaction, JSON encoding, hashing and one ``write(2)`` per step. Provenance (the
``reads`` a step's text shows, where values came from) is not among them: it is inferred at
analysis time (``mattrace.provenance``). Traces are written to a temporary directory that is removed.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mattrace
from mattrace.recording.recorder import Recorder
from mattrace.trace import StepKind

_DROPPED: dict[bool, int] = {}  # batch? -> most spans an OTel processor lost in one rep
# a benchmark body does `n` operations; a setup builds one (fresh state) and its teardown
Bench = Callable[[int], None]
Setup = Callable[[], tuple[Bench, Callable[[], object]]]

_WORDS = ("refund", "order", "policy", "customer", "shipping", "invoice", "warehouse",
          "delivery", "account", "support", "return", "damaged")


def _content(i: int) -> str:
    """About 200 characters that differ per step, as agents' messages do.

    Identical messages would make every step "read" every earlier one when the context
    flow is analysed (it is inferred by text containment), which is not what a real run
    looks like.
    """
    words = [_WORDS[(i * 7 + k * 3) % len(_WORDS)] for k in range(24)]
    return f"turn {i}: " + " ".join(words)[:190]


_CLOCK = time.process_time_ns   # CPU time of this process, all threads (see --wall)


def _once_us(setup: Setup, n: int) -> float:
    """µs per op of one repetition of ``n`` ops on fresh state."""
    run, teardown = setup()
    gc.collect()
    t0 = _CLOCK()
    run(n)
    elapsed = _CLOCK() - t0
    teardown()
    return elapsed / n / 1e3


def _medians_us(plan: list[tuple[str, int, Setup]], reps: int) -> list[tuple[str, float, int]]:
    """Median µs per op of each row over ``reps`` repetitions, taken in turns (row 1, row 2, ...,
    then again), so a burst of other work on the machine lands on every row alike rather than
    on whichever row was being measured; a first round warms caches, imports and the allocator."""
    samples: list[list[float]] = [[] for _ in plan]
    for rep in range(reps + 1):
        for row, (_, count, setup) in enumerate(plan):
            us = _once_us(setup, count)
            if rep:
                samples[row].append(us)
    return [(label, statistics.median(got), count) for (label, count, _), got in zip(plan, samples, strict=True)]


def append_bench(tmp: Path, fsync: bool,
                 prefill: int = 0) -> Setup:
    """``Recorder.append`` of message steps into a fresh trace file per repetition.

    ``prefill`` steps are recorded first, untimed, so comparing a short and a long run
    shows whether a step's cost grows with the run.
    """
    def setup() -> tuple[Bench, Callable[[], object]]:
        rec = Recorder("bench-append", dir=tmp, fsync=fsync)
        texts = [_content(i) for i in range(prefill + 20_000)]
        for i in range(prefill):
            rec.append(StepKind.MESSAGE, agent="writer", target="reviewer", content=texts[i],
                       args={"turn": i, "channel": "review"})

        def run(n: int) -> None:
            append = rec.append
            for i in range(prefill, prefill + n):
                append(StepKind.MESSAGE, agent="writer", target="reviewer", content=texts[i],
                       args={"turn": i, "channel": "review"})
        return run, lambda: rec.close()
    return setup


_PREFIX = "Order history and shipping notes for the customer. " * 38   # ~1.9 KB, the same in every output


def tool_bench(tmp: Path, fsync: bool, prefill: int = 0, long_outputs: bool = False,
               cassette: bool = True) -> Setup:
    """Calls through a ``@mattrace.tool`` inside a ``record()`` block, one step and one cassette
    line each, after ``prefill`` untimed calls. ``long_outputs``: each result is ~2 KB of text
    sharing a 1.9 KB prefix with every other (what made an old recorder's cost grow).
    ``cassette=False``: the step alone (what the cassette line adds is the difference)."""
    @mattrace.tool
    def lookup_order(order: int, region: str = "eu") -> dict[str, object]:
        return {"order": order, "status": "shipped", "region": region}

    @mattrace.tool
    def order_notes(order: int) -> str:
        return f"{_PREFIX} order {order}: {_WORDS[order % len(_WORDS)]}"

    call = (lambda i: order_notes(i)) if long_outputs else (lambda i: lookup_order(i, region="eu"))

    def setup() -> tuple[Bench, Callable[[], object]]:
        block = mattrace.record("bench-tool", dir=tmp, fsync=fsync, cassette=cassette)
        block.__enter__()
        for i in range(prefill):
            call(i)

        def run(n: int) -> None:
            for i in range(prefill, prefill + n):
                call(i)
        return run, lambda: block.__exit__(None, None, None)
    return setup


def rss_growth(steps: int) -> tuple[float, float]:
    """Growth of the resident memory (MB) of a fresh process while it records ``steps`` message
    steps, and the size of the trace file (MB): what a recorder holds in memory for a long run.

    Resident memory is sampled every 10,000 steps (``/proc/self/statm``; the peak RSS the
    kernel keeps would hide growth below the peak that importing mattrace's dependencies
    leaves), and the largest sample is compared with the one after the first step.
    """
    code = f"""
import os, tempfile
import mattrace
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
with tempfile.TemporaryDirectory() as tmp:
    with mattrace.record("rss", dir=tmp) as rec:
        mattrace.message("writer", "warm-up")
        before = most = rss()
        for i in range({steps}):
            mattrace.message("writer", f"turn {{i}}: " + "refund order policy customer shipping " * 5)
            if i % 10_000 == 0:
                most = max(most, rss())
    most = max(most, rss())
    print(before, most, rec.path.stat().st_size)
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    before, most, size = int(out[0]), int(out[1]), int(out[2])
    return (most - before) / 1e6, size / 1e6


def otel_bench(batch: bool) -> Setup:
    """One span per op: start, four attributes, end; exported to memory."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    def setup() -> tuple[Bench, Callable[[], object]]:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("bench")
        n_ops = [0]

        def run(n: int) -> None:
            n_ops[0] = n
            for i in range(n):
                span = tracer.start_span("execute_tool lookup_order", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order",
                    "gen_ai.agent.name": "writer", "mattrace.turn": i})
                span.end()

        def teardown() -> None:
            provider.shutdown()  # flushes the batch processor's queue
            lost = n_ops[0] - len(exporter.get_finished_spans())
            _DROPPED[batch] = max(_DROPPED.get(batch, 0), lost)
            exporter.clear()
        return run, teardown
    return setup


def main(argv: list[str] | None = None) -> int:
    global _CLOCK
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (rough figures)")
    parser.add_argument("--reps", type=int, default=7, help="repetitions per figure (median)")
    parser.add_argument("--wall", action="store_true", help="wall-clock time instead of CPU time")
    parser.add_argument("--rss-steps", type=int, default=None,
                        help="steps of the memory run (default 1,000,000; 100,000 with --quick; 0 skips it)")
    args = parser.parse_args(argv)
    if args.wall:
        _CLOCK = time.perf_counter_ns
    n, n_short, n_sync = (500, 300, 30) if args.quick else (3000, 1000, 200)
    reps = 3 if args.quick else args.reps
    late = (2_000, 10_000) if args.quick else (10_000, 100_000)
    rss_steps = args.rss_steps if args.rss_steps is not None else (100_000 if args.quick else 1_000_000)

    with tempfile.TemporaryDirectory(prefix="mattrace-bench-") as tmpdir:
        tmp = Path(tmpdir)
        plan: list[tuple[str, int, Setup]] = [
            ("OTel span, SimpleSpanProcessor → memory (baseline)", n, otel_bench(batch=False)),
            ("OTel span, BatchSpanProcessor → memory", n, otel_bench(batch=True)),
            (f"message step, steps 0-{n_short - 1} of a trace", n_short, append_bench(tmp, fsync=False)),
            *[(f"message step, after {k:,} steps", n_short, append_bench(tmp, fsync=False, prefill=k))
              for k in late],
            ("@mattrace.tool call (step + cassette line)", n, tool_bench(tmp, fsync=False)),
            *[(f"@mattrace.tool call, after {k:,} calls", n_short, tool_bench(tmp, fsync=False, prefill=k))
              for k in late],
            ("@mattrace.tool call, 2 KB outputs, shared prefix", n, tool_bench(tmp, False, long_outputs=True)),
            (f"@mattrace.tool call, 2 KB outputs, after {late[-1]:,}", n_short,
             tool_bench(tmp, False, prefill=late[-1], long_outputs=True)),
            ("@mattrace.tool call without a cassette (step only)", n, tool_bench(tmp, False, cassette=False)),
        ]
        rows = _medians_us(plan, reps)
        clock, _CLOCK = _CLOCK, time.perf_counter_ns   # waiting for the disk is no CPU time: wall clock
        synced = _medians_us([
            (f"message step, steps 0-{n_sync - 1}, fsync=True (wall)", n_sync, append_bench(tmp, fsync=True)),
            ("@mattrace.tool call, fsync=True (wall)", n_sync, tool_bench(tmp, fsync=True))], reps)
        _CLOCK = clock

    base = rows[0][1]
    what = "wall-clock" if args.wall else "CPU time (all threads)"
    print(f"mattrace {mattrace.__version__} · Python {platform.python_version()} · "
          f"{os.cpu_count()} CPU(s) · {platform.system()} · median of {reps} reps after warm-up · {what}")
    print(f"{'operation':<52} {'ops/rep':>7} {'µs/op':>9} {'vs OTel span':>12}")
    for label, us, count in rows + synced:
        print(f"{label:<52} {count:>7} {us:>9.2f} {us / base:>11.2f}x")
    if any(_DROPPED.values()):
        print(f"note: OTel dropped up to {max(_DROPPED.values())} spans per repetition "
              "(queue full); dropped spans cost less than exported ones")
    by_label = {label: us for label, us, _ in rows}
    message = [us for label, us in by_label.items() if label.startswith("message step")]
    tool = [us for label, us in by_label.items()
            if label.startswith("@mattrace.tool call") and "2 KB" not in label and "without" not in label]
    print(f"targets: message step ≤ 0.60x (worst {max(message) / base:.2f}x), tool call ≤ 1.00x "
          f"(worst {max(tool) / base:.2f}x); flat: message {max(message) / min(message):.2f}x, "
          f"tool {max(tool) / min(tool):.2f}x from the first steps to {late[-1]:,} (≤ 1.2x)")
    if rss_steps:
        grown, size = rss_growth(rss_steps)
        print(f"memory: recording {rss_steps:,} message steps grew resident memory by {grown:.1f} MB "
              f"({grown * 1024 * 1024 / rss_steps:.0f} bytes/step; target ≤ 100 MB for 1M steps); "
              f"trace file {size:.0f} MB")
    print("fsync=False unless stated. Shared, noisy machine: read the ratios, not the microseconds; fsync "
          "figures are the disk's.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
