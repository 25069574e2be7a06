"""``mattrace metrics``: the store's metrics, containment and governance tables per group.

Imports ``mattrace.store`` (and with it duckdb) only when it opens the store, like every
store command, so ``--help`` never loads duckdb.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mattrace.cli._common import (
    EXIT_OK,
    CliError,
    positive,
    print_json,
    resolve_run,
    split_names,
    table_console,
)

if TYPE_CHECKING:
    from mattrace.cli._common import Commands, Parents

__all__ = ["add_metrics"]


def add_metrics(sub: Commands, common: Parents) -> None:
    met = sub.add_parser(
        "metrics", parents=[common.store, common.by, common.run, common.json],
        help="task success, termination, compliance, factuality, pass^k, flip rate",
        description="Print the metrics of the stored traces per group, each rate with its "
        "Wilson 95% interval. Group by test, model, seed, orchestration, run, trial, config "
        "(all of it but the seed), config.KEY or label.KEY. With --containment, the containment of "
        "faulted runs instead; with --governance, the governor's allow / rewrite / block decisions.")
    met.add_argument("--k", type=positive, metavar="K",
                     help="the k of pass^k (default: each group's smallest trial count)")
    met.add_argument("--per-contract", action="store_true", help="also show compliance per contract")
    met.add_argument("--containment", action="store_true",
                     help="instead: containment of faulted runs per fault class (default --by fault; also "
                     "fault_class, target, call_target and the keys above)")
    met.add_argument("--governance", action="store_true",
                     help="instead: governance decisions, the allow / rewrite / block shares (default --by rule; "
                     "also agent, tool, call_kind, decision and the keys above)")
    met.add_argument("--replays", action="store_true",
                     help="count the traces replayed from cassettes too (mattrace replay, pytest in record mode none "
                          "or replaying once): they repeat recorded runs, so by default they are left out")
    met.set_defaults(func=_metrics)


def _metrics(args: argparse.Namespace) -> int:
    from mattrace.store import Store

    if args.containment and args.governance:
        raise CliError("--containment and --governance are two different tables; ask for one")
    for table in ("containment", "governance"):
        if getattr(args, table) and (args.k is not None or args.per_contract):
            raise CliError(f"--{table} does not combine with --k or --per-contract")
    by = split_names(args.by or (["fault"] if args.containment else ["rule"] if args.governance else ["config"]))
    replays = bool(args.replays)
    with Store.open(args.store, read_only=True) as store:
        run_id = resolve_run(store, args.run, args.store)
        left_out = _left_out(store.replay_counts(run_id=run_id), replays)
        if args.containment or args.governance:   # the store stays open while the table prints: read-only
            from mattrace.report.metrics import containment_table, governance_table

            if args.containment:
                faulted = store.containment(by=by, run_id=run_id, replays=replays)
                return _print_grouped(args, by, run_id, "containment", faulted, containment_table,
                                      "fault containment", "no faulted runs", left_out)
            return _print_grouped(args, by, run_id, "governance", store.governance(by=by, run_id=run_id,
                                                                                   replays=replays),
                                  governance_table, "governance decisions", "no governance decisions", left_out)
        rows = store.metrics(by=by, run_id=run_id, k=args.k, replays=replays)
        compliance = store.compliance(by=by, per="contract", run_id=run_id, replays=replays) \
            if args.per_contract else None
    if args.json:
        data: dict[str, Any] = {"by": by, "run": run_id, "k": args.k, "metrics": [r.to_json_dict() for r in rows],
                                "left_out": left_out}
        if compliance is not None:
            data["compliance"] = [c.to_json_dict() for c in compliance]
        print_json(data)
        return EXIT_OK
    from mattrace.report.metrics import compliance_table, metrics_table

    console = table_console()
    if not rows:
        console.print("no traces in the store" + (f" for run {run_id}" if run_id else ""), soft_wrap=True)
    else:
        console.print(metrics_table(rows, title="mattrace metrics" + (f" (run {run_id})" if run_id else "")))
        if compliance is not None:
            console.print(compliance_table(compliance))
    _print_left_out(console, left_out)
    return EXIT_OK


def _left_out(counts: dict[str, int], replays: bool) -> dict[str, int]:
    """What the tables did not count: replays (unless asked for) and runs broken off on a cassette mismatch."""
    return {"replays": 0 if replays else counts["replays"], "broken": counts["broken"]}


def _print_left_out(console: Any, left_out: dict[str, int]) -> None:
    from mattrace.report.metrics import left_out_lines

    for line in left_out_lines(left_out):
        console.print(line, soft_wrap=True, highlight=False, markup=False)


def _print_grouped(args: argparse.Namespace, by: list[str], run_id: str | None, key: str, rows: Sequence[Any],
                   table: Callable[..., Any], title: str, empty: str, left_out: dict[str, int]) -> int:
    """A grouped store table (containment, governance): JSON, a rich table, or why there is none."""
    if args.json:
        print_json({"by": by, "run": run_id, key: [r.to_json_dict() for r in rows], "left_out": left_out})
        return EXIT_OK
    console = table_console()
    if not rows:
        console.print(f"{empty} in the store" + (f" for run {run_id}" if run_id else ""), soft_wrap=True)
    else:
        console.print(table(rows, title=title + (f" (run {run_id})" if run_id else "")))
    _print_left_out(console, left_out)
    return EXIT_OK
