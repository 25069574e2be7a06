"""Finding and reading the trace files commands are given: ``latest``, the newest trace, the
files under a folder, and reading them with torn tails reported on stderr."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mattrace.cli._common import LATEST, REPLAYS_DIR, TRACES_DIR, CliError, stderr

if TYPE_CHECKING:
    from mattrace.tracefile import ReadResult, TraceStream

__all__ = ["ended", "latest_trace", "read_traces", "trace_files", "trace_header", "trace_path"]


def trace_files(root: str | os.PathLike[str], *, replays: bool = False) -> list[str]:
    """Every ``*.jsonl`` file under ``root`` (recursively), newest first by modification time.

    The ``replays/`` folders ``mattrace replay`` writes are left out unless ``replays``: a
    replay repeats a recorded run, so "the newest trace" means the newest recording, and
    ``mattrace replay latest`` run twice replays the same recording rather than its replay.
    """
    found: list[tuple[float, str]] = []
    for folder, dirs, files in os.walk(root):
        if not replays:
            dirs[:] = [d for d in dirs if d != REPLAYS_DIR]
        for name in files:
            if name.endswith(".jsonl"):
                path = os.path.join(folder, name)
                try:
                    found.append((os.stat(path).st_mtime, path))
                except OSError:   # removed while we looked: not a trace any more
                    continue
    return [path for _, path in sorted(found, key=lambda item: (-item[0], item[1]))]


def trace_header(path: str) -> dict[str, Any] | None:
    """The run metadata in the header line of ``path``, or None when it is not a mattrace trace.

    Reads the first line only and verifies nothing: enough to tell a trace from a results
    file or a stray ``.jsonl``, and to list it."""
    try:
        with open(path, "rb") as f:
            record = json.loads(f.readline(1 << 20))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != "mattrace-trace":
        return None
    trace = record.get("trace")
    return trace if isinstance(trace, dict) else None


def latest_trace(root: str = TRACES_DIR) -> str:
    """The newest trace file under ``root`` (replays, results files and other JSONL left out), for ``latest``.

    Raises:
        CliError: ``root`` holds no trace file (the message names it, and where traces come from).
    """
    files = [path for path in trace_files(root) if trace_header(path) is not None]
    if not files:
        where = root if os.path.isdir(root) else f"{root} (no such directory)"
        raise CliError(f"'{LATEST}': no trace file under {where}; record a run first "
                       "(@mattrace.record, pytest, mattrace demo) or give the trace's path")
    return files[0]


def trace_path(text: str) -> str:
    """An argparse ``type`` for a trace-file argument: a path as given, ``latest`` for the newest trace.

    A file actually named ``latest`` is reached as ``./latest``.
    """
    return latest_trace() if text == LATEST else text


def read_traces(paths: Iterable[str]) -> list[ReadResult]:
    """Read every trace file a command was given, before the command shows anything.

    A file that cannot be read or does not verify raises its ``TraceFormatError``
    (``path:line: reason``), which :func:`mattrace.cli.main` reports as a usage error (exit 2):
    a corrupt file stops the command rather than leaving half a report. A torn tail (an
    unsealed file whose last line was cut off) is readable, so it is a warning on stderr,
    printed rather than ``warnings.warn()``-ed: under ``-W error`` a warning would become a
    traceback.
    """
    from mattrace.tracefile import read_trace_file

    results = []
    for path in paths:
        result = read_trace_file(path)
        for warning in result.warnings:
            stderr(f"mattrace: warning: {warning}")
        results.append(result)
    return results


def ended(stream: TraceStream) -> tuple[bool, int | None]:
    """Whether a trace file read to its end was sealed, and its torn line; its torn-tail warning
    printed on stderr as :func:`read_traces` prints it."""
    result = stream.result
    for warning in result.warnings:
        stderr(f"mattrace: warning: {warning}")
    return result.sealed, result.torn_line
