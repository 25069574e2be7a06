"""What does having mattrace installed cost a pytest session that never uses it?

Run by hand from the repository root::

    python bench/pytest_plugin.py            # 200 tests, 15 rounds
    python bench/pytest_plugin.py --quick    # 5 rounds

Writes a suite of ``--tests`` plain tests (no marker, no ``mat`` fixture) into a temporary
directory and times ``pytest --collect-only -q`` on it in a fresh process, alternately with
the plugin (its ``pytest11`` entry point, ``_mattrace_pytest``) and without it
(``-p no:mattrace``), so both see the same machine load. Prints the median wall time of
each, the difference (what the plugin adds), and whether the session imported mattrace.
Everything else pytest loads (its other plugins) is the same in both columns.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPY = """
import json, os, sys

def pytest_sessionfinish(session):
    with open(os.environ["MATTRACE_BENCH_SPY"], "w") as fh:
        json.dump(sorted(m for m in sys.modules if m.split(".")[0] == "mattrace"), fh)
"""


def _suite(root: Path, tests: int) -> None:
    per_file = 20
    for f in range(0, tests, per_file):
        body = "\n".join(f"def test_{i}():\n    assert {i} + 1 == {i + 1}\n"
                         for i in range(f, min(f + per_file, tests)))
        (root / f"test_plain_{f // per_file}.py").write_text(body)
    (root / "conftest.py").write_text(SPY)


def _collect(root: Path, with_plugin: bool, spy: Path) -> tuple[float, list[str]]:
    args = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    if not with_plugin:
        args += ["-p", "no:mattrace"]
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=root, capture_output=True, text=True,
                          env={**__import__("os").environ, "MATTRACE_BENCH_SPY": str(spy)})
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"pytest failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed, json.loads(spy.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 rounds")
    options = parser.parse_args()
    rounds = 5 if options.quick else options.rounds
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _suite(root, options.tests)
        spy = root / "spy.json"
        times: dict[bool, list[float]] = {True: [], False: []}
        imported: list[str] = []
        _collect(root, True, spy)   # warm the file cache once
        for _ in range(rounds):
            for with_plugin in (True, False):
                elapsed, loaded = _collect(root, with_plugin, spy)
                times[with_plugin].append(elapsed)
                if with_plugin:
                    imported = loaded
    on, off = statistics.median(times[True]) * 1000, statistics.median(times[False]) * 1000
    print(f"pytest --collect-only of {options.tests} plain tests, median of {rounds} fresh processes each")
    print(f"  with the mattrace plugin   {on:8.1f} ms")
    print(f"  with -p no:mattrace        {off:8.1f} ms")
    print(f"  added by the plugin        {on - off:8.1f} ms ({on / off:.3f}x)")
    print(f"  mattrace modules imported: {len(imported)}{' ' + ', '.join(imported[:5]) if imported else ''}")


if __name__ == "__main__":
    main()
