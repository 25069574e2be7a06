"""The ``mattrace`` command: ls, show, verify, check, import, export, report, compare, schema, demo, mcp, and the
store's ingest, query, metrics and runs.

:func:`main` only builds the top-level parser and dispatches; each command group lives in
its own module with every command's parser next to its handler: ``_traces`` (show, verify,
schema, diff), ``_check`` (check), ``_find`` (ls), ``_replay``, ``_convert`` (import, export),
``_store`` (ingest, query, metrics, runs, report, and ``export --parquet``), ``_apps``
(compare, demo) and ``_mcp`` (the MCP proxy). What they share (exit codes, the options
several commands take, reading trace files, ``latest`` for a trace argument) is in ``_common``.

Two rules shape this package:

* **Fast start.** ``mattrace --help``, ``show``, ``verify`` and ``schema`` are run by
  people and CI scripts many times a day, so nothing here imports litellm, duckdb,
  OpenTelemetry or hypothesis; subcommand bodies import what they need when they run
  (the store commands import duckdb only once they open the store).
* **Errors are one line, never a traceback.** A bad argument, a missing file or a corrupt
  trace prints ``mattrace: error: <path>:<line>: <reason>`` on stderr and exits 2. A
  traceback here would mean a bug in mattrace, not in the user's input.

Exit codes, the same for every command (docs/cli.md lists them per command): 0 pass;
1 a violation or a difference (``verify`` found a file missing, unreadable or tampered
with; ``check`` a contract violated; ``diff`` and ``replay`` a divergence; ``ingest`` a
file it skipped: judgements, not usage errors); 2 bad input or usage (an unreadable or
corrupt file, a bad contract file, a store that cannot be opened); 3 incomplete (a trace
that does not hold the end of its run: ``check`` could not decide every contract,
``verify`` found a file unsealed); 4 internal error: a bug in mattrace, reported as one
line on stderr that names the file holding the traceback; 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from mattrace.cli import _apps, _check, _common, _convert, _find, _mcp, _replay, _store, _traces
from mattrace.cli._common import DEFAULT_STORE
from mattrace.errors import MatTraceError

__all__ = ["DEFAULT_STORE", "main"]

_GROUPS = (_traces, _check, _find, _replay, _convert, _store, _apps, _mcp)
# the order `mattrace --help` lists the commands in, and argparse's "invalid choice" message names them in
_LISTED = ("ls", "show", "verify", "schema", "demo", "check", "diff", "replay", "import", "export",
          "ingest", "query", "metrics", "runs", "report", "compare", "mcp")


def _parser() -> _common.Parser:
    from mattrace import __version__

    parser = _common.Parser(prog="mattrace", description="Message-Action Traces for multi-agent "
                    "LLM systems: show, verify, check and import recorded runs; ingest them into "
                    "a DuckDB store and measure them with metrics and SQL.",
                    epilog="exit status: 0 pass; 1 a violation or difference (a violated contract, "
                    "a tampered file, a diverging replay, a skipped file); 2 bad input or usage; "
                    "3 incomplete (a trace without the end of its run); 4 internal error (a bug in "
                    "mattrace: stderr names the file holding the traceback). See docs/cli.md.")
    parser.add_argument("--version", action="version", version=f"mattrace {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common.Parents.build()
    adders = {name: add for group in _GROUPS for name, add in group.COMMANDS.items()}
    for name in sorted(adders, key=_LISTED.index):   # a command missing from _LISTED fails here, loudly
        adders[name](sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mattrace`` command with ``argv`` (default ``sys.argv[1:]``); return its exit code.

    Never raises: usage errors and unreadable or corrupt files become one line on stderr
    and exit code 2; a bug in mattrace becomes one line naming the file that holds its
    traceback, and exit code 4.
    """
    _common.escape_unprintable()
    try:
        args = _parser().parse_args(argv)
    except _common.CliError as exc:
        _common.stderr(f"mattrace: error: {exc}")
        return _common.EXIT_USAGE
    except SystemExit as exc:  # --help and --version print and "exit" with 0
        return exc.code if isinstance(exc.code, int) else _common.EXIT_OK
    func: Callable[[argparse.Namespace], int] = args.func
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        return func(args)
    except (_common.CliError, MatTraceError) as exc:
        _common.stderr(f"mattrace: error: {exc}")
        return _common.EXIT_USAGE
    except KeyboardInterrupt:
        _common.stderr("mattrace: interrupted")
        return _common.EXIT_INTERRUPTED
    except BrokenPipeError:  # `mattrace show big.jsonl | head`: the reader left, so stop
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # keep the exit-time flush from failing too
        return _common.EXIT_FAILED
    except OSError as exc:  # a path the user gave that cannot be read or written: their input
        where = f"{exc.filename}: " if exc.filename is not None else ""
        _common.stderr(f"mattrace: error: {where}{exc.strerror or exc}")
        return _common.EXIT_USAGE
    except Exception as exc:
        return _common.internal_error(exc, args.argv)


if __name__ == "__main__":
    sys.exit(main())
