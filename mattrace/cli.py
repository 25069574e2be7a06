"""The ``mattrace`` command: show, verify, check, import, schema and demo.

Two rules shape this module:

* **Fast start.** ``mattrace --help``, ``show``, ``verify`` and ``schema`` are run by
  people and CI scripts many times a day, so nothing here imports litellm, duckdb,
  OpenTelemetry or hypothesis; subcommand bodies import what they need when they run.
* **Errors are one line, never a traceback.** A bad argument, a missing file or a corrupt
  trace prints ``mattrace: error: <path>:<line>: <reason>`` on stderr and exits 2. A
  traceback here would mean a bug in mattrace, not in the user's input.

Exit codes: 0 success; 1 a verdict went against the files (``verify`` found a file that
is missing, unreadable, unsealed or tampered with; ``check`` found a contract violated: a
judgement, not a usage error);
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

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


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
                     "LLM systems: show, verify, check and import recorded runs.",
                     epilog="exit status: 0 ok; 1 verify found a bad file or check a violated "
                     "contract; 2 bad usage, or "
                     "a file that cannot be read or is corrupt.")
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

    imp = sub.add_parser(
        "import", help="turn agent logs (OpenAI chat format) into trace files",
        description="Read chat logs in OpenAI message format (a JSON list of messages, an "
        "object with a 'messages' list, or JSONL with one run per line) and write each run "
        "as a sealed trace file. No file is written unless every input reads.",
        epilog="exit status: 0 when every run was written, 2 on bad usage or a file that is "
        "not a chat log (path:line: message N: reason).")
    imp.add_argument("format", choices=["openai"], metavar="FORMAT",
                     help="the log format: openai (chat-completion messages)")
    imp.add_argument("files", nargs="+", metavar="FILE", help="log files (.json or .jsonl)")
    imp.add_argument("--out", default=".mattrace/traces", metavar="DIR",
                     help="where to write the trace files (default .mattrace/traces)")
    imp.add_argument("--untrusted-tools", action="append", default=[], metavar="NAMES",
                     help="comma-separated tools whose results are untrusted ('*': all tools)")
    imp.add_argument("--side-effect-tools", action="append", default=[], metavar="NAMES",
                     help="comma-separated tools that change the outside world ('*': all tools)")
    imp.set_defaults(func=_cmd_import)
    return parser


def _console(width: int | None = None) -> Console:
    """A stdout console; rich leaves colour out when stdout is not a terminal."""
    from rich.console import Console

    return Console(width=width, highlight=False)


# -- subcommands -------------------------------------------------------------------------------

def _cmd_show(args: argparse.Namespace) -> int:
    from mattrace.tracefile import read_trace_file

    result = read_trace_file(args.file)
    # printed, not warnings.warn(): under -W error a warning would become a traceback
    for warning in result.warnings:
        _stderr(f"mattrace: warning: {warning}")
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
        demo = importlib.import_module("mattrace._demo")
    except ModuleNotFoundError as exc:
        if exc.name != "mattrace._demo":
            raise
        raise _CliError("the demo is not part of this installation (no mattrace._demo)") from exc
    options: dict[str, Any] = {"console": _console()}
    if args.runs is not None:
        options["runs"] = args.runs
    if args.dir is not None:
        options["dir"] = args.dir
    code = demo.run_demo(**options)
    return code if isinstance(code, int) else EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from mattrace.contracts import check, resolve_contracts
    from mattrace.tracefile import read_trace_file

    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())   # as `python -m` does: module:NAME resolves from here
    contracts = [c for spec in args.contracts for c in resolve_contracts(spec)]
    # every trace is read first: a corrupt file is a usage error (2), not half a report
    loaded = []
    for path in args.files:
        result = read_trace_file(path)
        for warning in result.warnings:
            _stderr(f"mattrace: warning: {warning}")
        loaded.append((path, result.trace))
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


def _cmd_import(args: argparse.Namespace) -> int:
    from mattrace.recording.importers import import_openai, write_trace

    def names(values: list[str]) -> list[str]:
        return [n.strip() for v in values for n in v.split(",") if n.strip()]

    untrusted, side_effects = names(args.untrusted_tools), names(args.side_effect_tools)
    # every file is read before anything is written: a bad input leaves no partial import
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


# -- plumbing ----------------------------------------------------------------------------------

def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _stderr(line: str) -> None:
    sys.stderr.write(line.replace("\n", " ") + "\n")


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
