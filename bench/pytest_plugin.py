"""What does having mattrace installed cost a pytest session that never uses it?

Run by hand from the repository root::

    python bench/pytest_plugin.py            # 200 tests, 15 rounds
    python bench/pytest_plugin.py --quick    # 5 rounds

Writes a suite of ``--tests`` plain tests (no marker, no ``mat`` fixture) into a temporary
directory and times ``pytest --collect-only -q`` on it in a fresh process, alternately with
the plugin (its ``pytest11`` entry point, ``_mattrace_pytest``) and without it
(``-p no:mattrace``), so both see the same machine load; which goes first alternates. Prints the median wall time and
CPU time of each, the difference (what the plugin adds), and whether the session imported
mattrace. On a shared machine the CPU time is the steadier of the two.
Everything else pytest loads (its other plugins) is the same in both columns.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _collect(root: Path, with_plugin: bool, spy: Path) -> tuple[float, float, list[str]]:
    args = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    if not with_plugin:
        args += ["-p", "no:mattrace"]
    start, cpu = time.perf_counter(), _cpu()
    proc = subprocess.run(args, cwd=root, capture_output=True, text=True,
                          env={**os.environ, "MATTRACE_BENCH_SPY": str(spy)})
    elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"pytest failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed, cpu, json.loads(spy.read_text())


IMPORT_COST = """
import json, time
import pytest
start = time.perf_counter(); import _mattrace_pytest; entry = time.perf_counter() - start
start = time.perf_counter(); import mattrace.pytest_plugin; plugin = time.perf_counter() - start
print(json.dumps([entry, plugin]))
"""


def _import_costs(rounds: int) -> tuple[float, float]:
    """Median ms to import the entry module, and then the plugin proper, in a fresh process
    that has pytest loaded already (as a pytest session has)."""
    costs = [json.loads(subprocess.run([sys.executable, "-c", IMPORT_COST], capture_output=True, text=True,
                                       check=True).stdout) for _ in range(rounds)]
    return (statistics.median(c[0] for c in costs) * 1000, statistics.median(c[1] for c in costs) * 1000)


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
        cpus: dict[bool, list[float]] = {True: [], False: []}
        imported: list[str] = []
        _collect(root, True, spy)   # warm the file cache once
        for round_ in range(rounds):
            # alternate which goes first: the second of two back-to-back runs is often faster
            for with_plugin in ((True, False) if round_ % 2 == 0 else (False, True)):
                elapsed, cpu, loaded = _collect(root, with_plugin, spy)
                times[with_plugin].append(elapsed)
                cpus[with_plugin].append(cpu)
                if with_plugin:
                    imported = loaded
    print(f"pytest --collect-only of {options.tests} plain tests, median of {rounds} fresh processes each")
    print("                              wall ms    cpu ms (user+sys of the pytest process)")
    for label, key in (("with the mattrace plugin", True), ("with -p no:mattrace", False)):
        print(f"  {label:26} {statistics.median(times[key]) * 1000:8.1f}  {statistics.median(cpus[key]) * 1000:8.1f}")
    wall = (statistics.median(times[True]) - statistics.median(times[False])) * 1000
    cpu = (statistics.median(cpus[True]) - statistics.median(cpus[False])) * 1000
    print(f"  added by the plugin        {wall:8.1f}  {cpu:8.1f}")
    entry, plugin = _import_costs(rounds)
    print(f"  importing the entry module (_mattrace_pytest): {entry:6.1f} ms; the plugin proper, loaded only "
          f"when a test uses mattrace: {plugin:6.1f} ms")
    print(f"  mattrace modules imported: {len(imported)}{' ' + ', '.join(imported[:5]) if imported else ''}")


if __name__ == "__main__":
    main()
