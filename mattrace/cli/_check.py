"""``mattrace check``: contracts over trace files, each read as a stream.

Each file is read once and each step goes through every contract's monitor and is dropped,
so checking a trace of hundreds of thousands of steps holds the monitors' state, not the
trace. Every file is read and checked before anything is printed (a corrupt one stops the
command with exit 2, not half a report); a failure's steps in context are then read again
from its file, only as far as the last step shown.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mattrace.cli._common import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_OK,
    Parents,
    Parser,
    console,
    load_contracts,
    print_json,
)
from mattrace.cli._tracefiles import ended, trace_path

if TYPE_CHECKING:
    from mattrace.cli._common import Adder, Commands
    from mattrace.contracts import Report, TraceNames
    from mattrace.report.excerpt import Excerpt
    from mattrace.trace import Trace


def _add_check(sub: Commands, common: Parents) -> None:
    # TRACE comes in a parent ahead of --contracts so that a bare `mattrace check` names the
    # missing arguments in the order it always has ("TRACE, --contracts/-c")
    files = Parser(add_help=False)
    files.add_argument("files", nargs="+", metavar="TRACE", type=trace_path,
                       help="trace files (.jsonl; 'latest': the newest under .mattrace/traces)")
    chk = sub.add_parser(
        "check", parents=[files, common.contracts_required, common.around, common.width, common.json],
        help="check trace files against contracts",
        description="Check each trace against the contracts and show every failing contract "
        "with its first violating step in context. Contracts come from a TOML contract file "
        "or a Python object `module:NAME` (a contract or a list of them). A contract that "
        "passed without ever applying (a tool or agent name that appears nowhere in the trace, "
        "an `if` part that never fired) is listed as VACUOUS; on a trace that does not hold the "
        "end of its run (unsealed, torn) a contract that needs the end is INCOMPLETE. With "
        "--json, one report per trace.",
        epilog="exit status: 0 when every contract passes on every trace, 1 when any "
        "contract fails (with --strict: or passes vacuously), 2 on bad usage, a bad contract "
        "file or an unreadable trace, 3 when none fails but a trace is incomplete.")
    chk.add_argument("--failures-only", action="store_true", help="do not list the contracts that passed")
    chk.add_argument("--strict", action="store_true",
                     help="a contract that passes vacuously fails (exit 1)")
    chk.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    from mattrace.contracts import unknown_names

    contracts = load_contracts(args.contracts)   # a bad contract file: exit 2 before any trace is read
    # every file is read and checked before anything is shown: a corrupt one stops the command (exit 2)
    checked = [_check_file(path, contracts) for path in args.files]
    reports = [(path, trace, report.strict() if args.strict else report) for path, trace, report, _ in checked]
    failed = sum(not report.ok for _, _, report in reports)
    incomplete = sum(report.ok and not report.complete for _, _, report in reports)
    code = EXIT_FAILED if failed else EXIT_INCOMPLETE if incomplete else EXIT_OK
    if args.json:
        print_json([{"path": path} | report.to_json_dict() for path, _, report in reports])
        return code
    from mattrace.report.verdicts import print_report

    out = console(args.width)
    for path, trace, report in reports:
        print_report(out, report, _context(path, trace, report, args.around), path=path, around=args.around,
                     passed=not args.failures_only)
    if len(reports) > 1:
        undecided = f"; {incomplete} incomplete" if incomplete else ""
        out.print(f"{len(reports) - failed - incomplete} of {len(reports)} traces passed every contract"
                  f"{undecided}", soft_wrap=True)
    vacuous = sum(len(report.vacuous) for _, _, report in reports)
    if vacuous:
        out.print(f"{vacuous} vacuous pass{'es' if vacuous != 1 else ''}: the contract never applied to the trace "
                  "(see docs/contracts.md); --strict fails them", soft_wrap=True)
    if len(reports) > 1:   # a name no trace knows, with a suggestion drawn from all of them
        for line in unknown_names((names for _, _, _, names in checked), contracts):
            out.print(f"unknown name: {line}", soft_wrap=True, highlight=False)
    return code


def _check_file(path: str, contracts: list[Any]) -> tuple[str, Trace, Report, TraceNames]:
    """Check one trace file as it is read: each step goes through the monitors and is dropped."""
    from mattrace.contracts import Checker
    from mattrace.tracefile import open_trace

    with open_trace(path) as stream:
        checker = Checker(contracts, trace_name=stream.trace.name)
        for step in stream:
            checker.add(step)
    ended(stream)   # the reader marks an unsealed or torn file incomplete, and the report honours the mark
    return path, stream.trace, checker.report(stream.trace.incomplete), checker.names


def _context(path: str, trace: Trace, report: Report, around: int) -> Excerpt:
    """The steps a report shows around its violations, read again from the file as far as the last of them."""
    from mattrace.report.verdicts import context_excerpt
    from mattrace.tracefile import open_trace

    if not any(v.violation is not None and v.violation.step is not None for v in report.verdicts):
        return context_excerpt(report, trace, (), report.steps, around)
    with open_trace(path) as stream:
        return context_excerpt(report, trace, stream, report.steps, around)


COMMANDS: dict[str, Adder] = {  # the group's commands, each with the function that adds its parser
    "check": _add_check,
}
