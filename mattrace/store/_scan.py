"""Finding the files to ingest and reading what Python must read: headers and results files.

Trace files are read in bulk by DuckDB (see ``_ingest``); everything here is per file
and small: the listing (one ``stat`` per file), the first line of each file (is it a
trace, a results file or something else?), whether the file ends in a torn line, and the
results files, whose few lines decide verdicts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mattrace.tracefile import FORMAT as TRACE_FORMAT

__all__ = ["RESULTS_FORMAT", "FileProblem", "Found", "Results", "classify", "expand", "parse_results",
           "parse_time"]

RESULTS_FORMAT = "mattrace-results"
RESULTS_VERSION = 1


class FileProblem(Exception):
    """A file cannot be ingested; ``str()`` is ``path:line: reason``."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}:{line}: {reason}" if line is not None else f"{path}: {reason}")


@dataclass(frozen=True)
class Found:
    """A file to consider: its absolute path and its size and mtime when it was listed."""

    path: Path
    size: int
    mtime_ns: int


def _walk(root: str, out: dict[str, Found], errors: list[str]) -> None:
    """Every ``*.jsonl`` file under ``root`` (already absolute), stat'ed once.

    Each directory is entered once, however many symlinks lead to it (a link to an ancestor
    would loop forever); a file whose name is not UTF-8 text (DuckDB reads file names as
    UTF-8, and one such name failed the whole batch) is skipped with an error naming it.
    """
    stack, seen = [root], set()
    while stack:
        directory = stack.pop()
        try:
            st = os.stat(directory)
        except OSError as exc:
            errors.append(f"{directory}: cannot read: {exc.strerror or exc}")
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=True):
                        stack.append(entry.path)
                    elif entry.name.endswith(".jsonl") and entry.is_file(follow_symlinks=True):
                        entry.path.encode("utf-8")
                        st = entry.stat()
                        out[entry.path] = Found(Path(entry.path), st.st_size, st.st_mtime_ns)
                except UnicodeEncodeError:
                    errors.append(f"{entry.path.encode('utf-8', 'backslashreplace').decode()}: the file name is not "
                                  "UTF-8 text; rename the file to ingest it")
                except OSError as exc:   # a dangling link, a permission denied
                    errors.append(f"{entry.path}: cannot read: {exc.strerror or exc}")


def expand(paths: list[str | os.PathLike[str]]) -> tuple[list[Found], list[str]]:
    """Files named, and ``*.jsonl`` files found under directories named (sorted, absolute).

    A named path is resolved once (symlinks, ``..``); files found under it keep that
    prefix, which spares one ``realpath`` per file when a directory holds thousands.
    Returns the files and one error per path that does not exist.
    """
    found: dict[str, Found] = {}
    errors: list[str] = []
    for raw in paths:
        path = Path(raw).resolve()
        try:
            if path.is_dir():
                _walk(str(path), found, errors)
            elif path.is_file():
                st = path.stat()
                found[str(path)] = Found(path, st.st_size, st.st_mtime_ns)
            else:
                errors.append(f"{raw}: no such file or directory")
        except OSError as exc:
            errors.append(f"{raw}: cannot read: {exc.strerror or exc}")
    return [found[k] for k in sorted(found)], errors


_TRACE_MARKS = (b'"format":"mattrace-trace"', b'"type":"header"')


def _first_line(path: Path, size: int) -> tuple[bytes, bool]:
    """The first line of ``path`` and whether the file ends without a newline (torn).

    ``os.pread`` rather than a file object: this runs once per file, and with thousands
    of small trace files the buffered-IO machinery costs more than the reads.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        head = os.pread(fd, 8192, 0)
        while b"\n" not in head and len(head) < size:   # a long header line (large entrypoint args)
            more = os.pread(fd, 1 << 20, len(head))
            if not more:
                break
            head += more
        torn = bool(size) and os.pread(fd, 1, size - 1) != b"\n"
    finally:
        os.close(fd)
    return head.split(b"\n", 1)[0] + (b"\n" if b"\n" in head else b""), torn


def classify(path: Path, size: int) -> tuple[str, dict[str, Any], bool]:
    """Read the first line: ``("trace" | "results", header record, torn)``.

    ``torn`` is True when the file does not end with a newline (a writer died mid-line).
    Only the format is checked here; a trace header's fields are read in bulk by SQL (for
    a trace the returned record is empty: canonical JSON says what it is without parsing).

    Raises:
        FileProblem: the file is empty, unreadable, or neither a trace nor a results file.
    """
    name = str(path)
    try:
        first, torn = _first_line(path, size)
    except OSError as exc:
        raise FileProblem(name, None, f"cannot read file: {exc.strerror or exc}") from None
    if all(mark in first for mark in _TRACE_MARKS):
        return "trace", {}, torn
    if not first.strip():
        raise FileProblem(name, 1, "file is empty; it is neither a trace nor a results file")
    try:
        record = json.loads(first)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        what = "torn (the writer died while writing it)" if torn and not first.endswith(b"\n") else \
            f"not valid JSON ({exc})"
        raise FileProblem(name, 1, f"the first line is {what}") from None
    if not isinstance(record, dict) or record.get("type") != "header":
        raise FileProblem(name, 1, "not a mattrace trace or results file (the first line is not a header)")
    if record.get("format") == TRACE_FORMAT:
        return "trace", record, torn
    if record.get("format") == RESULTS_FORMAT:
        return "results", record, torn
    raise FileProblem(name, 1, f"not a mattrace trace or results file (format {record.get('format')!r})")


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time as a naive UTC datetime (the store's TIMESTAMP columns are UTC)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


@dataclass
class Results:
    """One results file, read: its run, and the last check line of each trace.

    ``checks`` maps a trace id to ``(line number, the line's text, trace_file)``; the
    lines' verdicts are typed and checked in SQL, which is where they are stored.
    """

    path: str
    run: dict[str, Any]
    checks: dict[str, tuple[int, str, str | None]] = field(default_factory=dict)
    finished: datetime | None = None
    warning: str | None = None


def parse_results(path: Path, header: dict[str, Any], torn: bool) -> Results:
    """Read a results file; the last check line of a trace wins.

    A torn last line (the writer died) is dropped with a warning; any other bad line
    rejects the file.

    Raises:
        FileProblem: a line is not JSON, or a check line has no trace_id or verdicts list.
    """
    name = str(path)
    if header.get("version") != RESULTS_VERSION:
        raise FileProblem(name, 1, f"unsupported results format version {header.get('version')!r} "
                                   f"(this mattrace reads version {RESULTS_VERSION})")
    run = header.get("run")
    if not isinstance(run, dict) or not isinstance(run.get("run_id"), str) or not run["run_id"]:
        raise FileProblem(name, 1, "the results header has no run.run_id")
    results = Results(name, run)
    lines = path.read_bytes().split(b"\n")
    last = len(lines) - 1 if lines[-1] == b"" else len(lines)
    for lineno, raw in enumerate(lines[1:last], start=2):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if torn and lineno == last:
                results.warning = (f"{name}:{lineno}: results file ends in a torn line (its writer "
                                   "stopped mid-write); the line was ignored")
                break
            raise FileProblem(name, lineno, f"line is not valid JSON ({exc})") from None
        kind = record.get("type") if isinstance(record, dict) else None
        if kind == "check":
            trace_id, file = record.get("trace_id"), record.get("trace_file")
            if not isinstance(trace_id, str) or not trace_id or not isinstance(record.get("verdicts"), list):
                raise FileProblem(name, lineno, "a check line needs a trace_id and a 'verdicts' list")
            results.checks[trace_id] = (lineno, raw.decode("utf-8"), file if isinstance(file, str) else None)
        elif kind == "header":
            continue  # a writer that reopened the file appends a header again; the first one counts
        elif kind == "end":
            results.finished = parse_time(record.get("finished"))
        else:
            raise FileProblem(name, lineno, f"unknown results line type {kind!r}")
    return results
