"""A test whose run made a call its cassette does not hold: a short failure that says what to do.

From the second session on, the default record mode (``once``) replays each test's runs from
its cassettes; when a prompt or the code changes, a call no longer matches any recorded one.
That is not a bug in the code under test, and a traceback through mattrace's interceptors
says nothing about it. So the test fails with the call that changed (its step, and where the
test's code made it), the differing fields cut around their first difference, the cassette,
and the commands that record again; mattrace's own frames are left out of the traceback
(``--fulltrace`` keeps them), and the contract verdicts of the broken-off runs are not
reported as the test's failure. The runs stay in the store labelled as replays that broke
off, which no metric counts as a task failure.

A mismatch the code under test caught (``except Exception``) fails the test the same way: the
run went down a path its recording never took, so its outcome means nothing.
"""

from __future__ import annotations

import os
import shlex
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

import mattrace
from mattrace.errors import UnrecordedCall
from mattrace.replay import Cassette

if TYPE_CHECKING:
    from mattrace.pytest_plugin._mat import Mat
    from mattrace.pytest_plugin._session import MatSession

__all__ = ["CassetteMismatch", "Miss", "fail_on_misses", "misses"]

_PACKAGE = str(Path(mattrace.__file__).resolve().parent) + os.sep
_IGNORE_EXAMPLE = 'ignore=[r"re:\\d{4}-\\d{2}-\\d{2}"]'


class CassetteMismatch(AssertionError):
    """A run of the test made a call its cassette does not hold (or had no cassette to replay).

    The message names the call, what differs from the closest recorded call, the cassette, and
    the ``--mattrace-record`` command that records again.
    """


CassetteMismatch.__module__ = "mattrace.pytest_plugin"   # how pytest names it: the public home


@dataclass(frozen=True)
class Miss:
    """The first unrecorded call of one trial, and the exception that carried it (if it was raised)."""

    mat: Mat
    error: UnrecordedCall
    raised: bool


def _unrecorded(exc: BaseException | None) -> UnrecordedCall | None:
    """The UnrecordedCall ``exc`` is or was caused by (code under test may have wrapped it)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UnrecordedCall):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def misses(mats: list[Mat], errors: list[BaseException | None]) -> list[Miss]:
    """Per trial, the first call its cassette did not hold: raised, or swallowed by the code under test."""
    found = []
    for mat, exc in zip(mats, errors, strict=True):
        raised = _unrecorded(exc)
        if raised is not None:
            found.append(Miss(mat, raised, True))
            continue
        swallowed = next((m for run in mat.runs if run.recorder is not None
                          for i in run.recorder.interceptors if isinstance(i, Cassette)
                          for m in i.mismatches if isinstance(m, UnrecordedCall)), None)
        if swallowed is not None:
            found.append(Miss(mat, swallowed, False))
    return found


def _ours(tb: types.TracebackType) -> bool:
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE)


def user_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The frames of the test's own code: from the first frame outside mattrace up to the next one inside it.

    Leading frames are the plugin calling the test; trailing ones are the interceptor chain
    and the cassette, which say nothing about the call that changed.
    """
    frames: list[types.TracebackType] = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    start = next((i for i, f in enumerate(frames) if not _ours(f)), len(frames))
    stop = next((i for i in range(start, len(frames)) if _ours(frames[i])), len(frames))
    kept: types.TracebackType | None = None
    for frame in reversed(frames[start:stop]):
        kept = types.TracebackType(kept, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    return kept


def _place(tb: types.TracebackType | None) -> str:
    """``app.py:9 (trip)``: where the test's code made the call (the last frame it kept)."""
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    code = tb.tb_frame.f_code
    try:
        shown = os.path.relpath(code.co_filename)
    except ValueError:
        shown = code.co_filename
    return f", called at {shown}:{tb.tb_lineno} ({code.co_name})"


def _trial(mat: Mat) -> str:
    trials = mat.spec.trials
    return f"trial {mat.trial} of 0..{trials - 1}, seed {mat.seed}" if trials > 1 else f"seed {mat.seed}"


def message(test: str, found: list[Miss], trials: int, session: MatSession, tb: types.TracebackType | None) -> str:
    """The failure text: the call, how it differs, the cassette, and how to record again."""
    first = found[0]
    error, command = first.error, f"pytest {shlex.quote(test)}"
    count = f"; {len(found)} of {trials} trials" if trials > 1 else ""
    mode = session.settings.record_mode
    if error.call is None:   # no cassette at all (record mode none)
        return "\n".join([
            f"mattrace: {test} has no cassette to replay from (record mode {mode}; {_trial(first.mat)}{count})",
            f"  cassette: {error.cassette}",
            "Record it first (the model is called, for real if the test uses a live one):",
            f"    {command} --mattrace-record=once"])
    lines = [f"mattrace: {test} made a call its cassette does not hold ({_trial(first.mat)}{count})",
             f"  step {error.step}: {error.call}{_place(tb)}"]
    if error.differences:
        lines.append("  what differs from the closest recorded call:")
        lines += [f"    {path}: expected {old}, got {new}" for path, old, new in error.differences]
    else:
        lines.append(f"  {str(error).splitlines()[0]}")
    if not first.raised:
        lines.append("  (the code under test caught the error; its run went on without the recording)")
    matcher = session.matcher(first.mat.spec)
    lines += [f"  cassette: {error.cassette} (record mode {mode})",
              *([f"  matching: {matcher.describe()}"] if matcher is not None else []),
              "The code under test or its input changed since the cassette was recorded. Record again:",
              f"    {command} --mattrace-record=new    the calls that changed; the rest still replays",
              f"    {command} --mattrace-record=all    every call afresh",
              "Input that changes on every run (a date, an id)? Leave it out of matching: "
              f"@pytest.mark.mattrace({_IGNORE_EXAMPLE}) or the ini key mattrace_ignore (docs/replay.md)."]
    return "\n".join(lines)


def fail_on_misses(item: pytest.Function, session: MatSession, found: list[Miss], trials: int) -> NoReturn:
    """Fail the test with :class:`CassetteMismatch`, its traceback cut to the test's own frames."""
    __tracebackhide__ = True
    first = found[0]
    keep = item.config.getoption("fulltrace", False)
    tb = first.error.__traceback__ if keep else user_traceback(first.error.__traceback__) if first.raised else None
    text = message(item.nodeid, found, trials, session, None if keep else tb)
    if tb is None:
        pytest.fail(text, pytrace=False)
    raise CassetteMismatch(text).with_traceback(tb) from None
