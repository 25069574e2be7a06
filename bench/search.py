"""Guided counterexample search against uniform random sampling, on the planted bugs.

For every planted bug in tests/planted_bugs.py and every seed, run the guided search
(hypothesis: canary reachability, margins, shrinking) and the random baseline under the
same budget; print, per bug and overall: found-rate for each, the median number of runs
until the first counterexample (the canary run included), the median of the per-seed
ratio guided/random, and the share of guided results shrunk to the known minimal
perturbation. A strategy that finds nothing within budget is charged the whole budget.

    python bench/search.py [--seeds 20] [--runs 300]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mattrace  # noqa: F401  (before litellm: no price fetch over the network)
from mattrace.search import Budget, find_counterexample
from tests.planted_bugs import cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=300, help="the run budget of each search")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mattrace-bench-search-"))
    all_ratios: list[float] = []
    totals = {"guided": [0, 0], "random": [0, 0]}
    minimal_hits = minimal_total = 0
    started = time.perf_counter()
    try:
        print(f"{'planted bug':34} {'found g/r':>10} {'median runs g':>14} {'median runs r':>14} "
              f"{'median g/r':>11} {'minimal':>8}")
        for case in cases():
            runs: dict[str, list[int]] = {"guided": [], "random": []}
            found: dict[str, int] = {"guided": 0, "random": 0}
            minimal = 0
            for seed in range(args.seeds):
                for strategy in ("guided", "random"):
                    result = find_counterexample(case.run, case.space, list(case.contracts),
                                                 Budget(runs=args.runs), seed=seed, strategy=strategy,
                                                 dir=work / f"{strategy}-{seed}", database=None)
                    runs[strategy].append(result.runs_to_find or args.runs)
                    found[strategy] += result.found
                    if strategy == "guided" and result.found:
                        minimal += str(result.perturbation) == str(case.minimal)
                shutil.rmtree(work, ignore_errors=True)
            ratios = [g / r for g, r in zip(runs["guided"], runs["random"], strict=True)]
            all_ratios += ratios
            for s in totals:
                totals[s][0] += found[s]
                totals[s][1] += args.seeds
            minimal_hits += minimal
            minimal_total += found["guided"]
            print(f"{case.name:34} {found['guided']:>4}/{found['random']:<5} "
                  f"{statistics.median(runs['guided']):>14.1f} {statistics.median(runs['random']):>14.1f} "
                  f"{statistics.median(ratios):>11.3f} {minimal}/{found['guided']:<6}")
        print(f"\nseeds per bug: {args.seeds}; run budget per search: {args.runs}")
        for s, (hit, n) in totals.items():
            print(f"found-rate {s}: {hit}/{n} = {hit / n:.0%}")
        print(f"median ratio of runs to find (guided/random), all bugs and seeds: {statistics.median(all_ratios):.3f}")
        share = minimal_hits / minimal_total if minimal_total else 0.0
        print(f"guided results shrunk to the known minimal perturbation: {minimal_hits}/{minimal_total} = {share:.0%}")
        print(f"wall time: {time.perf_counter() - started:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
