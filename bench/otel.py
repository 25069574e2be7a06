"""The cost of MatSpanProcessor per span, against the same tracer provider without it.

Both providers export every span to memory (SimpleSpanProcessor + InMemorySpanExporter:
what a test setup does); the second also has mattrace's processor, inside a ``record()``
block, so every span becomes a step written to a trace file. The spans are a typical
agent turn: an agent span around a chat span (GenAI messages as JSON, usage) and two
tool spans. Prints µs per span for each (median of repetitions) and the overhead ratio.

    python bench/otel.py [--spans 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mattrace
from mattrace.integrations.otel import install

MESSAGES = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Where is my refund for order 1042?"}]}])
REPLY = json.dumps([{"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "lookup_order",
                                                     "arguments": {"order_id": "1042"}}]}])


def turn(tracer: Tracer, i: int) -> int:
    """One agent turn: 4 spans."""
    with tracer.start_as_current_span("invoke_agent triage", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage"}):
        with tracer.start_as_current_span("chat gpt-4o", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.input.messages": MESSAGES,
                "gen_ai.output.messages": REPLY, "gen_ai.usage.input_tokens": 40, "gen_ai.usage.output_tokens": 12}):
            pass
        for name in ("lookup_order", "issue_refund"):
            with tracer.start_as_current_span(f"execute_tool {name}", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.call.id": "c1",
                    "gen_ai.tool.call.arguments": json.dumps({"order_id": str(i)}),
                    "gen_ai.tool.call.result": json.dumps({"status": "ok", "n": i})}):
                pass
    return 4


def measure(spans: int, with_mattrace: bool, work: Path) -> float:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    if with_mattrace:
        install(provider, side_effects=["issue_refund"])
    tracer = provider.get_tracer("bench")
    done = 0
    start = time.process_time()
    if with_mattrace:
        with mattrace.record("bench", dir=work, cassette=False):
            while done < spans:
                done += turn(tracer, done)
    else:
        while done < spans:
            done += turn(tracer, done)
    elapsed = time.process_time() - start
    provider.shutdown()
    return elapsed / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mattrace-bench-otel-"))
    try:
        measure(2_000, True, work)   # warm-up: imports, first file
        base = statistics.median(measure(args.spans, False, work) for _ in range(args.repeat))
        with_mt = statistics.median(measure(args.spans, True, work) for _ in range(args.repeat))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"spans per run: {args.spans}; median of {args.repeat}")
    print(f"provider + in-memory exporter:              {base:8.1f} µs/span")
    print(f"  + MatSpanProcessor (steps to a trace file): {with_mt:8.1f} µs/span")
    print(f"overhead: +{with_mt - base:.1f} µs/span, ratio {with_mt / base:.2f}x")


if __name__ == "__main__":
    main()
