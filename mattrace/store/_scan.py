"""Finding the files to ingest and reading what Python must read: headers and results files.

Trace *steps* are read in bulk by DuckDB (see ``_ingest``); everything here is per file
and small: the first line of each file (it says whether the file is a trace, a results
file or something else, and carries the trace's run metadata), whether the file ends in
a torn line, and the results files, whose few lines decide verdicts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mattrace.trace import canonical_json
from mattrace.tracefile import FORMAT as TRACE_FORMAT
from mattrace.tracefile import VERSION as TRACE_VERSION

__all__ = ["RESULTS_FORMAT", "FileProblem", "Header", "Results", "classify", "expand", "parse_results",
           "parse_time"]

RESULTS_FORMAT = "mattrace-results"
RESULTS_VERSION = 1
_STATUSES = {"pass", "fail", "pending"}
_SEVERITIES = {"safety", "quality"}


class FileProblem(Exception):
    """A file cannot be ingested; ``str()`` is ``path:line: reason``."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}:{line}: {reason}" if line is not None else f"{path}: {reason}")


def expand(paths: list[str | os.PathLike[str]]) -> tuple[list[Path], list[str]]:
    """Files named, and ``*.jsonl`` files found under directories named (sorted, absolute).

    Returns the files and one error per path that does not exist.
    """
    found: dict[Path, None] = {}
    errors: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for sub in sorted(path.rglob("*.jsonl")):
                if sub.is_file():
                    found[sub.resolve()] = None
        elif path.is_file():
            found[path.resolve()] = None
        else:
            errors.append(f"{raw}: no such file or directory")
    return list(found), errors


@dataclass
class Header:
    """What a trace file's header line says, flattened into the ``traces`` columns."""

    trace_id: str
    name: str
    run_label: str | None
    test: str
    trial: int | None
    seed: int | None
    model: str | None
    orchestration: str | None
    config: str
    config_key: str
    labels: str
    entrypoint: str | None


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else canonical_json(value)


def _header(path: str, record: dict[str, Any]) -> Header:
    if record.get("version") != TRACE_VERSION:
        raise FileProblem(path, 1, f"unsupported trace format version {record.get('version')!r} "
                                   f"(this mattrace reads version {TRACE_VERSION})")
    trace = record.get("trace")
    if not isinstance(trace, dict):
        raise FileProblem(path, 1, "the header has no 'trace' object")
    trace_id, name = trace.get("trace_id"), trace.get("name")
    config, labels = trace.get("config", {}), trace.get("labels", {})
    if not isinstance(trace_id, str) or not trace_id or not isinstance(name, str):
        raise FileProblem(path, 1, "the header has no trace_id or name")
    if not isinstance(config, dict) or not isinstance(labels, dict) or \
            not all(isinstance(v, str) for v in labels.values()):
        raise FileProblem(path, 1, "the header's config must be an object and its labels strings")
    trial_label = labels.get("mattrace.trial")
    seed = config.get("seed")
    return Header(
        trace_id=trace_id, name=name, run_label=labels.get("mattrace.run"),
        test=labels.get("mattrace.test") or name,
        trial=int(trial_label) if trial_label is not None and trial_label.lstrip("-").isdigit() else None,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        model=_scalar(config.get("model")), orchestration=_scalar(config.get("orchestration")),
        config=canonical_json(config),
        config_key=canonical_json({k: v for k, v in config.items() if k != "seed"}),
        labels=canonical_json(labels),
        entrypoint=canonical_json(trace["entrypoint"]) if trace.get("entrypoint") is not None else None)


def classify(path: Path) -> tuple[str, Header | dict[str, Any], bool]:
    """Read the first line: ``("trace", Header, torn)`` or ``("results", header record, torn)``.

    ``torn`` is True when the file does not end with a newline (a writer died mid-line).

    Raises:
        FileProblem: the file is empty, unreadable, or neither a trace nor a results file.
    """
    name = str(path)
    try:
        with open(path, "rb") as fh:
            first = fh.readline()
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size:
                fh.seek(-1, os.SEEK_END)
            torn = bool(size) and fh.read(1) != b"\n"
    except OSError as exc:
        raise FileProblem(name, None, f"cannot read file: {exc.strerror or exc}") from None
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
        return "trace", _header(name, record), torn
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
    """One results file, read: its run, and the last check line of each trace."""

    path: str
    run: dict[str, Any]
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    finished: datetime | None = None
    warning: str | None = None


def _check_line(path: str, lineno: int, record: dict[str, Any]) -> dict[str, Any]:
    trace_id = record.get("trace_id")
    if not isinstance(trace_id, str) or not trace_id:
        raise FileProblem(path, lineno, "a check line has no trace_id")
    verdicts = record.get("verdicts")
    if not isinstance(verdicts, list):
        raise FileProblem(path, lineno, "a check line has no 'verdicts' list")
    for v in verdicts:
        if not isinstance(v, dict) or not isinstance(v.get("contract"), str) \
                or v.get("status") not in _STATUSES or v.get("severity", "safety") not in _SEVERITIES:
            raise FileProblem(path, lineno, "a verdict needs a contract name, a status "
                                            "(pass/fail/pending) and a severity (safety/quality)")
        violation = v.get("violation")
        if violation is not None and not isinstance(violation, dict):
            raise FileProblem(path, lineno, f"the violation of {v['contract']!r} is not an object")
    fact = record.get("factuality")
    if fact is not None and not (isinstance(fact, dict) and
                                 all(isinstance(fact.get(k), int) for k in ("claims", "supported"))):
        raise FileProblem(path, lineno, "factuality needs integer 'claims' and 'supported'")
    record["line"] = lineno
    return record


def parse_results(path: Path, header: dict[str, Any], torn: bool) -> Results:
    """Read a results file; the last check line of a trace wins.

    A torn last line (the writer died) is dropped with a warning; any other bad line
    rejects the file.

    Raises:
        FileProblem: a line is not JSON, or a check line is malformed.
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
            check = _check_line(name, lineno, record)
            results.checks[check["trace_id"]] = check
        elif kind == "header":
            continue  # a writer that reopened the file appends a header again; the first one counts
        elif kind == "end":
            results.finished = parse_time(record.get("finished"))
        else:
            raise FileProblem(name, lineno, f"unknown results line type {kind!r}")
    return results
