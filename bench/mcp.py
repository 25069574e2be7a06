"""What does the MCP proxy add to a tool call? Median ms per ``tools/call``, direct and through it.

Run by hand from the repository root::

    python bench/mcp.py                 # 300 calls each way, after 20 to warm up
    python bench/mcp.py --calls 1000

One SDK client (``ClientSession`` over stdio, the SDK's real transport) calls the read-only
``weather`` tool of the test server (``tests/mcp_test_server.py``, the SDK's ``MCPServer``) on
loopback pipes, first directly, then through ``mattrace mcp`` recording the session (trace and
cassette written as it goes). Figures are the median and 90th percentile of each call's
round trip, and the median added by the proxy: the machines are shared and noisy, so read the
median. The target is at most 1 ms added per call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# this script is called mcp.py: its own directory must not shadow the SDK's `mcp` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import anyio  # noqa: E402
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SERVER = [sys.executable, str(ROOT / "tests" / "mcp_test_server.py"), "plain"]


async def timings(params: StdioServerParameters, calls: int, warmup: int) -> list[float]:
    """Milliseconds per tools/call, after ``warmup`` calls."""
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await session.list_tools()
            out = []
            for i in range(warmup + calls):
                start = time.perf_counter()
                await session.call_tool("weather", {"city": f"city {i}"})
                if i >= warmup:
                    out.append((time.perf_counter() - start) * 1000)
            return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        direct = StdioServerParameters(command=SERVER[0], args=SERVER[1:], env=env)
        proxied = StdioServerParameters(command=sys.executable, args=["-m", "mattrace", "mcp", "--dir", tmp, "--",
                                                                      *SERVER], env=env)
        rows = [("direct", anyio.run(timings, direct, args.calls, args.warmup)),
                ("through mattrace mcp", anyio.run(timings, proxied, args.calls, args.warmup))]
    print(f"tools/call round trip over stdio, {args.calls} calls each (after {args.warmup} to warm up)")
    print(f"{'':24} {'median ms':>10} {'p90 ms':>10}")
    for label, values in rows:
        print(f"{label:24} {statistics.median(values):10.3f} {statistics.quantiles(values, n=10)[-1]:10.3f}")
    added = statistics.median(rows[1][1]) - statistics.median(rows[0][1])
    print(f"added by the proxy (median): {added:.3f} ms per call (target <= 1 ms)")


if __name__ == "__main__":
    main()
