"""``mattrace import | export``: traces in from other tools' logs, and out to OpenTelemetry or Parquet.

The converters, the OTLP exporter and (for ``export --parquet``) the DuckDB store are
imported when the command runs, so ``mattrace --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from mattrace.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    Parents,
    load_contracts,
    resolve_run,
    split_names,
    stderr,
)
from mattrace.cli._tracefiles import read_traces, trace_path

if TYPE_CHECKING:
    from mattrace.cli._common import Adder, Commands


def _add_import(sub: Commands, common: Parents) -> None:
    imp = sub.add_parser(
        "import", help="turn agent logs (OpenAI chat format, OTLP JSON spans) into trace files",
        description="Read chat logs in OpenAI message format (a JSON list of messages, an "
        "object with a 'messages' list, or JSONL with one run per line), or OpenTelemetry spans "
        "in OTLP JSON (the Collector's file exporter: one export request per line; one run per "
        "OTel trace), and write each run as a sealed trace file. No file is written unless every "
        "input reads. Nothing a log holds is dropped: what could not be mapped exactly (tool results "
        "matched to their call by position, results naming no tool, which are imported as untrusted, "
        "spans of no known kind) is summarised per run on stderr with its positions.",
        epilog="exit status: 0 when every run was written and mapped exactly, 1 when every run was "
        "written but some needed a guess (the summary says where), 2 on bad usage or a file that is "
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
    imp.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    import warnings

    from mattrace.errors import ImportGapWarning

    # the gaps are summarised below, once per run, rather than warned (under -W error a
    # warning would be a traceback)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportGapWarning)
        return _import_runs(args)


def _import_runs(args: argparse.Namespace) -> int:
    from mattrace.io.gaps import describe_gaps
    from mattrace.io.openai_chat import chat_gaps, import_openai, write_trace

    untrusted, side_effects = split_names(args.untrusted_tools), split_names(args.side_effect_tools)
    gaps_of = chat_gaps
    # every file is read before anything is written: a bad input leaves no partial import
    if args.format == "otlp":
        from mattrace.io.otlp_json import import_otlp, otlp_gaps

        gaps_of = otlp_gaps
        if untrusted:
            raise CliError("--untrusted-tools is for openai logs; from spans every tool output is untrusted "
                           "unless --trusted-tools names it")
        trusted = split_names(args.trusted_tools)
        runs = [(path, trace) for path in args.files
                for trace in import_otlp(path, side_effects=side_effects, trusted_tools=trusted)]
    else:
        if args.trusted_tools:
            raise CliError("--trusted-tools is for otlp spans; for openai logs name the untrusted ones "
                           "with --untrusted-tools")
        runs = [(path, trace) for path in args.files
                for trace in import_openai(path, untrusted_tools=untrusted, side_effect_tools=side_effects)]
    guessed = 0
    for path, trace in runs:
        try:
            written = write_trace(trace, args.out)
        except OSError as exc:
            raise CliError(f"{args.out}: cannot write a trace file: {exc.strerror or exc}") from exc
        line = trace.config.get("import", {}).get("line")
        origin = f"{path}:{line}" if line is not None else path
        sys.stdout.write(f"{written}  ({len(trace.steps)} steps from {origin})\n")
        gaps = gaps_of(trace)
        if gaps:
            guessed += 1
            stderr(f"mattrace: warning: {origin}: {describe_gaps(gaps)}")
    if guessed:
        stderr(f"mattrace: {guessed} of {len(runs)} run{'' if len(runs) == 1 else 's'} imported with guesses "
               "(see above); exit status 1")
        return EXIT_FAILED
    return EXIT_OK


def _add_export(sub: Commands, common: Parents) -> None:
    exp = sub.add_parser(
        "export", parents=[common.store, common.run, common.contracts],
        help="send trace files as OpenTelemetry spans (OTLP/HTTP), or write the store as Parquet",
        usage="%(prog)s TRACE... --otlp ENDPOINT [options]\n       %(prog)s --parquet DIR [--store FILE] [--run ID]",
        description="With --otlp, send each trace as one OpenTelemetry trace: a root span for the run (outcome, "
        "verdicts, first violation) and a span per step after the GenAI conventions, each also "
        "carrying the step as JSON, so `mattrace import otlp` or a MatSpanProcessor restores it; "
        "--contracts checks these contracts and sends the verdicts with each trace. "
        "With --parquet, write the store's traces, steps, verdicts, violations, faults and decisions as "
        "Parquet files partitioned by run (DIR/TABLE/run_id=RUN/), for DuckDB, Spark or Trino; "
        "--store and --run say which.",
        epilog="exit status: 0 when every trace was sent (or the files written), 1 when the endpoint refused "
        "them, 2 on bad usage, an unreadable trace or store, or a directory that cannot be written. "
        "--otlp needs the OTLP exporter: pip install 'mattrace[otlp]'.")
    exp.add_argument("files", nargs="*", metavar="TRACE", type=trace_path,
                     help="trace files (.jsonl), or latest for the newest recording, with --otlp")
    exp.add_argument("--otlp", metavar="ENDPOINT",
                     help="the OTLP/HTTP endpoint, e.g. http://localhost:4318 (/v1/traces is added)")
    exp.add_argument("--parquet", metavar="DIR",
                     help="instead: write the store as Parquet under DIR, one run_id=RUN directory per run")
    exp.add_argument("--service", default="mattrace", help="the service.name of the spans (default mattrace)")
    exp.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    if args.otlp is not None and args.parquet is not None:
        raise CliError("--otlp and --parquet are two different exports; ask for one")
    if args.otlp is None and args.parquet is None:
        raise CliError("export needs --otlp ENDPOINT (send trace files as spans) or --parquet DIR "
                       "(write the store as Parquet)")
    if args.parquet is not None:
        if args.files:
            raise CliError(f"--parquet exports the store ({args.store}), not trace files such as {args.files[0]}; "
                           "ingest them first (`mattrace ingest`)")
        if args.contracts:
            raise CliError("--contracts is for --otlp; --parquet exports the verdicts already in the store")
        return _export_parquet(args.store, args.parquet, args.run)
    if args.run is not None:
        raise CliError("--run is for --parquet; with --otlp, name the trace files")
    if not args.files:
        raise CliError("--otlp needs the trace files to send (mattrace export TRACE... --otlp ENDPOINT)")
    return _export_otlp(args.files, args.otlp, args.contracts, args.service)


def _export_parquet(store_path: str, out: str, run: str | None) -> int:
    """``export --parquet``: write the store (or one of its runs) as Parquet under ``out``; list the tables."""
    from mattrace.store import Store

    with Store.open(store_path, read_only=True) as store:
        run_id = resolve_run(store, run, store_path)
        written = store.export_parquet(out, run_id=run_id)
    width = max(len(table) for table in written)
    for table, rows in written.items():
        sys.stdout.write(f"{table:<{width}}  {rows:>9,} row{'' if rows == 1 else 's'}\n")
    which = f"run {run_id}" if run_id is not None else "every run"
    sys.stdout.write(f"wrote {which} as Parquet to {out}, one run_id=RUN directory per table and run\n")
    return EXIT_OK


def _export_otlp(paths: list[str], url: str, contract_specs: list[str] | None, service: str) -> int:
    """``export --otlp``: send the trace files, with their verdicts when contracts are given."""
    from urllib.parse import urlsplit

    from mattrace.contracts import check
    from mattrace.io.otlp_export import export_traces

    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise CliError("mattrace export needs the OTLP exporter: pip install 'mattrace[otlp]'") from None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"--otlp {url!r}: expected an http(s) URL such as http://localhost:4318")
    endpoint = url if parts.path.strip("/") else url.rstrip("/") + "/v1/traces"
    contracts = load_contracts(contract_specs) if contract_specs else None
    traces = [result.trace for result in read_traces(paths)]
    reports = [check(t, contracts) for t in traces] if contracts is not None else None
    exporter = _counting(OTLPSpanExporter(endpoint=endpoint, timeout=10))
    sent = export_traces(traces, exporter, reports=reports, service=service)
    exporter.shutdown()
    if exporter.failed:
        stderr(f"mattrace: error: {endpoint} did not accept {exporter.failed} of {exporter.batches} span "
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


COMMANDS: dict[str, Adder] = {  # the group's commands, each with the function that adds its parser
    "import": _add_import,
    "export": _add_export,
}
