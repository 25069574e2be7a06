"""mattrace's exception and warning hierarchy, drawn once here.

Every error names *where* the problem is (file and line, contract location, step index),
because the person reading it is usually looking at a CI log, not a debugger::

    MatTraceError
    ├── TraceFormatError      a trace/cassette/log file is corrupt, tampered or unreadable (file, line)
    ├── RecordingError        the recording API was misused (no active recorder, bad argument)
    │   └── EscapedCall       an LLM call bypassed the interceptor chain in a run that needed it to pass
    ├── LocatedError          something is wrong in a file a person wrote, or in its Python twin (path, line)
    │   ├── ContractError     a contract is malformed (contract, location in the contract file)
    │   ├── FaultSpecError    a fault specification (or fault plan) is malformed or unknown
    │   ├── GovernanceError   a governance policy is malformed, or an action was refused
    │   │   └── ActionBlocked           a refused action, raised to the agent (on_block="raise")
    │   │       └── UnattributedAction  a side effect from code no governed run can claim (a thread)
    │   └── McpError          the MCP boundary: a tool lock file is malformed, a server cannot be started
    ├── ReplayMismatch        a replayed call differs from the recording (step, expected vs got)
    │   ├── UnrecordedCall    a call (or a whole run) the cassette does not hold: re-record (cassette, step, fields)
    │   └── ReplayRefused     a trace or cassette names code replay was not allowed to run (file, step)
    ├── RecordedError         stands in, on replay, for a recorded exception whose class replay may not rebuild
    ├── BudgetExhausted       a search or campaign ran out of budget
    ├── SearchError           a perturbation space or search is malformed, or has nothing to perturb
    └── StoreError            the DuckDB store cannot be opened, is locked, has another schema, or a query failed

    MatTraceWarning (UserWarning)
    ├── TornTailWarning       a trace file was never sealed: the writer died (maybe mid-line)
    ├── TraceWriteWarning     the trace file could not be written; the run goes on in memory
    ├── EscapedCallWarning    an LLM call bypassed the interceptor chain: recorded, but not in the cassette
    └── ImportGapWarning      an imported log did not say everything: where the importer guessed
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ActionBlocked",
    "BudgetExhausted",
    "ContractError",
    "EscapedCall",
    "EscapedCallWarning",
    "FaultSpecError",
    "GovernanceError",
    "ImportGapWarning",
    "LocatedError",
    "MatTraceError",
    "MatTraceWarning",
    "McpError",
    "RecordedError",
    "RecordingError",
    "ReplayMismatch",
    "ReplayRefused",
    "SearchError",
    "StoreError",
    "TornTailWarning",
    "TraceFormatError",
    "TraceWriteWarning",
    "UnattributedAction",
    "UnrecordedCall",
]


class MatTraceError(Exception):
    """Base class of every error mattrace raises on purpose."""


class TraceFormatError(MatTraceError):
    """A trace file cannot be trusted: unreadable, corrupt, out of order or tampered with.

    Args:
        path: the file.
        line: 1-based line number of the first bad line (``None`` when the whole file is bad).
        reason: one sentence saying what is wrong.
    """

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class RecordingError(MatTraceError):
    """The recording API was used in a way that would lose or misattribute steps."""


class EscapedCall(RecordingError):
    """An LLM call reached the model without passing through the run's interceptor chain, in a
    run whose replay, faults or governance needed it to (say, replay-only mode would have
    called the model). Raised before the call is made; the message names the call site, what
    needed the call, and how to route it through the chain.
    """


class LocatedError(MatTraceError):
    """Something is wrong in a file a person wrote (contract file, fault plan, policy), at a line of it.

    The same error types are raised by the Python API, where no file is involved, so the
    location is optional: ``LocatedError(reason)`` is just the reason, while
    ``LocatedError(reason, path=p, line=n)`` reads ``p:n: reason`` (``p: reason`` without a
    line), the form editors and CI logs turn into a link.

    Attributes:
        reason: what is wrong, without the location.
        path: the file, or None when the error is not about a file.
        line: the 1-based line in it, or None when no line applies (a missing file, an
            empty one).
    """

    def __init__(self, reason: str, *, path: str | os.PathLike[str] | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.path = None if path is None else os.fspath(path)
        self.line = line
        if self.path is None:
            super().__init__(reason)
        else:
            super().__init__(f"{self.path}:{line}: {reason}" if line is not None else f"{self.path}: {reason}")


class ContractError(LocatedError):
    """A contract is malformed; the message names the contract and where it was defined."""


class ReplayMismatch(MatTraceError):
    """A call made during replay is not the one the cassette recorded at that point."""


class UnrecordedCall(ReplayMismatch):
    """Replay met a call its cassette does not hold, or there is no cassette to replay from.

    The code under test or its input changed since the cassette was recorded (a prompt was
    edited, a date in it moved on): recording again fixes it, which a refused or unstorable
    value (a plain :class:`ReplayMismatch`) would not.

    Args:
        message: the call, the cassette and how the call differs from the closest recorded one.
        cassette: the cassette file.
        step: the index the call's step got (None when the run had not started).
        call: the call in a few words: ``llm mattrace/travel by planner`` (None: the whole run).
        differences: ``(field, recorded, now)`` for each differing field of the closest recorded
            call, with both values cut around their first difference; empty when the cassette
            holds no such call at all or does not exist.
    """

    def __init__(self, message: str, *, cassette: str | Path | None = None, step: int | None = None,
                 call: str | None = None, differences: tuple[tuple[str, str, str], ...] = ()) -> None:
        super().__init__(message)
        self.cassette = None if cassette is None else str(cassette)
        self.step = step
        self.call = call
        self.differences = differences


class ReplayRefused(ReplayMismatch):
    """A trace or cassette names code (an entry point, a type) that replay was not allowed to run.

    A trace and its cassette are data: they may come from someone else's branch or CI run.
    Replay runs an entry point only when the program registered it or the user named it,
    and rebuilds a value only into a class the user allowed; anything else is this error,
    which names the file (and step) and says how to allow it.

    Args:
        message: what was refused, where, and the exact way to allow it.
        path: the trace or cassette file.
        target: the ``module:name`` the file named.
    """

    def __init__(self, message: str, *, path: str | Path, target: str) -> None:
        super().__init__(message)
        self.path = str(path)
        self.target = target


class RecordedError(MatTraceError):
    """Raised on replay in place of a recorded exception whose class replay may not rebuild.

    The cassette names the class, but importing a module a file names would run its code, so
    an exception of a class that is not already imported (nor registered or allowed) comes back
    as this: the recorded type name, message and JSON-able attributes, which are also set as
    attributes of the error (``error.code``) where their names are free.
    """

    def __init__(self, type_name: str, message: str, attrs: dict[str, object] | None = None) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.attrs = dict(attrs or {})
        for key, value in self.attrs.items():
            if key.isidentifier() and not key.startswith("_") and not hasattr(self, key):
                setattr(self, key, value)


class BudgetExhausted(MatTraceError):
    """A budgeted search or campaign hit one of its limits."""


class FaultSpecError(LocatedError):
    """A fault specification is malformed or names an unknown fault."""


class GovernanceError(LocatedError):
    """A governance policy is malformed, or a blocked action was configured to raise."""


class McpError(LocatedError):
    """The MCP boundary cannot do what it was asked: a tool lock file is malformed, the server
    command cannot be started, or proxy options contradict each other."""


class ActionBlocked(GovernanceError):
    """Raised to the agent for a blocked action when the governor is set to ``on_block="raise"``."""


class UnattributedAction(ActionBlocked):
    """A side-effecting action was called outside any ``record()`` block while a governed run is open.

    Raised by the recording layer, whatever the governor's ``on_block``: the call comes from
    code that lost the run's context (a plain thread, an executor worker), so no governor can
    judge it as part of a run, and running it ungoverned would let it bypass every rule. The
    message says how to carry the context into the thread. See docs/governance.md.
    """


class SearchError(MatTraceError):
    """A perturbation space, budget or search is malformed, or the run has nothing to perturb."""


class StoreError(MatTraceError):
    """The metrics store cannot do what was asked; the message names the store file.

    Raised when the DuckDB file is held by another process past the timeout, was written
    by a newer (or too old) mattrace, is not a DuckDB file, or a query fails.
    """


class MatTraceWarning(UserWarning):
    """Base class of mattrace's warnings: something was recovered, nothing was lost."""


class TornTailWarning(MatTraceWarning):
    """A trace file was never sealed: the recording process died, or is still running.

    Every complete line was read and verified. ``torn`` says whether the file also ends
    in a partial line (ignored); ``line`` is that line, or where the seal is missing.
    """

    def __init__(self, path: str | Path, line: int, steps: int, torn: bool = True) -> None:
        self.path = str(path)
        self.line = line
        self.steps = steps
        self.torn = torn
        what = ("the recording process stopped mid-write; the partial last line was ignored"
                if torn else "the recording stopped, or is still running, before its end was written")
        super().__init__(f"{self.path}:{line}: trace file is not sealed ({what}); "
                         f"recovered {steps} complete step(s)")


class TraceWriteWarning(MatTraceWarning):
    """The trace file could not be written (disk full, I/O error) from step ``index`` on.

    The run is not interrupted for it: every step stays in the recorder's in-memory
    trace, and the file keeps its complete lines up to that step (it reads as unsealed).
    """

    def __init__(self, path: str | Path, index: int, error: OSError) -> None:
        self.path = str(path)
        self.index = index
        self.error = error
        super().__init__(f"{self.path}: cannot write step {index} ({error}); the file stops "
                         "there, the run goes on and keeps every step in memory (rec.trace)")


class EscapedCallWarning(MatTraceWarning):
    """An LLM call bypassed the interceptor chain while the run's cassette was recording: the
    step is in the trace (through the client's own callback) but not in the cassette, so a
    replay of this run cannot answer it. The message names the call site and the fix.
    """


class ImportGapWarning(MatTraceWarning):
    """An importer could not map part of a log exactly, and says where (file, line, positions).

    Nothing was dropped: a tool result was joined to its call by position, or imported as
    its own step (untrusted when the log does not name its tool), a span of no known kind
    became a message step. ``gaps`` lists each kind with its positions; the message is
    ``origin: summary`` as ``mattrace import`` prints it.
    """

    def __init__(self, origin: str, summary: str, gaps: tuple[object, ...] = ()) -> None:
        self.origin = origin
        self.summary = summary
        self.gaps = gaps
        super().__init__(f"{origin}: {summary}")
