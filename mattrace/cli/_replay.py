"""``mattrace replay``: run a recorded trace again from its cassette and compare the two.

The replay machinery (and whatever the recorded entry point imports) is loaded only when
the command runs, so ``mattrace --help`` stays fast.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mattrace.cli._common import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_OK,
    CliError,
    Parents,
    console,
    print_json,
)
from mattrace.cli._tracefiles import trace_path

if TYPE_CHECKING:
    from mattrace.cli._common import Adder, Commands


def _add_replay(sub: Commands, common: Parents) -> None:
    rep = sub.add_parser(
        "replay", parents=[common.around, common.json], help="re-run a recorded trace from its cassette and compare",
        description="Run the trace's recorded entry point again inside a record() block whose cassette "
        "answers every boundary call (LLM, tools, retrieval, memory, clock) from the recording: no model, "
        "no network, no API key. Then compare the new trace with the old one. A trace and its cassette are "
        "data: the entry point runs only if your code registered it (@mattrace.record, @mattrace.replayable) "
        "in a module you allow with --allow-module, or you name it with --entrypoint; cassette values are "
        "rebuilt only into classes you allowed.",
        epilog="exit status: 0 identical, 1 the replay diverged (or a call was not in the cassette), "
        "3 identical but the trace or its cassette is not sealed, "
        "2 bad usage, a corrupt trace or cassette, a trace without an entry point, or an entry point "
        "replay was not allowed to run.")
    rep.add_argument("file", metavar="TRACE", type=trace_path,
                     help="a trace file whose header records an entry point ('latest': the newest recording "
                          "under .mattrace/traces, replays left out)")
    rep.add_argument("--cassette", metavar="FILE", help="the cassette (default: the one next to the trace)")
    rep.add_argument("--out", metavar="DIR", help="where the new trace goes (default: replays/ beside the trace)")
    rep.add_argument("--record", choices=("none", "new"), default="none",
                     help="none (default): answer only from the cassette; new: record calls it lacks")
    rep.add_argument("--entrypoint", metavar="MODULE:FUNCTION",
                     help="run this entry point (it must be the one the trace names): you vouch for it; "
                          "for a run recorded by a script (python app.py) name the script: app.py:FUNCTION")
    rep.add_argument("--allow-module", action="append", default=[], metavar="MODULE", dest="allow_modules",
                     help="import MODULE (and its submodules) for the entry points it registers, and rebuild "
                          "cassette values into its dataclasses and pydantic models (repeatable)")
    rep.set_defaults(func=_replay)


def _replay(args: argparse.Namespace) -> int:
    from mattrace.errors import ReplayMismatch
    from mattrace.replay import replay_trace

    try:
        result = replay_trace(args.file, out_dir=args.out, cassette=args.cassette, mode=args.record,
                              entrypoint=args.entrypoint, allow_modules=args.allow_modules)
    except ReplayMismatch as exc:
        raise CliError(str(exc)) from None
    ok = result.identical and not result.mismatches
    # identical to a recording that never finished vouches for its recorded part only: incomplete, not a pass
    code = EXIT_FAILED if not ok else EXIT_INCOMPLETE if result.incomplete else EXIT_OK
    if args.json:
        print_json(result.to_json_dict())
        return code
    out = console()
    if result.identical:
        out.print(f"identical: the replay reproduced {len(result.replayed.steps)} steps "
                  f"(fingerprint {result.replayed.fingerprint()[:16]})", soft_wrap=True)
    else:
        from mattrace.report.diff import print_diff

        print_diff(out, result.original, result.replayed, result.divergence, old_path=args.file,
                   new_path=result.path, around=args.around)
    for problem in result.mismatches[:3]:
        out.print(f"not in the cassette: {problem}", soft_wrap=True, highlight=False)
    if result.unused:
        out.print(f"{len(result.unused)} recorded call(s) were not made again, first: "
                  f"{result.unused[0]['kind']} {result.unused[0]['target']}", soft_wrap=True)
    if result.error:
        out.print(f"the replayed run raised {result.error}", soft_wrap=True, highlight=False)
    for unfinished in result.unfinished:
        out.print(f"incomplete: {unfinished} (its recording never finished, or its end was cut off): the replay "
                  "matched only what it holds", soft_wrap=True, highlight=False)
    out.print(f"new trace: {result.path}", soft_wrap=True, highlight=False)
    return code


COMMANDS: dict[str, Adder] = {  # the group's commands, each with the function that adds its parser
    "replay": _add_replay,
}
