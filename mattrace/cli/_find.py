"""``mattrace ls``: the recent trace files, with name, time, outcome, steps and violations.

Finding "the trace of the run I just did" should not take a ``find`` pipeline. Listing reads
only each file's first line (the header) and its last few kilobytes (the seal, which holds
the step count and the outcome), so a folder of large traces lists at once; it does not
verify hash chains (``mattrace verify`` does). Violations come from the store when it has
checked the trace, and are left blank otherwise: ``ls`` never runs contracts itself.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mattrace.cli._common import (
    EXIT_OK,
    TRACES_DIR,
    Parents,
    positive,
    print_json,
    table_console,
)
from mattrace.cli._tracefiles import trace_files, trace_header

if TYPE_CHECKING:
    from mattrace.cli._common import Adder, Commands

_TAIL = 64 * 1024   # the seal is one short line; this much of the end always holds it
_RUN_LABEL, _REPLAY_LABEL = "mattrace.run", "mattrace.replay_of"   # = mattrace.trace's (not imported: fast start)
UNSEALED = "unsealed"


@dataclass(frozen=True)
class Listed:
    """One trace file as ``ls`` shows it."""

    path: str
    name: str
    trace_id: str
    run: str | None
    modified: float
    outcome: str
    """The seal's outcome status, ``unsealed`` for a run that never finished, ``none`` when sealed without one."""
    steps: int
    """The seal's count; for an unsealed file, the complete lines after the header."""
    replay: bool
    violations: int | None = None
    """Failed contracts the store recorded for the trace; None when the store has not checked it."""


def _seal(path: str) -> tuple[dict[str, Any] | None, int]:
    """The seal record of ``path`` (None when unsealed) and the number of complete lines after the header.

    Only the tail is read for a sealed file; an unsealed one has its newlines counted in
    blocks, which is cheap next to parsing its steps."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - _TAIL))
        tail = f.read()
        lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
        last = lines[-1] if tail.endswith(b"\n") else b""
        try:
            record = json.loads(last) if last else None
        except ValueError:
            record = None
        if isinstance(record, dict) and record.get("type") == "seal":
            return record, int(record.get("steps") or 0)
        f.seek(0)
        count = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    return None, max(0, count - 1)


def _listed(path: str) -> Listed | None:
    header = trace_header(path)
    if header is None:
        return None
    try:
        seal, steps = _seal(path)
        modified = os.stat(path).st_mtime
    except OSError:
        return None
    if seal is None:
        outcome = UNSEALED
    else:
        status = seal.get("outcome")
        outcome = str(status.get("status")) if isinstance(status, dict) else "none"
    found = header.get("labels")
    labels: dict[str, Any] = found if isinstance(found, dict) else {}
    run = labels.get(_RUN_LABEL)
    return Listed(path=path, name=str(header.get("name", "")), trace_id=str(header.get("trace_id", "")),
                  run=run if isinstance(run, str) else None, modified=modified, outcome=outcome, steps=steps,
                  replay=_REPLAY_LABEL in labels)


def _violations(store: str, trace_ids: list[str]) -> dict[str, int]:
    """Failed contracts per trace, for the traces the store has verdicts for; empty without a store."""
    if not trace_ids or not os.path.isfile(store):
        return {}
    from mattrace.store import Store

    with Store.open(store, read_only=True) as opened:
        _, rows = opened.query(
            "SELECT trace_id, count(*) FILTER (WHERE status = 'fail') FROM verdicts "
            "WHERE trace_id IN (SELECT unnest(?)) GROUP BY trace_id", [trace_ids])
    return {str(trace_id): int(count) for trace_id, count in rows}


def _matches(item: Listed, args: argparse.Namespace) -> bool:
    if args.name is not None:
        pattern = args.name if any(c in args.name for c in "*?[") else f"*{args.name}*"
        if not fnmatch.fnmatchcase(item.name, pattern):
            return False
    if args.outcome is not None and item.outcome not in args.outcome:
        return False
    return args.run is None or item.run == args.run


def _add_ls(sub: Commands, common: Parents) -> None:
    ls = sub.add_parser(
        "ls", parents=[common.store, common.run, common.json], help="list recent trace files, newest first",
        description="List the trace files under DIR (recursively; default .mattrace/traces), newest first: "
        "name, time, outcome, steps, and the violations the store recorded for each (blank when the store "
        "has not checked it). Reads each file's header and seal only, so big traces list at once; "
        "`mattrace verify` checks their integrity. Replays (replays/ folders) are left out unless --replays. "
        "Wherever a command takes a trace file, 'latest' names the newest one listed here.",
        epilog="exit status: 0 (also when nothing matched), 2 on bad usage or a store that cannot be opened.")
    ls.add_argument("dir", nargs="?", default=TRACES_DIR, metavar="DIR",
                    help=f"where to look (default {TRACES_DIR})")
    ls.add_argument("--name", metavar="TEXT", help="only traces whose name contains TEXT (or matches it as a glob)")
    ls.add_argument("--outcome", action="append", metavar="STATUS",
                    help="only this outcome: success, failure, error, timeout, max_steps, unsealed, none (repeatable)")
    ls.add_argument("--replays", action="store_true", help="list the replays too")
    ls.add_argument("--limit", type=positive, default=20, metavar="N", help="how many (default 20)")
    ls.set_defaults(func=_ls)


def _ls(args: argparse.Namespace) -> int:
    found: list[Listed] = []
    for path in trace_files(args.dir, replays=args.replays):
        item = _listed(path)
        if item is not None and args.run == "latest":   # the run of the newest trace listed
            args.run = item.run or ""
        if item is not None and _matches(item, args):
            found.append(item)
            if len(found) == args.limit:
                break
    counts = _violations(args.store, [item.trace_id for item in found])
    found = [Listed(**{**asdict(item), "violations": counts.get(item.trace_id)}) for item in found]
    if args.json:
        print_json([asdict(item) for item in found])
        return EXIT_OK
    out = table_console()
    if not found:
        matching = " match the filters" if _filtered(args) else ""
        out.print(f"no trace files under {args.dir}{matching}", soft_wrap=True)
        return EXIT_OK
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column, justify in (("time", "left"), ("name", "left"), ("outcome", "left"), ("steps", "right"),
                            ("violations", "right"), ("run", "left"), ("file", "left")):
        table.add_column(column, justify=justify, overflow="fold")   # type: ignore[arg-type]
    for item in found:
        table.add_row(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(item.modified)), item.name,
                      item.outcome + (" (replay)" if item.replay else ""), str(item.steps),
                      "" if item.violations is None else str(item.violations), item.run or "", item.path)
    out.print(table)
    return EXIT_OK


def _filtered(args: argparse.Namespace) -> bool:
    return args.name is not None or args.outcome is not None or args.run is not None


COMMANDS: dict[str, Adder] = {  # the group's commands, each with the function that adds its parser
    "ls": _add_ls,
}
