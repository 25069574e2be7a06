"""``mattrace compare | demo``: the applications built on mattrace, run from the command line.

Both load a whole multi-agent system (litellm, the store, the search) when they run, so
their handlers import everything they use; adding their parsers costs nothing.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mattrace.cli._common import (
    EXIT_OK,
    CliError,
    Parents,
    console,
    positive,
    print_json,
    split_names,
    table_console,
)

if TYPE_CHECKING:
    from mattrace.cli._common import Adder, Commands


def _add_compare(sub: Commands, common: Parents) -> None:
    cmp = sub.add_parser(
        "compare", parents=[common.store, common.json],
        help="run a suite's orchestration designs over seeds and compare them by their traces",
        description="Run every (design, task, seed) of a suite (a module with DESIGNS, TASKS, run, oracle and "
        "CONTRACTS, e.g. examples/research_team), check the contracts on every trace, store them as one run, "
        "and print the metrics and pass^k per design with their intervals.",
        epilog="exit status: 0 when the comparison ran, 2 on bad usage or a suite that cannot be loaded.")
    cmp.add_argument("suite", metavar="SUITE", help="the suite: a path such as examples/research_team, or a module")
    cmp.add_argument("--designs", metavar="NAMES", help="comma-separated designs (default: all of the suite's)")
    cmp.add_argument("--tasks", metavar="NAMES", help="comma-separated tasks (default: all of the suite's)")
    cmp.add_argument("--seeds", type=positive, default=10, metavar="N", help="seeds 0..N-1 per design (default 10)")
    cmp.add_argument("--faults", metavar="FILE", help="a TOML fault plan injected into every run")
    cmp.add_argument("--governed", action="store_true", help="run every design under the suite's governor()")
    cmp.add_argument("--search", action="store_true", help="also a small counterexample search per design")
    cmp.add_argument("--out", metavar="FILE", help="also write the HTML report of the comparison")
    cmp.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    from mattrace.apps.compare import compare, load_suite

    def names(value: str | None) -> list[str] | None:
        return split_names([value]) if value else None

    faults = None
    if args.faults:
        from mattrace.faults import load_faults

        faults = load_faults(args.faults)
    suite = load_suite(args.suite)
    result = compare(suite, names(args.designs), args.seeds, tasks=names(args.tasks), faults=faults,
                     governed=args.governed, search=args.search, store=args.store, report=args.out)
    if args.json:
        print_json({"run_id": result.run_id, "runs": result.runs, "seconds": round(result.seconds, 2),
                    "metrics": [m.to_json_dict() for m in result.metrics],
                    "per_seed": [r.to_json_dict() for r in result.per_seed],
                    "designs": [d.to_json_dict() for d in result.designs_summary],
                    "separates": result.separation is None, "separation": result.separation,
                    "report": str(result.report) if result.report else None})
        return EXIT_OK
    from mattrace.report.metrics import containment_table, metrics_table

    out = table_console()
    out.print(f"{result.suite}: {len(result.designs)} design(s) x {len(result.tasks)} task(s) x "
              f"{len(result.seeds)} seed(s) = {result.runs} runs in {result.seconds:.1f} s; run {result.run_id}",
              soft_wrap=True)
    out.print(metrics_table(result.metrics))
    if result.containment:
        out.print(containment_table(result.containment))
    _print_differences(out, result)
    for design, found in result.searches.items():
        if isinstance(found, str):
            what = found
        elif found.found and found.violation is not None:
            what = f"{found.perturbation} breaks {found.violation.contract} (run {found.runs_to_find} of {found.runs})"
        else:
            what = f"nothing found: {found.stopped}"
        out.print(f"search {design}: {what}", soft_wrap=True, highlight=False)
    out.print(f"traces in {result.traces_dir}; store {result.store}"
              + (f"; report: {result.report}" if result.report else ""), soft_wrap=True, highlight=False)
    return EXIT_OK


def _print_differences(out: Any, result: Any) -> None:
    """Each run by seed, the designs side by side, and a plain word when they do not separate."""
    from rich.table import Table

    by_row: dict[tuple[str, str], list[str]] = {}
    for r in result.per_seed:
        word = r.outcome + (f" (violation: {r.violation})" if r.violation else "")
        by_row.setdefault((r.design, r.task), []).append(f"{r.seed} {word}")
    out.print("per seed:", highlight=False)
    for (design, task), seeds in by_row.items():
        out.print(f"  {design} {task}: seed {', '.join(seeds)}", soft_wrap=True, highlight=False)
    table = Table(title="differences between designs", title_justify="left", box=None)
    for column in ("design", "runs", "ok", "violated", "mean steps", "tokens", "cost", "first violations"):
        table.add_column(column, justify="left" if column in ("design", "first violations") else "right")
    for d in result.designs_summary:
        table.add_row(d.design, str(d.runs), str(d.ok), str(d.violated), f"{d.mean_steps:.1f}", str(d.tokens),
                      f"${d.usd:.4f}", "; ".join(d.first_violations) or "-")
    out.print(table)
    if result.separation is not None:
        out.print(result.separation, soft_wrap=True, highlight=False)


def _add_demo(sub: Commands, common: Parents) -> None:
    demo = sub.add_parser("demo", help="record and check a few runs of the example system",
                          description="Run the bundled multi-agent demo offline and show "
                          "what mattrace finds in its traces.")
    demo.add_argument("--runs", type=positive, metavar="N", help="how many runs to record")
    demo.add_argument("--dir", metavar="DIR",
                      help="where the demo makes its folder of trace files, demo-<run id>/ (default .mattrace/traces); "
                           "the store and the report go beside DIR")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    import importlib

    try:  # imported only when asked for: the demo pulls in the example system
        demo = importlib.import_module("mattrace.apps.demo")
    except ModuleNotFoundError as exc:
        if exc.name != "mattrace.apps.demo":
            raise
        raise CliError("the demo is not part of this installation (no mattrace.apps.demo)") from exc
    options: dict[str, Any] = {"console": console(markup=True)}   # the demo's narration is styled
    if args.runs is not None:
        options["runs"] = args.runs
    if args.dir is not None:
        options["dir"] = args.dir
    code = demo.run_demo(**options)
    return code if isinstance(code, int) else EXIT_OK


COMMANDS: dict[str, Adder] = {  # the group's commands, each with the function that adds its parser
    "compare": _add_compare,
    "demo": _add_demo,
}
