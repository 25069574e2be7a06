"""What every command group of ``mattrace`` shares: exit codes, the one-line error, the
shared options as argparse parent parsers and consoles (finding and reading trace files:
:mod:`mattrace.cli._tracefiles`).

Kept to the standard library, rich (imported lazily) and ``mattrace.errors``, so that
``mattrace --help`` and the quick commands start fast: the heavy dependencies (litellm,
duckdb, OpenTelemetry, hypothesis) are imported only by the handlers that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from typing import TypeAlias

    from rich.console import Console


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
"""Exit codes of every command (docs/cli.md): 0 pass; 1 a violation or a difference; 2 bad
input or usage; 3 incomplete (a trace that does not hold the end of its run, so not every
verdict could be reached); 4 an internal error (a bug in mattrace); 130 interrupted."""
DEFAULT_STORE = ".mattrace/mattrace.duckdb"  # = mattrace.store.DEFAULT_STORE (not imported: fast start)
DEFAULT_REPORT = ".mattrace/report.html"  # where `mattrace report` and `mattrace demo` write the HTML report
LOG_WIDTH = 160
TRACES_DIR = ".mattrace/traces"  # = mattrace.recording.options.DEFAULT_DIR (not imported: fast start)
LATEST = "latest"
"""What a trace-file argument may say instead of a path: the newest trace under :data:`TRACES_DIR`."""
REPLAYS_DIR = "replays"  # where `mattrace replay` writes, beside the trace it replayed


class CliError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage dump) raised to :func:`mattrace.cli.main`."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see `{self.prog} --help`)")


if TYPE_CHECKING:
    Commands: TypeAlias = argparse._SubParsersAction[Parser]  # what a group adds its commands to
    Adder: TypeAlias = Callable[[Commands, "Parents"], None]  # adds one command's parser, next to its handler


def int_at_least(low: int) -> Callable[[str], int]:
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


non_negative, positive = int_at_least(0), int_at_least(1)


@dataclass(frozen=True)
class Parents:
    """The options several commands take, each defined once as an argparse parent parser.

    A command lists the ones it takes in ``parents=[...]``, so ``--json`` or ``--store``
    is spelled, defaulted and described the same way wherever it appears.
    """

    json: Parser
    store: Parser
    contracts: Parser
    contracts_required: Parser
    run: Parser
    by: Parser
    width: Parser
    around: Parser

    @classmethod
    def build(cls) -> Parents:
        """The parent parsers, made anew for each top-level parser (argparse shares their actions)."""
        def parent(*flags: str, **options: Any) -> Parser:
            parser = Parser(add_help=False)
            parser.add_argument(*flags, **options)
            return parser

        # check cannot run without contracts; ingest and export --otlp check only when given some
        def contracts(required: bool) -> Parser:
            return parent("--contracts", "-c", action="append", required=required, metavar="FILE|module:NAME",
                          help="a contract file (.toml) or module:NAME; repeat to combine")

        return cls(
            json=parent("--json", action="store_true", help="print the result as JSON, for scripts"),
            store=parent("--store", default=DEFAULT_STORE, metavar="FILE",
                         help=f"the DuckDB store (default {DEFAULT_STORE})"),
            contracts=contracts(required=False),
            contracts_required=contracts(required=True),
            run=parent("--run", metavar="ID", help="only this run ('latest': the newest one; default: every run)"),
            by=parent("--by", action="append", metavar="KEYS",
                      help="comma-separated group keys, e.g. model,config.x (default: config)"),
            width=parent("--width", type=positive, metavar="COLS",
                         help="lay out to COLS columns (default: the terminal's width)"),
            around=parent("--around", type=non_negative, default=2, metavar="K",
                          help="steps of context either side of the first violation or divergence (default 2)"),
        )


def split_names(values: Iterable[str]) -> list[str]:
    """Comma-separated names from one or more option values, blanks dropped: ``["a, b", "c"]`` → a, b, c."""
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def resolve_run(store: Any, run: str | None, where: str) -> str | None:
    """The run a ``--run`` option names in an open store: an id as given, ``latest`` for the newest, None for all.

    Raises:
        CliError: ``latest`` on a store that holds no runs (``where`` names the store).
    """
    if run != "latest":
        return run
    latest = store.runs(limit=1)
    if not latest:
        raise CliError(f"{where}: the store holds no runs yet")
    return str(latest[0].run_id)


def console(width: int | None = None, *, markup: bool = False) -> Console:
    """A stdout console; rich leaves colour out when stdout is not a terminal.

    Without ``width`` it is the terminal's width, or :data:`LOG_WIDTH` when writing to a file
    or CI log: rich would assume 80 columns there and cut agent and tool names to ``plann…``,
    while a log does not wrap. ``COLUMNS``, when set, wins over both.

    Markup is off unless asked for: what commands print holds names and ids (``test[param]``,
    a tool called ``[/]``) that are text, not styles. Only output written wholly by mattrace
    (the demo's narration) turns it on."""
    from rich.console import Console

    out = Console(width=width, highlight=False, markup=markup)
    if width is None and not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = LOG_WIDTH
    return out


def table_console() -> Console:
    """A console for wide tables (metrics, runs, query, ls): :func:`console`'s width rules."""
    return console()


def print_json(data: Any, default: Callable[[Any], Any] | None = None) -> None:
    """``data`` on stdout as indented JSON, non-ASCII kept readable."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=default) + "\n")


def escape_unprintable() -> None:
    """Print what the output cannot encode as a backslash escape instead of failing half-way.

    A trace keeps text exactly as recorded, and some recorded text is no valid Unicode (a
    lone surrogate from an undecodable file name): shown, it reads ``\\udcff`` rather than
    raising ``UnicodeEncodeError`` in the middle of a table."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):   # a stream that cannot change (already written binary)
                pass


def stderr(line: str) -> None:
    """One line on stderr: a message with a newline in it would read as two."""
    sys.stderr.write(line.replace("\n", " ") + "\n")


def internal_error(exc: BaseException, argv: list[str]) -> int:
    """Report a bug in mattrace: the traceback goes to a file, stderr gets one line naming it.

    A traceback on stderr would read as the user's mistake and bury the one line that says
    what to do; a file keeps all of it for the report. The file goes to the temporary
    directory, which is writable wherever the command runs (a read-only checkout, a CI
    runner), and never into the user's project.
    """
    import tempfile
    import time
    import traceback

    from mattrace import __version__

    where = f" in {_origin(exc)}" if _origin(exc) else ""
    text = "".join(traceback.format_exception(exc))
    header = (f"mattrace {__version__} (Python {sys.version.split()[0]}, {sys.platform})\n"
              f"command: mattrace {' '.join(argv)}\n\n")
    try:
        fd, path = tempfile.mkstemp(prefix=f"mattrace-crash-{time.strftime('%Y%m%dT%H%M%S')}-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
            f.write(header + text)
        saved = f"the traceback is in {path}"
    except OSError as write_error:
        saved = f"the traceback could not be written ({write_error.strerror or write_error})"
    stderr(f"mattrace: internal error{where}: {type(exc).__name__}: {exc}. This is a bug in mattrace, "
           f"not in your input; {saved}. Please report it with that file and the command you ran.")
    return EXIT_INTERNAL


def _origin(exc: BaseException) -> str:
    """``module.py:line`` of the innermost frame of the error's traceback (where it was raised)."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"


def load_contracts(specs: Iterable[str]) -> list[Any]:
    """The contracts named by ``--contracts`` values: contract files or ``module:NAME`` objects.

    The working directory goes on ``sys.path`` first, as ``python -m`` puts it there, so
    ``module:NAME`` finds the user's own modules.
    """
    from mattrace.contracts import resolve_contracts

    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return [c for spec in specs for c in resolve_contracts(spec)]
