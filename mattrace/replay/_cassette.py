"""The cassette: records every boundary result of a run, and serves them back on replay.

A :class:`Cassette` is an interceptor (order ``REPLAY_ORDER``, after governance and
faults) on the recorder of a run. Each call is keyed by ``(kind, target, agent, canonical args)``
plus its occurrence: the third identical call gets the third recorded answer, whatever
else ran in between, so concurrent agents replay deterministically. Modes follow vcrpy:

* ``none``: replay only; a call the cassette does not hold is a :class:`ReplayMismatch`;
* ``once``: record if the cassette file does not exist yet, else replay as ``none``;
* ``new``: replay the calls it holds, record the ones it does not;
* ``all``: always record (the old cassette is replaced when the new one is complete).

Everything is stored redacted, with the run's redactor, as the trace is: args, targets and
agents (matched after redaction), results (bytes, model data and dict keys included) and
errors (message, args and attributes). A secret never lands in a cassette; replay serves
``[REDACTED]`` where the live call returned one.

A :class:`~mattrace.replay.Matcher` (``match=``) compares less: some parts of a call, or its args
with volatile paths and patterns masked (:mod:`._match`); a call nothing matches is an
:class:`~mattrace.errors.UnrecordedCall` (:mod:`._mismatch`).

A cassette is data: the classes its values and errors name are rebuilt only when allowed
(see :mod:`mattrace.replay._trust`); the allowance in force when the cassette is opened
(:func:`~mattrace.replay.allow_modules`) holds for its whole run.
"""

from __future__ import annotations

import asyncio
import os
import random as _random
import threading
import time
import warnings
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from mattrace.errors import EscapedCallWarning, RecordingError, ReplayMismatch, TraceWriteWarning, UnrecordedCall
from mattrace.recording.escapes import call_site
from mattrace.recording.interceptors import REPLAY_ORDER, Answer, Call, CallOutcome
from mattrace.recording.options import RecordMode, record_mode
from mattrace.recording.redact import REDACTED, Redactor
from mattrace.replay._codec import decode_error, decode_value, encode_error, encode_value, float_free
from mattrace.replay._file import CassetteWriter, read_cassette
from mattrace.replay._match import Matcher
from mattrace.replay._mismatch import unrecorded_call
from mattrace.replay._trust import current_allowance
from mattrace.trace import StepKind, canonical_json, fast_canonical_bytes, float_free_canonical_bytes

__all__ = ["Cassette", "cassette_path", "MODES", "RecordMode"]

MODES: tuple[str, ...] = tuple(m.value for m in RecordMode)
_KEYED = frozenset({StepKind.MEMORY_READ, StepKind.MEMORY_WRITE})   # calls whose target is a key
CLOCK = "clock"
GATE_SPINS = 10_000


def cassette_path(trace_path: str | Path) -> Path:
    """Where the cassette of a trace file lives: next to it, ``x.jsonl`` → ``x.cassette``.

    Not ``*.jsonl``, so globs over trace files (``mattrace check traces/*.jsonl``) never
    pick a cassette up.
    """
    path = Path(trace_path)
    return path.with_name(path.name.removesuffix(".jsonl") + ".cassette")


def _key(kind: str, target: str, agent: str, args: Any) -> tuple[str, str, str, str]:
    return kind, target, agent, canonical_json(args)


def _entry_key(entry: dict[str, Any]) -> tuple[str, str, str, str]:
    return _key(entry["kind"], entry["target"], entry.get("agent", ""), entry["args"])


def _taken_args(args: dict[str, Any], redact: Redactor) -> tuple[Any, str | None, bool, bool]:
    """What a cassette keeps of a call's args before the call (code under test and providers
    may change them after): a copy, its canonical JSON, whether it holds no float, and whether
    it is still to be scanned for secrets. Args that are not plain JSON are converted and
    redacted now, as the walk does."""
    flat = float_free(args)
    encoded = float_free_canonical_bytes(args) if flat else fast_canonical_bytes(args)
    if encoded is None:
        return redact.jsonable(args), None, False, False
    copy = dict(args) if flat and type(args) is dict else orjson.loads(encoded)
    return copy, encoded.decode("utf-8"), flat, True


def _plain_args(args: dict[str, Any], redact: Redactor) -> tuple[Any, str | None, bool, bool]:
    """:func:`_taken_args`, scanned now (a replaying cassette matches calls by their redacted
    args before they run): ``redact.jsonable(args)`` when anything in them looks secret."""
    copy, args_json, flat, _ = _taken_args(args, redact)
    if args_json is not None and redact.may_hold_secret(args_json):
        return redact.jsonable(args), None, flat, False
    return copy, args_json, flat, False


def _clean(value: Any, redact: Redactor) -> bool:
    """Whether ``value`` holds nothing ``redact`` would change (so encoding it need not redact).

    Certain only for what the C encoder can write whole: anything else (bytes, models, sets)
    is encoded with redaction, where a secret may hide in a repr or a byte string. (An enum
    member's name, which a repr shows and the encoder does not, is code, not recorded data.)
    """
    if not redact.enabled or value is None or isinstance(value, bool | int | float):
        return True
    try:
        encoded = orjson.dumps(value, option=orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:
        return False
    return not redact.may_hold_secret(encoded)


class Cassette:
    """Recorded answers of one run's boundary calls; an interceptor on its recorder.

    Thread-safe. After the run, :meth:`unused` lists recorded calls nothing asked for and
    :attr:`mismatches` the calls replay could not answer (also raised at the call, but
    code under test may have swallowed the error).
    """

    name = "replay"
    order = REPLAY_ORDER

    def __init__(self, path: str | Path, mode: RecordMode | str = RecordMode.ONCE, *,
                 redact: Redactor | None = None, header: dict[str, Any] | None = None,
                 fsync: bool = False, match: Matcher | None = None) -> None:
        mode = record_mode(mode)
        if match is not None and not isinstance(match, Matcher):
            raise RecordingError(f"match= takes a mattrace.replay.Matcher (Matcher.of(match_on=..., ignore=...)), "
                                 f"got {match!r}")
        self.path = Path(path)
        self.mode = mode
        self.matcher = match if match is not None else Matcher()
        self.redact = redact if redact is not None else Redactor.default()
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str, str, str], deque[dict[str, Any]]] = defaultdict(deque)
        self._recorded: list[dict[str, Any]] = []
        self._served: dict[int, int] = {}          # id(call) -> the sequence number it was served
        self._seq: dict[int, int] = {}             # id(entry) -> its position in the recording
        self._done: list[bool] = []
        self._low = 0                              # every entry before this one has been served
        self._pending: dict[int, Any] = {}
        self._counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self.mismatches: list[ReplayMismatch] = []
        self.next_index: Callable[[], int] = lambda: -1
        self.allowance = current_allowance()
        exists = self.path.exists()
        if mode == "none" and not exists:
            raise UnrecordedCall(f"{self.path}: no cassette to replay from (record mode 'none'); record the run "
                                 "first, or use record mode 'once'", cassette=self.path)
        self.replaying = mode == "none" or (mode == "once" and exists) or (mode == "new" and exists)
        self.recording = mode in ("all", "new") or (mode == "once" and not exists)
        old_header: dict[str, Any] = {}
        if self.replaying:
            found = read_cassette(self.path)
            old_header = found.header
            for entry in found.entries:
                self._seq[id(entry)] = len(self._recorded)
                self._done.append(False)
                self._recorded.append(entry)
                self._queues[self._match_key(entry)].append(entry)
        self.recorded_trace_id: str | None = str(old_header["trace_id"]) if old_header.get("trace_id") else None
        """The id of the trace the cassette was recorded with (None while recording a new one)."""
        # without a configured seed the run's seed is drawn from the global generator, so a
        # program that seeded random before the run still runs the same way every time
        self.seed: int = int(old_header.get("seed", (header or {}).get("seed", _random.getrandbits(63))))
        self._rng = _random.Random(self.seed)
        self._writer: CassetteWriter | None = None
        if self.recording:
            target = self.path if not exists else self.path.with_name(self.path.name + ".partial")
            self._writer = CassetteWriter(target, {**(header or {}), "seed": self.seed}, fsync=fsync)
            for entry in self._recorded if mode == "new" else ():
                self._writer.write_entry(entry)
                self._counts[_entry_key(entry)] += 1   # new calls number their occurrences on

    # -- the interceptor protocol ----------------------------------------------------------

    def before(self, call: Call) -> Answer | None:
        if not self.replaying:   # only recording: the args as they are now, scanned with the entry after the call
            taken = _taken_args(call.args, self.redact)
            with self._lock:
                self._pending[id(call)] = taken
            return None
        pending = _plain_args(call.args, self.redact)
        args = pending[0]
        target, agent = self.redact.text(call.target), self.redact.text(call.agent)
        with self._lock:
            if self.replaying:
                queue = self._queues.get(self.matcher.key(call.kind.value, target, agent, args))
                if queue:
                    entry = queue.popleft()
                    seq = self._seq[id(entry)]
                    self._served[id(call)] = seq
                    index = self.next_index()
                    step = f"step {index}: " if index >= 0 else ""
                    where = f"{step}the recorded result of {call.kind.value} {call.target}"
                    wait = self._gate(seq)
                    if "error" in entry:
                        return Answer(error=decode_error(entry["error"], allowance=self.allowance), wait=wait)
                    try:
                        result = decode_value(entry.get("result"), where, path=self.path, allowance=self.allowance)
                    except ReplayMismatch as exc:   # refused or undecodable: a loose end the run may swallow
                        self.mismatches.append(exc)
                        raise
                    return Answer(result=result, wait=wait)
                if not self.recording:
                    mismatch = self._mismatch(call.kind.value, target, agent, args)
                    self.mismatches.append(mismatch)
                    raise mismatch
            # the args as they were before the call: providers mutate what they are given
            # (litellm adds hidden_params to the metadata dict)
            self._pending[id(call)] = pending
        return None

    def on_escape(self, call: Call) -> str | None:
        """A call that bypassed the chain: replaying, the model must not be asked (refused);
        recording, it goes ahead but the cassette will not hold it (a warning says so)."""
        if self.replaying:
            return (f"it replays from the cassette {self.path} (record mode {self.mode.value}), so the model must "
                    "not be called")
        if self.recording:
            warnings.warn(EscapedCallWarning(
                f"{call_site(3)}: the {call.kind.value} call to {call.target} by {call.agent} bypassed mattrace's "
                f"interceptor chain: it is recorded in the trace but not in the cassette {self.path}, so replaying "
                "this run will stop there; see docs/llm-clients.md for how to route it through the chain"),
                stacklevel=3)
        return None

    def after(self, call: Call, outcome: CallOutcome) -> CallOutcome:
        with self._lock:
            if id(call) in self._served:
                self._finished(self._served.pop(id(call)))
                return outcome
            pending = self._pending.pop(id(call), None)
        if self._writer is not None:
            redact = self.redact
            args, args_json, exact, unscanned = pending if pending is not None else \
                (redact.jsonable(call.args), None, False, False)
            result = outcome.result
            if unscanned and outcome.error is None and float_free(result) and not (
                    call.kind in _KEYED and result is not None and redact.is_secret_key(call.target)):
                # the common call: plain values, encoded and scanned once as the whole line
                entry = {"kind": call.kind.value, "target": call.target, "agent": call.agent, "args": args,
                         "result": encode_value(result)}
                if self._write(entry, args_json, exact, scan=True):
                    return outcome
            if unscanned:
                args, args_json = redact.jsonable(args), None
            entry = {"kind": call.kind.value, "target": redact.text(call.target), "agent": redact.text(call.agent),
                     "args": args}
            if outcome.error is not None:
                entry["error"] = encode_error(outcome.error, redact)
                exact = False
            elif call.kind in _KEYED and result is not None and redact.is_secret_key(call.target):
                entry["result"] = REDACTED   # memory["api_token"]: the key says the value is a secret
            else:
                entry["result"] = encode_value(result, None if _clean(result, redact) else redact)
                exact = exact and float_free(result)
            self._write(entry, args_json, exact)
        return outcome

    def _write(self, entry: dict[str, Any], args_json: str | None = None, exact: bool = False,
               scan: bool = False) -> bool:
        """Append an entry (``args_json``: its args' canonical JSON when known; ``exact``: it
        holds no float); if the file cannot be written the run goes on, without a cassette.

        ``scan``: nothing in the entry was redacted; if its line could hold a secret, nothing
        is written and False is returned (the caller redacts it and writes again).
        """
        with self._lock:
            if self._writer is None:
                return True
            key = _entry_key(entry) if args_json is None else \
                (entry["kind"], entry["target"], entry.get("agent", ""), args_json)
            entry["occurrence"] = self._counts[key]
            try:
                body = self._writer.entry_bytes(entry, float_free=exact)
                if scan and self.redact.may_hold_secret(body):
                    return False
                self._counts[key] += 1
                self._writer.write_entry_bytes(body)
            except OSError as exc:
                warnings.warn(TraceWriteWarning(self._writer.path, self._writer.count, exc), stacklevel=4)
                self._writer.close()
                self._writer = None
            except ValueError as exc:   # NaN in args: no JSON form, so no replay of this run
                warnings.warn(TraceWriteWarning(self._writer.path, self._writer.count, OSError(str(exc))),
                              stacklevel=4)
                self._writer.close()
                self._writer = None
            return True

    # -- delivery order ---------------------------------------------------------------------

    def _finished(self, seq: int) -> None:
        """Mark recorded entry ``seq`` delivered (lock held)."""
        self._done[seq] = True
        while self._low < len(self._done) and self._done[self._low]:
            self._low += 1

    def _gate(self, seq: int) -> Callable[[], Awaitable[None]]:
        """An async wait until every entry recorded before ``seq`` was delivered.

        Live, interleaved tasks finished their calls in some order, and that order is the
        order of their steps; replayed answers are instant, so without this gate the tasks
        would finish in another order. Each loop yields to the other tasks; an entry that
        is never asked for again (the program changed) stops holding others back after
        ``GATE_SPINS`` yields.
        """
        async def wait() -> None:
            for _ in range(GATE_SPINS):
                if self._low >= seq:
                    return
                await asyncio.sleep(0)
        return wait

    # -- clock and randomness --------------------------------------------------------------

    def now(self) -> float:
        """The run's clock: recorded while recording, served in order on replay."""
        key = self.matcher.key(CLOCK, "now", "", {})
        with self._lock:
            queue = self._queues.get(key) if self.replaying else None
            if queue:
                entry = queue.popleft()
                self._finished(self._seq[id(entry)])
                return float(entry["result"])
            if not self.recording:
                mismatch = self._mismatch(CLOCK, "now", "main", {})
                self.mismatches.append(mismatch)
                raise mismatch
        value = time.time()
        self._write({"kind": CLOCK, "target": "now", "agent": "", "args": {}, "result": value})
        return value

    def random(self) -> float:
        """The next number of the run's generator, seeded with the recorded seed."""
        with self._lock:
            return self._rng.random()

    # -- reporting -------------------------------------------------------------------------

    def unused(self) -> list[dict[str, Any]]:
        """Recorded calls that replay never served (the run made fewer or other calls)."""
        with self._lock:
            return [e for queue in self._queues.values() for e in queue]

    def close(self) -> None:
        """Seal the recording (replacing an older cassette only now that the new one is whole)."""
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.seal()
            if writer.path != self.path:
                os.replace(writer.path, self.path)
        except OSError as exc:
            writer.close()
            warnings.warn(TraceWriteWarning(writer.path, writer.count, exc), stacklevel=3)

    def _match_key(self, entry: dict[str, Any]) -> tuple[str, str, str, str]:
        return self.matcher.key(entry["kind"], entry["target"], entry.get("agent", ""), entry["args"])

    def _mismatch(self, kind: str, target: str, agent: str, args: dict[str, Any]) -> UnrecordedCall:
        unused = [e for queue in self._queues.values() for e in queue]
        return unrecorded_call(self.path, self._recorded, unused, kind=kind, target=target, agent=agent, args=args,
                               index=self.next_index(), matcher=self.matcher)
