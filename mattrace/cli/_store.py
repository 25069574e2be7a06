"""``mattrace ingest | query | metrics | runs | report``: the DuckDB store (``metrics`` in
:mod:`mattrace.cli._metrics`).

Every handler imports ``mattrace.store`` (and with it duckdb) only when it opens the store,
so ``--help`` and the trace commands never load duckdb.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

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
from mattrace.cli._metrics import add_metrics

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


def _add_runs(sub: Commands, common: Parents) -> None:
    runs = sub.add_parser("runs", parents=[common.store, common.json], help="list the runs in the store, newest first",
                          description="List the runs (pytest sessions, ingests) in the store, "
                          "newest first, with their trace counts and success rates.")
    runs.add_argument("--limit", type=positive, default=20, metavar="N", help="how many (default 20)")
    runs.add_argument("--replays", action="store_true",
                      help="count replayed traces too (left out by default, as in metrics)")
    runs.set_defaults(func=_runs)


def _runs(args: argparse.Namespace) -> int:
    from mattrace.store import Store

    with Store.open(args.store, read_only=True) as store:
        runs = store.runs(limit=args.limit, replays=args.replays)
    if args.json:
        print_json([r.to_json_dict() for r in runs])
        return EXIT_OK
    from mattrace.report.metrics import runs_table

    console = table_console()
    if not runs:
        console.print("no runs in the store", soft_wrap=True)
    else:
        console.print(runs_table(runs))
    left_out = sum(r.left_out for r in runs)
    if left_out:
        again = "" if args.replays else "; mattrace runs --replays counts the replays"
        console.print(f"{left_out} trace{'s' if left_out != 1 else ''} left out (replays answered from cassettes, "
                      f"runs that broke off on a cassette mismatch){again}", soft_wrap=True)
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
    "metrics": add_metrics,
    "runs": _add_runs,
    "report": _add_report,
}
