"""What does the MCP proxy add to a tool call? Median ms per ``tools/call``, direct and through it.

Run by hand from the repository root::

    python bench/mcp.py                 # 300 calls each way, after 20 to warm up
    python bench/mcp.py --calls 1000
    python bench/mcp.py --no-http       # stdio only

One SDK client (``ClientSession``, the SDK's real transports) calls a read-only tool of a test
server (the SDK's ``MCPServer``), first directly, then through ``mattrace mcp`` recording the
session (trace and cassette written as it goes): over stdio (``weather`` of
``tests/mcp_test_server.py``, on pipes), then over streamable HTTP on loopback (``echo`` of
``tests/mcp_ask_server.py``, through ``mattrace mcp --http``). Figures are the median and 90th
percentile of each call's round trip, and the median added by the proxy, as milliseconds and as
a ratio to the direct median of the same run: the machines are shared and noisy, so read the
median. The target is at most 1 ms added per call over stdio.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# this script is called mcp.py: its own directory must not shadow the SDK's `mcp` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import anyio  # noqa: E402
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SERVER = [sys.executable, str(ROOT / "tests" / "mcp_test_server.py"), "plain"]
HTTP_SERVER = [sys.executable, str(ROOT / "tests" / "mcp_ask_server.py"), "http"]


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


async def http_timings(url: str, calls: int, warmup: int) -> list[float]:
    """Milliseconds per tools/call over streamable HTTP, after ``warmup`` calls."""
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.list_tools()
        out = []
        for i in range(warmup + calls):
            start = time.perf_counter()
            await session.call_tool("echo", {"text": f"call {i}"})
            if i >= warmup:
                out.append((time.perf_counter() - start) * 1000)
        return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_rows(env: dict[str, str], tmp: str, calls: int, warmup: int) -> list[tuple[str, list[float]]]:
    """Direct and proxied timings over streamable HTTP (server and proxy started here, stopped after)."""
    port = _free_port()
    server = subprocess.Popen([*HTTP_SERVER, str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = None
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/mcp"
        proxy = subprocess.Popen([sys.executable, "-m", "mattrace", "mcp", "--dir", tmp, "--http", url], env=env,
                                 stderr=subprocess.PIPE, text=True)
        assert proxy.stderr is not None
        found = re.search(r"listening on (\S+)", proxy.stderr.readline())
        assert found, "the proxy did not say where it listens"
        return [("http direct", anyio.run(http_timings, url, calls, warmup)),
                ("http through mattrace mcp", anyio.run(http_timings, found.group(1), calls, warmup))]
    finally:
        for process in (proxy, server):
            if process is not None:
                process.terminate()
                process.wait(15)
                if process.stderr is not None:
                    process.stderr.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--no-http", action="store_true", help="time stdio only")
    args = parser.parse_args()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        direct = StdioServerParameters(command=SERVER[0], args=SERVER[1:], env=env)
        proxied = StdioServerParameters(command=sys.executable, args=["-m", "mattrace", "mcp", "--dir", tmp, "--",
                                                                      *SERVER], env=env)
        rows = [("stdio direct", anyio.run(timings, direct, args.calls, args.warmup)),
                ("stdio through mattrace mcp", anyio.run(timings, proxied, args.calls, args.warmup))]
        if not args.no_http:
            rows += http_rows(env, tmp, args.calls, args.warmup)
    print(f"tools/call round trip, {args.calls} calls each (after {args.warmup} to warm up)")
    print(f"{'':28} {'median ms':>10} {'p90 ms':>10}")
    for label, values in rows:
        print(f"{label:28} {statistics.median(values):10.3f} {statistics.quantiles(values, n=10)[-1]:10.3f}")
    for (transport, base), (_, through) in zip(rows[::2], rows[1::2], strict=True):
        direct_ms, proxied_ms = statistics.median(base), statistics.median(through)
        print(f"added by the proxy over {transport.split()[0]} (median): {proxied_ms - direct_ms:.3f} ms per call, "
              f"{proxied_ms / direct_ms:.2f}x the direct round trip")


if __name__ == "__main__":
    main()
