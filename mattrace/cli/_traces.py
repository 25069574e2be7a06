"""``mattrace show | verify | schema | diff``: the commands that look at trace files.

These run many times a day from terminals and CI scripts, so each handler imports only
what it needs when it runs (rich, the report views, the contract checker): none of them
touches litellm, duckdb, OpenTelemetry or hypothesis.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING

from mattrace.cli._common import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_OK,
    CliError,
    Parents,
    console,
    non_negative,
    print_json,
)
from mattrace.cli._tracefiles import ended, read_traces, trace_path
from mattrace.errors import MatTraceError

if TYPE_CHECKING:
    from mattrace.cli._common import Adder, Commands


def _add_show(sub: Commands, common: Parents) -> None:
    show = sub.add_parser("show", parents=[common.width, common.json], help="render a trace file in the terminal",
                          description="Render a trace: header, one row per step, and with "
                          "--step a window around that step plus all of its fields.")
    show.add_argument("file", metavar="FILE", type=trace_path,
                      help="a trace file (.jsonl), or 'latest': the newest under .mattrace/traces")
    show.add_argument("--step", type=non_negative, metavar="N",
                      help="show steps N-K..N+K and the details of step N (with --json: that step)")
    # not the shared --around: a window to read around a chosen step is wider than one around a finding
    show.add_argument("--around", type=non_negative, default=3, metavar="K",
                      help="steps of context either side of --step (default 3)")
    show.set_defaults(func=_show)


def _show(args: argparse.Namespace) -> int:
    if args.json and args.step is None:   # the whole trace as one JSON document
        [result] = read_traces([args.file])
        print_json(result.trace.model_dump(mode="json"))
        return EXIT_OK
    from mattrace.tracefile import open_trace

    # one pass over the file, verifying every line; only the steps shown are kept
    with open_trace(args.file) as stream:
        if args.step is None:
            from mattrace.report.stream import print_trace_stream

            print_trace_stream(console(args.width), stream.trace, stream, ended=lambda: ended(stream),
                               width=args.width, path=args.file, estimate=stream.estimated_steps)
            return EXIT_OK
        from mattrace.report.excerpt import collect
        from mattrace.report.terminal import render_excerpt

        keep = range(max(0, args.step - args.around), args.step + args.around + 1)
        excerpt = (collect(stream.trace, stream, [args.step], flow=False) if args.json
                   else collect(stream.trace, stream, keep, detail=args.step))
    sealed, torn = ended(stream)
    if args.step >= excerpt.count:
        valid = f"steps 0..{excerpt.count - 1}" if excerpt.count else "no steps"
        raise CliError(f"{args.file}: step {args.step} is out of range: the trace has {valid}")
    if args.json:
        print_json(excerpt.steps[args.step].model_dump(mode="json"))
        return EXIT_OK
    console(args.width).print(render_excerpt(excerpt, step=args.step, around=args.around, width=args.width,
                                             path=args.file, sealed=sealed, torn_line=torn))
    return EXIT_OK


def _add_verify(sub: Commands, common: Parents) -> None:
    verify = sub.add_parser(
        "verify", parents=[common.json], help="check that trace files are complete, sealed and unaltered",
        description="Check each file's hash chain and seal. A file that is missing, "
        "unreadable, unsealed or altered is reported FAIL with path:line: reason. OK means intact, "
        "not safe: a trace's entry point is printed for you to judge, and replay runs it only if you allow it.",
        epilog="exit status: 0 when every file is OK, 1 when any is missing, unreadable or altered, "
        "2 on bad usage, 3 when the others are OK but one is unsealed (its recording never finished, "
        "or its end was cut off). Set MATTRACE_HMAC_KEY to require HMAC-signed files.")
    verify.add_argument("files", nargs="+", metavar="FILE", type=trace_path,
                        help="trace files ('latest': the newest under .mattrace/traces)")
    verify.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    # not read_traces(): a file that does not verify is this command's verdict (exit 1), not bad input
    from mattrace.tracefile import VerifyReport, verify

    reports: list[VerifyReport] = []
    for path in args.files:
        try:
            reports.append(verify(path))
        except MatTraceError as exc:  # verify() reports file problems; be safe anyway
            reports.append(VerifyReport(path, ok=False, reason=str(exc)))
    failed = sum(not r.ok for r in reports)
    unsealed = sum(r.unsealed for r in reports)
    code = EXIT_FAILED if failed > unsealed else EXIT_INCOMPLETE if unsealed else EXIT_OK
    if args.json:
        print_json([asdict(r) for r in reports])
        return code
    from rich.text import Text

    from mattrace.trace import describe_entrypoint

    out = console()
    for r in reports:
        if r.ok:
            out.print(Text.assemble(("OK  ", "bold green"), f"  {r.path} ({r.steps} steps, {r.algorithm}): intact"),
                      soft_wrap=True)
            if r.entrypoint is not None:
                # integrity is not trust: whoever wrote the file chose this, and a valid chain says nothing of it
                out.print(Text(f"      entry point: {describe_entrypoint(r.entrypoint)} (not vetted: verify checks "
                               "the file, not the code it names; replay runs it only if you allow it)"),
                          soft_wrap=True)
        else:
            where = f"{r.path}:{r.line}" if r.line is not None else r.path
            out.print(Text.assemble(("FAIL", "bold red"), f"  {where}: {r.reason}"), soft_wrap=True)
    if len(reports) > 1:
        out.print(f"{len(reports) - failed} ok, {failed} failed", soft_wrap=True)
    return code


def _add_schema(sub: Commands, common: Parents) -> None:
    schema = sub.add_parser("schema", help="print the JSON Schema of a trace",
                            description="Print the JSON Schema of a Trace (as `show --json` prints it).")
    schema.set_defaults(func=_schema)


def _schema(args: argparse.Namespace) -> int:
    from mattrace.trace import trace_json_schema

    print_json(trace_json_schema())
    return EXIT_OK


def _add_diff(sub: Commands, common: Parents) -> None:
    dif = sub.add_parser(
        "diff", parents=[common.around, common.json],
        help="compare two trace files: identical, or where they first differ",
        description="Compare two traces as their fingerprints do (times, trace ids and volatile "
        "attrs are ignored) and show the first divergence: the step and field, both values, and "
        'the steps around it in each trace. With --json, {"identical", "first", "differences"}.',
        epilog="exit status: 0 when the traces are identical, 1 when they differ, 2 on bad usage or "
        "a file that cannot be read or is corrupt.")
    dif.add_argument("old", metavar="A", type=trace_path,
                     help="the reference trace file (e.g. the recording; 'latest': the newest under .mattrace/traces)")
    dif.add_argument("new", metavar="B", type=trace_path,
                     help="the trace file compared with it (e.g. the replay; 'latest' as for A)")
    dif.add_argument("--all", action="store_true", help="also list every differing step")
    dif.set_defaults(func=_diff)


def _diff(args: argparse.Namespace) -> int:
    from mattrace.replay import diff_summary, first_divergence

    old, new = (result.trace for result in read_traces([args.old, args.new]))
    first = first_divergence(old, new)
    # the overview walks every step, so it is computed only when asked for (--all, --json)
    differences = diff_summary(old, new, limit=None if args.all else 20) if args.all or args.json else []
    if args.json:
        print_json({"identical": first is None, "first": first.to_json_dict() if first else None,
                    "differences": [d.to_json_dict() for d in differences]})
        return EXIT_OK if first is None else EXIT_FAILED
    from mattrace.report.diff import print_diff

    print_diff(console(), old, new, first, old_path=args.old, new_path=args.new, around=args.around,
               differences=differences if args.all else None)
    return EXIT_OK if first is None else EXIT_FAILED


COMMANDS: dict[str, Adder] = {  # the group's commands, each with the function that adds its parser
    "show": _add_show,
    "verify": _add_verify,
    "schema": _add_schema,
    "diff": _add_diff,
}
