"""The HTML report at scale: 1,000 traces of 100 steps (by default).

Writes the synthetic traces and results of bench/store.py (kept in
``$TMPDIR/mattrace-bench-report`` between runs), ingests them, then times
``write_report`` (best of a few), prints the file's size, and, when Chromium is installed,
opens the report headless and reads the browser's own first-paint / first-contentful-paint
times and the time until the report's script is ready (``data-ready``); then opens one
trace view and times drawing it.

    python bench/report.py [--traces 1000] [--steps 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from store import write_layout  # noqa: E402  (bench/store.py)

from mattrace.report.html import write_report  # noqa: E402
from mattrace.store import Store  # noqa: E402
from tests.browser import Browser, chromium_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.gettempdir()) / "mattrace-bench-report" / f"{args.traces}x{args.steps}"
    write_layout(work, args.traces, args.steps)
    db = work / "store.duckdb"
    db.unlink(missing_ok=True)
    with Store.open(db) as store:
        store.ingest([work / "traces", work / "results"])
    out = work / "report.html"
    times = []
    with Store.open(db, read_only=True) as store:
        for _ in range(args.repeat):
            start = time.perf_counter()
            write_report(store, out)
            times.append(time.perf_counter() - start)
    size = out.stat().st_size
    print(f"{args.traces} traces x {args.steps} steps")
    print(f"write_report: {min(times):.2f} s (best of {args.repeat})")
    print(f"file size: {size / 1e6:.1f} MB")
    if chromium_path() is None:
        print("chromium not installed: no paint times (apt-get install chromium)")
        return
    with Browser() as browser:
        page = browser.open("about:blank")
        start = time.perf_counter()
        page.navigate(out.as_uri())
        page.wait_for("document.body && document.body.dataset.ready === '1'", timeout=60)
        ready = time.perf_counter() - start
        paints = page.evaluate("JSON.stringify(Object.fromEntries(performance.getEntriesByType('paint')"
                               ".map(e => [e.name, Math.round(e.startTime)])))")
        nav = page.evaluate("Math.round(performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd)")
        link = page.evaluate("document.querySelector('a.first-violation').getAttribute('href')")
        start = time.perf_counter()
        page.evaluate(f"window.location.hash = {link!r}; 1")
        page.wait_for(f"document.body.dataset.shown === {link[1:]!r}", timeout=30)
        view = time.perf_counter() - start
    print(f"browser paint (ms since navigation start): {paints}; DOMContentLoaded {nav} ms")
    print(f"report script ready after {ready:.2f} s (load + parse of the embedded trace data)")
    print(f"one trace view drawn and scrolled to in {view * 1000:.0f} ms")


if __name__ == "__main__":
    main()
