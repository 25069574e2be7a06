"""The research-team comparison (3 designs x 2 tasks x 10 seeds, offline): its time, and where it goes.

Runs ``mattrace.apps.compare.compare`` once plainly (wall time, the number that matters), then
once under cProfile and splits the *own* time of every function by where its code lives:
mattrace, the example, litellm (the scripted model's path through it), pydantic, DuckDB
and the rest. (pyinstrument gives a nicer tree: ``pyinstrument bench/compare.py``; it is
not a dependency.)

    python bench/compare.py [--seeds 10]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mattrace  # noqa: E402,F401  (before litellm: no price fetch over the network)
from mattrace.apps.compare import compare, load_suite  # noqa: E402

BUCKETS = [("mattrace", "/mattrace/"), ("example", "/examples/"), ("litellm", "/litellm/"),
           ("pydantic", "/pydantic"), ("duckdb", "duckdb"), ("json/re/stdlib", "/lib/python3")]


def bucket(filename: str) -> str:
    if filename == "~":
        return "builtins (C)"   # time inside C functions: json encoding, hashing, I/O
    return next((name for name, marker in BUCKETS if marker in filename), "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    suite = load_suite(str(ROOT / "examples" / "research_team"))
    work = Path(tempfile.mkdtemp(prefix="mattrace-bench-compare-"))
    try:
        compare(suite, seeds=1, store=work / "warm" / "m.duckdb")          # imports, first files
        start = time.perf_counter()
        result = compare(suite, seeds=args.seeds, store=work / "run" / "m.duckdb")
        wall = time.perf_counter() - start
        profile = cProfile.Profile()
        profile.enable()
        compare(suite, seeds=args.seeds, store=work / "profiled" / "m.duckdb")
        profile.disable()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    own: dict[str, float] = defaultdict(float)
    stats = pstats.Stats(profile)
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        own[bucket(filename)] += tottime
    total = sum(own.values())
    print(f"{len(result.designs)} designs x {len(result.tasks)} tasks x {args.seeds} seeds = {result.runs} runs: "
          f"{wall:.1f} s wall ({wall / result.runs * 1000:.0f} ms per run), one process")
    print("own time under cProfile (it slows everything down alike), by where the code lives:")
    for name, seconds in sorted(own.items(), key=lambda kv: -kv[1]):
        print(f"  {name:16} {seconds:6.2f} s  {seconds / total:5.1%}")


if __name__ == "__main__":
    main()
