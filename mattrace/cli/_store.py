"""``mattrace ingest | query | metrics | runs | report``: the DuckDB store.

Every handler imports ``mattrace.store`` (and with it duckdb) only when it opens the store,
so ``--help`` and the trace commands never load duckdb.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mattrace.cli._common import (
    DEFAULT_REPORT,
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    Parents,
    load_contracts,
    positive,
    print_json,
    resolve_run,
    split_names,
    table_console,
)

if TYPE_CHECKING:
    from mattrace.cli._common import Adder, Commands


def _add_ingest(sub: Commands, common: Parents) -> None:
    ing = sub.add_parser(
        "ingest", parents=[common.store, common.contracts, common.json],
        help="index trace and results files in the DuckDB store",
        description="Index trace files and results files (or every *.jsonl under a directory) in "
        "the store, in bulk. Unchanged files are not read again; a file that grew replaces its rows; "
        "a file that cannot be read is skipped and reported as path:line: reason. With --contracts, "
        "every newly ingested trace is checked and its verdicts stored (and written to a results "
        "file next to the store).",
        epilog="exit status: 0 when every file was ingested (or already was), 1 when a file was "
        "skipped (the others are ingested), 2 on bad usage, a bad contract file or a store that "
        "cannot be opened.")
    ing.add_argument("paths", nargs="+", metavar="PATH", help="trace or results files, or directories")
    ing.set_defaults(func=_ingest)


def _ingest(args: argparse.Namespace) -> int:
    from mattrace.store import Store, new_run_id
    from mattrace.store.results import check_ingested, new_run

    contracts = load_contracts(args.contracts) if args.contracts else None   # bad contracts: exit 2 first
    run = new_run(new_run_id(), source="ingest", argv=["mattrace", *args.argv], worker="cli")
    with Store.open(args.store) as store:
        report = store.ingest(args.paths, run=run)
        if contracts is not None and report.added_files:
            check_ingested(store, report, contracts, run)
    if args.json:
        print_json(report.to_json_dict())
    else:
        sys.stdout.write(str(report) + "\n")
    return EXIT_FAILED if report.errors else EXIT_OK


def _add_query(sub: Commands, common: Parents) -> None:
    query = sub.add_parser("query", parents=[common.store], help="run SQL on the store",
                           description="Run one SQL statement on the store (read-only) and print "
                           "the result. Tables: runs, traces, steps, checks, verdicts, violations, "
                           "faults, decisions, files; views: trace_metrics, task_metrics, metrics, "
                           "compliance_by_contract, trace_containment, containment, governance (docs/store.md).")
    query.add_argument("sql", metavar="SQL", help="the statement")
    # its own --json: a parent's option cannot join this command's either-or group
    fmt = query.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a JSON list of rows (objects)")
    fmt.add_argument("--csv", action="store_true", help="print CSV with a header line")
    query.set_defaults(func=_query)


def _query(args: argparse.Namespace) -> int:
    from mattrace.store import Store

    with Store.open(args.store, read_only=True) as store:
        columns, rows = store.query(args.sql)
    if args.json:
        print_json([dict(zip(columns, row, strict=True)) for row in rows], default=str)
    elif args.csv:
        import csv

        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(columns)
        out.writerows(["" if v is None else v for v in row] for row in rows)
    else:
        from rich import box
        from rich.table import Table

        table = Table(box=box.SIMPLE_HEAD, show_edge=False)
        for name in columns:
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*("NULL" if v is None else str(v) for v in row))
        console = table_console()
        console.print(table)
        console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", soft_wrap=True)
    return EXIT_OK


def _add_metrics(sub: Commands, common: Parents) -> None:
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


def _add_runs(sub: Commands, common: Parents) -> None:
    runs = sub.add_parser("runs", parents=[common.store, common.json], help="list the runs in the store, newest first",
                          description="List the runs (pytest sessions, ingests) in the store, "
                          "newest first, with their trace counts and success rates.")
    runs.add_argument("--limit", type=positive, default=20, metavar="N", help="how many (default 20)")
    runs.set_defaults(func=_runs)


def _runs(args: argparse.Namespace) -> int:
    from mattrace.store import Store

    with Store.open(args.store, read_only=True) as store:
        runs = store.runs(limit=args.limit)
    if args.json:
        print_json([r.to_json_dict() for r in runs])
        return EXIT_OK
    from mattrace.report.metrics import runs_table

    console = table_console()
    if not runs:
        console.print("no runs in the store", soft_wrap=True)
    else:
        console.print(runs_table(runs))
    return EXIT_OK


def _add_report(sub: Commands, common: Parents) -> None:
    rpt = sub.add_parser(
        "report", parents=[common.store, common.run, common.by],
        help="write a self-contained HTML report of the stored runs",
        description="Write one HTML file (no network: inline CSS, JS and SVG) with the metrics per "
        "configuration side by side, charts, the failing traces by first violation, and a view of "
        "every trace. Open it from disk or keep it as a CI artefact. --by groups the comparison.",
        epilog="exit status: 0 when the report was written, 2 on bad usage or an unreadable store.")
    # beside the traces and the store, where `mattrace demo` writes its report too: one folder to
    # ignore in git and keep as a CI artefact, and no stray file in the project's root
    rpt.add_argument("--out", default=DEFAULT_REPORT, metavar="FILE",
                     help=f"where to write it (default {DEFAULT_REPORT})")
    rpt.add_argument("--title", help="the report's title")
    rpt.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from mattrace.report.html import write_report
    from mattrace.store import Store

    by = split_names(args.by or ["config"])
    with Store.open(args.store, read_only=True) as store:
        run_id = resolve_run(store, args.run, args.store)
        try:
            path = write_report(store, args.out, run_id=run_id, by=by, title=args.title)
        except OSError as exc:
            raise CliError(f"{args.out}: cannot write the report: {exc.strerror or exc}") from exc
    sys.stdout.write(f"report: {path}\n")
    return EXIT_OK


COMMANDS: dict[str, Adder] = {  # the group's commands, each with the function that adds its parser
    "ingest": _add_ingest,
    "query": _add_query,
    "metrics": _add_metrics,
    "runs": _add_runs,
    "report": _add_report,
}
