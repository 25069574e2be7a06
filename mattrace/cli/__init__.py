"""The ``mattrace`` command: show, verify, check, import, export, report, compare, schema, demo, and the store's
ingest, query, metrics and runs.

Two rules shape this module:

* **Fast start.** ``mattrace --help``, ``show``, ``verify`` and ``schema`` are run by
  people and CI scripts many times a day, so nothing here imports litellm, duckdb,
  OpenTelemetry or hypothesis; subcommand bodies import what they need when they run
  (the store commands import duckdb only once they open the store).
* **Errors are one line, never a traceback.** A bad argument, a missing file or a corrupt
  trace prints ``mattrace: error: <path>:<line>: <reason>`` on stderr and exits 2. A
  traceback here would mean a bug in mattrace, not in the user's input.

Exit codes: 0 success; 1 a verdict went against the files (``verify`` found a file that
is missing, unreadable, unsealed or tampered with; ``check`` found a contract violated;
``ingest`` skipped a file it could not read, after ingesting the others: a judgement, not
a usage error);
2 usage error or a file that cannot be shown; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, NoReturn

from mattrace.errors import MatTraceError

if TYPE_CHECKING:
    from rich.console import Console

    from mattrace.tracefile import ReadResult

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_STORE = ".mattrace/mattrace.duckdb"  # = mattrace.store.DEFAULT_STORE (not imported: fast start)


class _CliError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage dump) raised to :func:`main`."""

    def error(self, message: str) -> NoReturn:
        raise _CliError(f"{message} (see `{self.prog} --help`)")


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type`` for whole numbers >= ``low``, with a readable error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    return parse


_non_negative, _positive = _int_at_least(0), _int_at_least(1)


def _parser() -> _Parser:
    from mattrace import __version__

    parser = _Parser(prog="mattrace", description="Message-Action Traces for multi-agent "
                     "LLM systems: show, verify, check and import recorded runs; ingest them into "
                     "a DuckDB store and measure them with metrics and SQL.",
                     epilog="exit status: 0 ok; 1 verify found a bad file, check a violated "
                     "contract or ingest a file it skipped; 2 bad usage, "
                     "a file that cannot be read or is corrupt, or a store that cannot be opened.")
    parser.add_argument("--version", action="version", version=f"mattrace {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    show = sub.add_parser("show", help="render a trace file in the terminal",
                          description="Render a trace: header, one row per step, and with "
                          "--step a window around that step plus all of its fields.")
    show.add_argument("file", metavar="FILE", help="a trace file (.jsonl)")
    show.add_argument("--step", type=_non_negative, metavar="N",
                      help="show steps N-K..N+K and the details of step N")
    show.add_argument("--around", type=_non_negative, default=3, metavar="K",
                      help="steps of context either side of --step (default 3)")
    show.add_argument("--width", type=_positive, metavar="COLS",
                      help="lay out to COLS columns (default: the terminal's width)")
    show.add_argument("--json", action="store_true",
                      help="print the trace (or with --step, that step) as JSON")
    show.set_defaults(func=_cmd_show)

    verify = sub.add_parser(
        "verify", help="check that trace files are complete, sealed and unaltered",
        description="Check each file's hash chain and seal. A file that is missing, "
        "unreadable, unsealed or altered is reported FAIL with path:line: reason.",
        epilog="exit status: 0 when every file is OK, 1 when any FAILs, 2 on bad usage. "
        "Set MATTRACE_HMAC_KEY to require HMAC-signed files.")
    verify.add_argument("files", nargs="+", metavar="FILE", help="trace files")
    verify.add_argument("--json", action="store_true", help="print a JSON list of reports")
    verify.set_defaults(func=_cmd_verify)

    schema = sub.add_parser("schema", help="print the JSON Schema of a trace",
                            description="Print the JSON Schema of a Trace (as `show --json` "
                            "prints it).")
    schema.set_defaults(func=_cmd_schema)

    demo = sub.add_parser("demo", help="record and check a few runs of the example system",
                          description="Run the bundled multi-agent demo offline and show "
                          "what mattrace finds in its traces.")
    demo.add_argument("--runs", type=_positive, metavar="N", help="how many runs to record")
    demo.add_argument("--dir", metavar="DIR", help="where to write the demo's trace files")
    demo.set_defaults(func=_cmd_demo)

    chk = sub.add_parser(
        "check", help="check trace files against contracts",
        description="Check each trace against the contracts and show every failing contract "
        "with its first violating step in context. Contracts come from a TOML contract file "
        "or a Python object `module:NAME` (a contract or a list of them).",
        epilog="exit status: 0 when every contract passes on every trace, 1 when any "
        "contract fails, 2 on bad usage, a bad contract file or an unreadable trace.")
    chk.add_argument("files", nargs="+", metavar="TRACE", help="trace files (.jsonl)")
    chk.add_argument("--contracts", "-c", action="append", required=True, metavar="FILE|module:NAME",
                     help="a contract file (.toml) or module:NAME; repeat to combine")
    chk.add_argument("--around", type=_non_negative, default=2, metavar="K",
                     help="steps of context either side of a first violating step (default 2)")
    chk.add_argument("--failures-only", action="store_true", help="do not list the contracts that passed")
    chk.add_argument("--width", type=_positive, metavar="COLS", help="lay out to COLS columns")
    chk.add_argument("--json", action="store_true", help="print a JSON list of reports, one per trace")
    chk.set_defaults(func=_cmd_check)

    dif = sub.add_parser(
        "diff", help="compare two trace files: identical, or where they first differ",
        description="Compare two traces as their fingerprints do (times, trace ids and volatile "
        "attrs are ignored) and show the first divergence: the step and field, both values, and "
        "the steps around it in each trace.",
        epilog="exit status: 0 when the traces are identical, 1 when they differ, 2 on bad usage or "
        "a file that cannot be read or is corrupt.")
    dif.add_argument("old", metavar="A", help="the reference trace file (e.g. the recording)")
    dif.add_argument("new", metavar="B", help="the trace file compared with it (e.g. the replay)")
    dif.add_argument("--around", type=_non_negative, default=2, metavar="K",
                     help="steps of context before and after the first divergence (default 2)")
    dif.add_argument("--all", action="store_true", help="also list every differing step")
    dif.add_argument("--json", action="store_true",
                     help='print {"identical", "first", "differences"} as JSON')
    dif.set_defaults(func=_cmd_diff)

    rep = sub.add_parser(
        "replay", help="re-run a recorded trace from its cassette and compare",
        description="Import the trace's recorded entry point and run it again inside a record() block "
        "whose cassette answers every boundary call (LLM, tools, retrieval, memory, clock) from the "
        "recording: no model, no network, no API key. Then compare the new trace with the old one.",
        epilog="exit status: 0 identical, 1 the replay diverged (or a call was not in the cassette), "
        "2 bad usage, a corrupt trace or cassette, or a trace without an entry point.")
    rep.add_argument("file", metavar="TRACE", help="a trace file whose header records an entry point")
    rep.add_argument("--cassette", metavar="FILE", help="the cassette (default: the one next to the trace)")
    rep.add_argument("--out", metavar="DIR", help="where the new trace goes (default: replays/ beside the trace)")
    rep.add_argument("--record", choices=("none", "new"), default="none",
                     help="none (default): answer only from the cassette; new: record calls it lacks")
    rep.add_argument("--around", type=_non_negative, default=2, metavar="K",
                     help="steps of context around a divergence (default 2)")
    rep.add_argument("--json", action="store_true", help="print the result as JSON")
    rep.set_defaults(func=_cmd_replay)

    imp = sub.add_parser(
        "import", help="turn agent logs (OpenAI chat format, OTLP JSON spans) into trace files",
        description="Read chat logs in OpenAI message format (a JSON list of messages, an "
        "object with a 'messages' list, or JSONL with one run per line), or OpenTelemetry spans "
        "in OTLP JSON (the Collector's file exporter: one export request per line; one run per "
        "OTel trace), and write each run as a sealed trace file. No file is written unless every "
        "input reads.",
        epilog="exit status: 0 when every run was written, 2 on bad usage or a file that is "
        "not in the format (path:line: reason).")
    imp.add_argument("format", choices=["openai", "otlp"], metavar="FORMAT",
                     help="the log format: openai (chat-completion messages) or otlp (OTLP JSON spans)")
    imp.add_argument("files", nargs="+", metavar="FILE", help="log files (.json or .jsonl)")
    imp.add_argument("--out", default=".mattrace/traces", metavar="DIR",
                     help="where to write the trace files (default .mattrace/traces)")
    imp.add_argument("--untrusted-tools", action="append", default=[], metavar="NAMES",
                     help="comma-separated tools whose results are untrusted ('*': all tools)")
    imp.add_argument("--side-effect-tools", action="append", default=[], metavar="NAMES",
                     help="comma-separated tools that change the outside world ('*': all tools)")
    imp.add_argument("--trusted-tools", action="append", default=[], metavar="NAMES",
                     help="otlp: comma-separated tools whose output is trusted (by default none is)")
    imp.set_defaults(func=_cmd_import)

    exp = sub.add_parser(
        "export", help="send trace files as OpenTelemetry spans (OTLP/HTTP), or write the store as Parquet",
        usage="%(prog)s TRACE... --otlp ENDPOINT [options]\n       %(prog)s --parquet DIR [--store FILE] [--run ID]",
        description="With --otlp, send each trace as one OpenTelemetry trace: a root span for the run (outcome, "
        "verdicts, first violation) and a span per step after the GenAI conventions, each also "
        "carrying the step as JSON, so `mattrace import otlp` or a MatSpanProcessor restores it. "
        "With --parquet, write the store's traces, steps, verdicts, violations, faults and decisions as "
        "Parquet files partitioned by run (DIR/TABLE/run_id=RUN/), for DuckDB, Spark or Trino.",
        epilog="exit status: 0 when every trace was sent (or the files written), 1 when the endpoint refused "
        "them, 2 on bad usage, an unreadable trace or store, or a directory that cannot be written. "
        "--otlp needs the OTLP exporter: pip install 'mattrace[otlp]'.")
    exp.add_argument("files", nargs="*", metavar="TRACE", help="trace files (.jsonl), with --otlp")
    exp.add_argument("--otlp", metavar="ENDPOINT",
                     help="the OTLP/HTTP endpoint, e.g. http://localhost:4318 (/v1/traces is added)")
    exp.add_argument("--parquet", metavar="DIR",
                     help="instead: write the store as Parquet under DIR, one run_id=RUN directory per run")
    _store_option(exp)
    exp.add_argument("--run", metavar="ID",
                     help="with --parquet: only this run ('latest': the newest one; default: every run)")
    exp.add_argument("--contracts", "-c", action="append", default=[], metavar="FILE|module:NAME",
                     help="check these contracts and send the verdicts with each trace")
    exp.add_argument("--service", default="mattrace", help="the service.name of the spans (default mattrace)")
    exp.set_defaults(func=_cmd_export)
    _store_parsers(sub)
    return parser


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=DEFAULT_STORE, metavar="FILE",
                        help=f"the DuckDB store (default {DEFAULT_STORE})")


def _store_parsers(sub: Any) -> None:
    ing = sub.add_parser(
        "ingest", help="index trace and results files in the DuckDB store",
        description="Index trace files and results files (or every *.jsonl under a directory) in "
        "the store, in bulk. Unchanged files are not read again; a file that grew replaces its rows; "
        "a file that cannot be read is skipped and reported as path:line: reason. With --contracts, "
        "every newly ingested trace is checked and its verdicts stored (and written to a results "
        "file next to the store).",
        epilog="exit status: 0 when every file was ingested (or already was), 1 when a file was "
        "skipped (the others are ingested), 2 on bad usage, a bad contract file or a store that "
        "cannot be opened.")
    ing.add_argument("paths", nargs="+", metavar="PATH", help="trace or results files, or directories")
    _store_option(ing)
    ing.add_argument("--contracts", "-c", action="append", metavar="FILE|module:NAME",
                     help="check new traces against these contracts; repeat to combine")
    ing.add_argument("--json", action="store_true", help="print the ingest report as JSON")
    ing.set_defaults(func=_cmd_ingest)

    query = sub.add_parser("query", help="run SQL on the store",
                           description="Run one SQL statement on the store (read-only) and print "
                           "the result. Tables: runs, traces, steps, checks, verdicts, violations, "
                           "faults, decisions, files; views: trace_metrics, task_metrics, metrics, "
                           "compliance_by_contract, trace_containment, containment, governance (docs/store.md).")
    query.add_argument("sql", metavar="SQL", help="the statement")
    _store_option(query)
    fmt = query.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a JSON list of rows (objects)")
    fmt.add_argument("--csv", action="store_true", help="print CSV with a header line")
    query.set_defaults(func=_cmd_query)

    met = sub.add_parser(
        "metrics", help="task success, termination, compliance, factuality, pass^k, flip rate",
        description="Print the metrics of the stored traces per group, each rate with its "
        "Wilson 95%% interval. Group by test, model, seed, orchestration, run, trial, config "
        "(all of it but the seed), config.KEY or label.KEY. With --containment, the containment of "
        "faulted runs instead; with --governance, the governor's allow / rewrite / block decisions.")
    _store_option(met)
    met.add_argument("--by", action="append", metavar="KEYS",
                     help="comma-separated group keys (default: config)")
    met.add_argument("--run", metavar="ID", help="only this run ('latest': the newest one)")
    met.add_argument("--k", type=_positive, metavar="K",
                     help="the k of pass^k (default: each group's smallest trial count)")
    met.add_argument("--per-contract", action="store_true", help="also show compliance per contract")
    met.add_argument("--containment", action="store_true",
                     help="instead: containment of faulted runs per fault class (default --by fault; also "
                     "fault_class, target, call_target and the keys above)")
    met.add_argument("--governance", action="store_true",
                     help="instead: governance decisions, the allow / rewrite / block shares (default --by rule; "
                     "also agent, tool, call_kind, decision and the keys above)")
    met.add_argument("--json", action="store_true", help="print the metrics as JSON")
    met.set_defaults(func=_cmd_metrics)

    runs = sub.add_parser("runs", help="list the runs in the store, newest first",
                          description="List the runs (pytest sessions, ingests) in the store, "
                          "newest first, with their trace counts and success rates.")
    _store_option(runs)
    runs.add_argument("--limit", type=_positive, default=20, metavar="N", help="how many (default 20)")
    runs.add_argument("--json", action="store_true", help="print the runs as JSON")
    runs.set_defaults(func=_cmd_runs)

    rpt = sub.add_parser(
        "report", help="write a self-contained HTML report of the stored runs",
        description="Write one HTML file (no network: inline CSS, JS and SVG) with the metrics per "
        "configuration side by side, charts, the failing traces by first violation, and a view of "
        "every trace. Open it from disk or keep it as a CI artefact.",
        epilog="exit status: 0 when the report was written, 2 on bad usage or an unreadable store.")
    _store_option(rpt)
    rpt.add_argument("--out", default="mattrace-report.html", metavar="FILE",
                     help="where to write it (default mattrace-report.html)")
    rpt.add_argument("--run", metavar="ID", help="only this run ('latest': the newest one; default: every run)")
    rpt.add_argument("--by", action="append", metavar="KEYS",
                     help="comma-separated group keys for the comparison (default: config; e.g. model,config.x)")
    rpt.add_argument("--title", help="the report's title")
    rpt.set_defaults(func=_cmd_report)

    cmp = sub.add_parser(
        "compare", help="run a suite's orchestration designs over seeds and compare them by their traces",
        description="Run every (design, task, seed) of a suite (a module with DESIGNS, TASKS, run, oracle and "
        "CONTRACTS, e.g. examples/research_team), check the contracts on every trace, store them as one run, "
        "and print the metrics and pass^k per design with their intervals.",
        epilog="exit status: 0 when the comparison ran, 2 on bad usage or a suite that cannot be loaded.")
    cmp.add_argument("suite", metavar="SUITE", help="the suite: a path such as examples/research_team, or a module")
    cmp.add_argument("--designs", metavar="NAMES", help="comma-separated designs (default: all of the suite's)")
    cmp.add_argument("--tasks", metavar="NAMES", help="comma-separated tasks (default: all of the suite's)")
    cmp.add_argument("--seeds", type=_positive, default=10, metavar="N", help="seeds 0..N-1 per design (default 10)")
    cmp.add_argument("--faults", metavar="FILE", help="a TOML fault plan injected into every run")
    cmp.add_argument("--governed", action="store_true", help="run every design under the suite's governor()")
    cmp.add_argument("--search", action="store_true", help="also a small counterexample search per design")
    _store_option(cmp)
    cmp.add_argument("--out", metavar="FILE", help="also write the HTML report of the comparison")
    cmp.add_argument("--json", action="store_true", help="print the metrics as JSON")
    cmp.set_defaults(func=_cmd_compare)


LOG_WIDTH = 160


def _console(width: int | None = None) -> Console:
    """A stdout console; rich leaves colour out when stdout is not a terminal."""
    from rich.console import Console

    return Console(width=width, highlight=False)


def _table_console() -> Console:
    """A console for wide tables: a terminal's width, or a wide page when writing to a file or CI log.

    rich assumes 80 columns when stdout is not a terminal, which folds a metrics table
    into three lines a row; a log does not wrap, so draw it wide there (``COLUMNS`` wins).
    """
    console = _console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = LOG_WIDTH
    return console


# -- subcommands -------------------------------------------------------------------------------

def _cmd_show(args: argparse.Namespace) -> int:
    [result] = _read_traces([args.file])
    trace = result.trace
    if args.step is not None and args.step >= len(trace.steps):
        valid = f"steps 0..{len(trace.steps) - 1}" if trace.steps else "no steps"
        raise _CliError(f"{args.file}: step {args.step} is out of range: the trace has {valid}")
    if args.json:
        data: Any = (trace.model_dump(mode="json") if args.step is None
                     else trace.steps[args.step].model_dump(mode="json"))
        _print_json(data)
        return EXIT_OK
    from mattrace.report import render_trace

    _console(args.width).print(render_trace(
        trace, step=args.step, around=args.around, width=args.width, path=args.file,
        sealed=result.sealed, torn_line=result.torn_line))
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from mattrace.tracefile import VerifyReport, verify

    reports: list[VerifyReport] = []
    for path in args.files:
        try:
            reports.append(verify(path))
        except MatTraceError as exc:  # verify() reports file problems; be safe anyway
            reports.append(VerifyReport(path, ok=False, reason=str(exc)))
    failed = sum(not r.ok for r in reports)
    if args.json:
        _print_json([asdict(r) for r in reports])
        return EXIT_FAILED if failed else EXIT_OK
    from rich.text import Text

    console = _console()
    for r in reports:
        if r.ok:
            console.print(Text.assemble(("OK  ", "bold green"),
                                        f"  {r.path} ({r.steps} steps, {r.algorithm})"),
                          soft_wrap=True)
        else:
            where = f"{r.path}:{r.line}" if r.line is not None else r.path
            console.print(Text.assemble(("FAIL", "bold red"), f"  {where}: {r.reason}"),
                          soft_wrap=True)
    if len(reports) > 1:
        console.print(f"{len(reports) - failed} ok, {failed} failed", soft_wrap=True)
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from mattrace.trace import trace_json_schema

    _print_json(trace_json_schema())
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    import importlib

    try:  # imported only when asked for: the demo pulls in the example system
        demo = importlib.import_module("mattrace.apps.demo")
    except ModuleNotFoundError as exc:
        if exc.name != "mattrace.apps.demo":
            raise
        raise _CliError("the demo is not part of this installation (no mattrace.apps.demo)") from exc
    options: dict[str, Any] = {"console": _console()}
    if args.runs is not None:
        options["runs"] = args.runs
    if args.dir is not None:
        options["dir"] = args.dir
    code = demo.run_demo(**options)
    return code if isinstance(code, int) else EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from mattrace.contracts import check

    contracts = _contracts(args.contracts)   # a bad contract file: exit 2 before any trace is read
    loaded = [(path, result.trace) for path, result in zip(args.files, _read_traces(args.files), strict=True)]
    reports = [(path, trace, check(trace, contracts)) for path, trace in loaded]
    failed = sum(not report.ok for _, _, report in reports)
    if args.json:
        _print_json([{"path": path} | report.to_json_dict() for path, _, report in reports])
        return EXIT_FAILED if failed else EXIT_OK
    from mattrace.report.verdicts import print_report

    console = _console(args.width)
    for path, trace, report in reports:
        print_report(console, report, trace, path=path, around=args.around, passed=not args.failures_only)
    if len(reports) > 1:
        console.print(f"{len(reports) - failed} of {len(reports)} traces passed every contract", soft_wrap=True)
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_replay(args: argparse.Namespace) -> int:
    from mattrace.errors import ReplayMismatch
    from mattrace.replay import replay_trace

    try:
        result = replay_trace(args.file, out_dir=args.out, cassette=args.cassette, mode=args.record)
    except ReplayMismatch as exc:
        raise _CliError(str(exc)) from None
    ok = result.identical and not result.mismatches
    if args.json:
        _print_json(result.to_json_dict())
        return EXIT_OK if ok else EXIT_FAILED
    console = _console()
    if result.identical:
        console.print(f"identical: the replay reproduced {len(result.replayed.steps)} steps "
                      f"(fingerprint {result.replayed.fingerprint()[:16]})", soft_wrap=True)
    else:
        from mattrace.report.diff import print_diff

        print_diff(console, result.original, result.replayed, result.divergence, old_path=args.file,
                   new_path=result.path, around=args.around)
    for problem in result.mismatches[:3]:
        console.print(f"not in the cassette: {problem}", soft_wrap=True, highlight=False)
    if result.unused:
        console.print(f"{len(result.unused)} recorded call(s) were not made again, first: "
                      f"{result.unused[0]['kind']} {result.unused[0]['target']}", soft_wrap=True)
    if result.error:
        console.print(f"the replayed run raised {result.error}", soft_wrap=True, highlight=False)
    console.print(f"new trace: {result.path}", soft_wrap=True, highlight=False)
    return EXIT_OK if ok else EXIT_FAILED


def _cmd_diff(args: argparse.Namespace) -> int:
    from mattrace.replay._diff import diff_summary, first_divergence

    old, new = (result.trace for result in _read_traces([args.old, args.new]))
    first = first_divergence(old, new)
    # the overview walks every step, so it is computed only when asked for (--all, --json)
    differences = diff_summary(old, new, limit=None if args.all else 20) if args.all or args.json else []
    if args.json:
        _print_json({"identical": first is None, "first": first.to_json_dict() if first else None,
                     "differences": [d.to_json_dict() for d in differences]})
        return EXIT_OK if first is None else EXIT_FAILED
    from mattrace.report.diff import print_diff

    print_diff(_console(), old, new, first, old_path=args.old, new_path=args.new, around=args.around,
               differences=differences if args.all else None)
    return EXIT_OK if first is None else EXIT_FAILED


def _cmd_import(args: argparse.Namespace) -> int:
    from mattrace.io.openai_chat import import_openai, write_trace

    def names(values: list[str]) -> list[str]:
        return [n.strip() for v in values for n in v.split(",") if n.strip()]

    untrusted, side_effects = names(args.untrusted_tools), names(args.side_effect_tools)
    # every file is read before anything is written: a bad input leaves no partial import
    if args.format == "otlp":
        from mattrace.io.otlp_json import import_otlp

        if untrusted:
            raise _CliError("--untrusted-tools is for openai logs; from spans every tool output is untrusted "
                            "unless --trusted-tools names it")
        runs = [(path, trace) for path in args.files
                for trace in import_otlp(path, side_effects=side_effects, trusted_tools=names(args.trusted_tools))]
    else:
        if args.trusted_tools:
            raise _CliError("--trusted-tools is for otlp spans; for openai logs name the untrusted ones "
                            "with --untrusted-tools")
        runs = [(path, trace) for path in args.files
                for trace in import_openai(path, untrusted_tools=untrusted, side_effect_tools=side_effects)]
    for path, trace in runs:
        try:
            written = write_trace(trace, args.out)
        except OSError as exc:
            raise _CliError(f"{args.out}: cannot write a trace file: {exc.strerror or exc}") from exc
        line = trace.config.get("import", {}).get("line")
        origin = f"{path}:{line}" if line is not None else path
        sys.stdout.write(f"{written}  ({len(trace.steps)} steps from {origin})\n")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    if args.otlp is not None and args.parquet is not None:
        raise _CliError("--otlp and --parquet are two different exports; ask for one")
    if args.otlp is None and args.parquet is None:
        raise _CliError("export needs --otlp ENDPOINT (send trace files as spans) or --parquet DIR "
                        "(write the store as Parquet)")
    if args.parquet is not None:
        if args.files:
            raise _CliError(f"--parquet exports the store ({args.store}), not trace files such as {args.files[0]}; "
                            "ingest them first (`mattrace ingest`)")
        if args.contracts:
            raise _CliError("--contracts is for --otlp; --parquet exports the verdicts already in the store")
        from mattrace.store import Store

        with Store.open(args.store, read_only=True) as store:
            run_id = _run_id(store, args.run, args.store)
            written = store.export_parquet(args.parquet, run_id=run_id)
        width = max(len(table) for table in written)
        for table, rows in written.items():
            sys.stdout.write(f"{table:<{width}}  {rows:>9,} row{'' if rows == 1 else 's'}\n")
        which = f"run {run_id}" if run_id is not None else "every run"
        sys.stdout.write(f"wrote {which} as Parquet to {args.parquet}, one run_id=RUN directory per table and run\n")
        return EXIT_OK
    if args.run is not None:
        raise _CliError("--run is for --parquet; with --otlp, name the trace files")
    if not args.files:
        raise _CliError("--otlp needs the trace files to send (mattrace export TRACE... --otlp ENDPOINT)")
    from urllib.parse import urlsplit

    from mattrace.contracts import check
    from mattrace.io.otlp_export import export_traces

    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise _CliError("mattrace export needs the OTLP exporter: pip install 'mattrace[otlp]'") from None
    parts = urlsplit(args.otlp)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _CliError(f"--otlp {args.otlp!r}: expected an http(s) URL such as http://localhost:4318")
    endpoint = args.otlp if parts.path.strip("/") else args.otlp.rstrip("/") + "/v1/traces"
    contracts = _contracts(args.contracts) if args.contracts else None
    traces = [result.trace for result in _read_traces(args.files)]
    reports = [check(t, contracts) for t in traces] if contracts is not None else None
    exporter = _counting(OTLPSpanExporter(endpoint=endpoint, timeout=10))
    sent = export_traces(traces, exporter, reports=reports, service=args.service)
    exporter.shutdown()
    if exporter.failed:
        _stderr(f"mattrace: error: {endpoint} did not accept {exporter.failed} of {exporter.batches} span "
                "batch(es); see the log above")
        return EXIT_FAILED
    sys.stdout.write(f"sent {sent} trace(s), {exporter.spans} span(s) to {endpoint}\n")
    return EXIT_OK


def _counting(inner: Any) -> Any:
    """``inner`` wrapped to count what it sent and what the endpoint refused."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Counting(SpanExporter):
        def __init__(self) -> None:
            self.spans = self.batches = self.failed = 0

        def export(self, spans: Any) -> SpanExportResult:
            result: SpanExportResult = inner.export(spans)
            self.batches += 1
            self.spans += len(spans)
            self.failed += result is not SpanExportResult.SUCCESS
            return result

        def shutdown(self) -> None:
            inner.shutdown()

    return Counting()


def _cmd_ingest(args: argparse.Namespace) -> int:
    from mattrace.store import Store, new_run_id
    from mattrace.store.results import check_ingested, new_run

    contracts = _contracts(args.contracts) if args.contracts else None   # bad contracts: exit 2 first
    run = new_run(new_run_id(), source="ingest", argv=["mattrace", *args.argv], worker="cli")
    with Store.open(args.store) as store:
        report = store.ingest(args.paths, run=run)
        if contracts is not None and report.added_files:
            check_ingested(store, report, contracts, run)
    if args.json:
        _print_json(report.to_json_dict())
    else:
        sys.stdout.write(str(report) + "\n")
    return EXIT_FAILED if report.errors else EXIT_OK


def _contracts(specs: list[str]) -> list[Any]:
    from mattrace.contracts import resolve_contracts

    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())   # as `python -m` does: module:NAME resolves from here
    return [c for spec in specs for c in resolve_contracts(spec)]


def _cmd_query(args: argparse.Namespace) -> int:
    from mattrace.store import Store

    with Store.open(args.store, read_only=True) as store:
        columns, rows = store.query(args.sql)
    if args.json:
        _print_json([dict(zip(columns, row, strict=True)) for row in rows], default=str)
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
        console = _table_console()
        console.print(table)
        console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", soft_wrap=True)
    return EXIT_OK


def _cmd_metrics(args: argparse.Namespace) -> int:
    from mattrace.store import Store

    if args.containment and args.governance:
        raise _CliError("--containment and --governance are two different tables; ask for one")
    if args.containment and (args.k is not None or args.per_contract):
        raise _CliError("--containment does not combine with --k or --per-contract")
    if args.governance and (args.k is not None or args.per_contract):
        raise _CliError("--governance does not combine with --k or --per-contract")
    default = ["fault"] if args.containment else ["rule"] if args.governance else ["config"]
    by = [k.strip() for v in (args.by or default) for k in v.split(",") if k.strip()]
    with Store.open(args.store, read_only=True) as store:
        run_id = _run_id(store, args.run, args.store)
        if args.containment or args.governance:   # the store stays open while the table prints: read-only
            from mattrace.report.metrics import containment_table, governance_table

            if args.containment:
                return _print_grouped(args, by, run_id, "containment", store.containment(by=by, run_id=run_id),
                                      containment_table, "fault containment", "no faulted runs")
            return _print_grouped(args, by, run_id, "governance", store.governance(by=by, run_id=run_id),
                                  governance_table, "governance decisions", "no governance decisions")
        rows = store.metrics(by=by, run_id=run_id, k=args.k)
        compliance = store.compliance(by=by, per="contract", run_id=run_id) if args.per_contract else None
    if args.json:
        data: dict[str, Any] = {"by": by, "run": run_id, "k": args.k, "metrics": [r.to_json_dict() for r in rows]}
        if compliance is not None:
            data["compliance"] = [c.to_json_dict() for c in compliance]
        _print_json(data)
        return EXIT_OK
    from mattrace.report.metrics import compliance_table, metrics_table

    console = _table_console()
    if not rows:
        console.print("no traces in the store" + (f" for run {run_id}" if run_id else ""), soft_wrap=True)
        return EXIT_OK
    console.print(metrics_table(rows, title="mattrace metrics" + (f" (run {run_id})" if run_id else "")))
    if compliance is not None:
        console.print(compliance_table(compliance))
    return EXIT_OK


def _print_grouped(args: argparse.Namespace, by: list[str], run_id: str | None, key: str, rows: Sequence[Any],
                   table: Callable[..., Any], title: str, empty: str) -> int:
    """A grouped store table (containment, governance): JSON, a rich table, or why there is none."""
    if args.json:
        _print_json({"by": by, "run": run_id, key: [r.to_json_dict() for r in rows]})
        return EXIT_OK
    console = _table_console()
    suffix = f" (run {run_id})" if run_id else ""
    if not rows:
        console.print(f"{empty} in the store" + (f" for run {run_id}" if run_id else ""), soft_wrap=True)
    else:
        console.print(table(rows, title=title + suffix))
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from mattrace.report.html import write_report
    from mattrace.store import Store

    by = [k.strip() for v in (args.by or ["config"]) for k in v.split(",") if k.strip()]
    with Store.open(args.store, read_only=True) as store:
        run_id = _run_id(store, args.run, args.store)
        try:
            path = write_report(store, args.out, run_id=run_id, by=by, title=args.title)
        except OSError as exc:
            raise _CliError(f"{args.out}: cannot write the report: {exc.strerror or exc}") from exc
    sys.stdout.write(f"report: {path}\n")
    return EXIT_OK


def _run_id(store: Any, run: str | None, where: str) -> str | None:
    """``--run``: a run id as given, ``latest`` for the newest run in the store, or None for all."""
    if run != "latest":
        return run
    latest = store.runs(limit=1)
    if not latest:
        raise _CliError(f"{where}: the store holds no runs yet")
    return str(latest[0].run_id)


def _cmd_compare(args: argparse.Namespace) -> int:
    from mattrace.apps.compare import compare, load_suite

    def names(value: str | None) -> list[str] | None:
        return [n.strip() for n in value.split(",") if n.strip()] if value else None

    faults = None
    if args.faults:
        from mattrace.faults import load_faults

        faults = load_faults(args.faults)
    suite = load_suite(args.suite)
    result = compare(suite, names(args.designs), args.seeds, tasks=names(args.tasks), faults=faults,
                     governed=args.governed, search=args.search, store=args.store, report=args.out)
    if args.json:
        _print_json({"run_id": result.run_id, "runs": result.runs, "seconds": round(result.seconds, 2),
                     "metrics": [m.to_json_dict() for m in result.metrics],
                     "report": str(result.report) if result.report else None})
        return EXIT_OK
    from mattrace.report.metrics import containment_table, metrics_table

    console = _table_console()
    console.print(f"{result.suite}: {len(result.designs)} design(s) x {len(result.tasks)} task(s) x "
                  f"{len(result.seeds)} seed(s) = {result.runs} runs in {result.seconds:.1f} s; run {result.run_id}",
                  soft_wrap=True)
    console.print(metrics_table(result.metrics))
    if result.containment:
        console.print(containment_table(result.containment))
    for design, found in result.searches.items():
        if isinstance(found, str):
            what = found
        elif found.found and found.violation is not None:
            what = f"{found.perturbation} breaks {found.violation.contract} (run {found.runs_to_find} of {found.runs})"
        else:
            what = f"nothing found: {found.stopped}"
        console.print(f"search {design}: {what}", soft_wrap=True, highlight=False)
    console.print(f"traces in {result.traces_dir}; store {result.store}"
                  + (f"; report: {result.report}" if result.report else ""), soft_wrap=True, highlight=False)
    return EXIT_OK


def _cmd_runs(args: argparse.Namespace) -> int:
    from mattrace.store import Store

    with Store.open(args.store, read_only=True) as store:
        runs = store.runs(limit=args.limit)
    if args.json:
        _print_json([r.to_json_dict() for r in runs])
        return EXIT_OK
    from mattrace.report.metrics import runs_table

    console = _table_console()
    if not runs:
        console.print("no runs in the store", soft_wrap=True)
    else:
        console.print(runs_table(runs))
    return EXIT_OK


# -- plumbing ----------------------------------------------------------------------------------

def _print_json(data: Any, default: Callable[[Any], Any] | None = None) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=default) + "\n")


def _stderr(line: str) -> None:
    sys.stderr.write(line.replace("\n", " ") + "\n")


def _read_traces(paths: Sequence[str]) -> list[ReadResult]:
    """Read every trace file a command was given, before the command shows anything.

    A file that cannot be read or does not verify raises its ``TraceFormatError``
    (``path:line: reason``), which :func:`main` reports as a usage error (exit 2): a corrupt
    file stops the command rather than leaving half a report. A torn tail (an unsealed file
    whose last line was cut off) is readable, so it is a warning on stderr, printed rather
    than ``warnings.warn()``-ed: under ``-W error`` a warning would become a traceback.
    """
    from mattrace.tracefile import read_trace_file

    results = []
    for path in paths:
        result = read_trace_file(path)
        for warning in result.warnings:
            _stderr(f"mattrace: warning: {warning}")
        results.append(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mattrace`` command with ``argv`` (default ``sys.argv[1:]``); return its exit code.

    Never raises for bad input: usage errors and unreadable or corrupt files become one
    line on stderr and exit code 2.
    """
    try:
        args = _parser().parse_args(argv)
    except _CliError as exc:
        _stderr(f"mattrace: error: {exc}")
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version print and "exit" with 0
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    func: Callable[[argparse.Namespace], int] = args.func
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        return func(args)
    except (_CliError, MatTraceError) as exc:
        _stderr(f"mattrace: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _stderr("mattrace: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `mattrace show big.jsonl | head`: the reader left, so stop
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # keep the exit-time flush from failing too
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
