"""How a cassette joins every recorded run, and the clock and randomness helpers.

``mattrace.record()`` asks its extensions to join each new recorder; this one
attaches a :class:`Cassette` (unless ``cassette=False`` or the trace is kept in memory),
labels a run the cassette answers alone as a replay of the recorded trace (``mattrace.replay_of``),
and seeds the global ``random`` with the run's seed, so code that uses ``random`` replays
too. Concurrent runs share the global generator, so code that must replay under
concurrency draws from :func:`random` (the run's own generator) instead.
"""

from __future__ import annotations

import random as _random
import time
import warnings
from pathlib import Path
from typing import cast

from mattrace.errors import TraceWriteWarning
from mattrace.recording.context import active_recorder
from mattrace.recording.options import RecordOptions, record_mode
from mattrace.recording.recorder import Recorder
from mattrace.replay._cassette import Cassette, cassette_path
from mattrace.trace import REPLAY_LABEL

__all__ = ["active_cassette", "join_run", "now", "random"]


def join_run(recorder: Recorder, options: RecordOptions) -> Cassette | None:
    """The cassette of a new run (unless ``cassette=False``): the recorder extension named
    in ``mattrace.recording.extensions.EXTENSIONS``."""
    where = options.get("cassette", True)
    if where is False or where is None:
        return None
    path = cassette_path(recorder.path) if where is True else Path(cast(str, where))
    seed = recorder.config.get("seed")
    try:
        cassette = Cassette(path, record_mode(options.get("record_mode", "once")), redact=recorder.redactor,
                            fsync=bool(options.get("fsync")), match=options.get("match"),
                            header={"trace_id": recorder.trace_id, "name": recorder.name,
                                    **({"seed": seed} if type(seed) is int else {})})
    except OSError as exc:   # like the trace file: a disk problem never stops the run
        warnings.warn(TraceWriteWarning(cassette_path(recorder.path) if where is True else Path(str(where)), 0, exc),
                      stacklevel=4)
        return None
    cassette.next_index = lambda: recorder.next_index
    if cassette.replaying and not cassette.recording and cassette.recorded_trace_id:
        # every answer will come from the recording: the run repeats it, it is not new evidence,
        # and the store leaves it out of the metrics by this label (volatile: not fingerprinted)
        recorder.add_label(REPLAY_LABEL, cassette.recorded_trace_id)
    _random.seed(cassette.seed)
    return cassette


def active_cassette() -> Cassette | None:
    """The cassette of the innermost ``record()`` block, if it has one."""
    rec = active_recorder()
    if rec is None:
        return None
    for interceptor in rec.interceptors:
        if isinstance(interceptor, Cassette):
            return interceptor
    return None


def now() -> float:
    """Seconds since the epoch, as ``time.time()``; recorded in a run and replayed in order."""
    cassette = active_cassette()
    return cassette.now() if cassette is not None else time.time()


def random() -> float:
    """A number in [0, 1) from the run's generator (seeded with the recorded seed) outside any
    shared state; ``random.random()`` outside a run."""
    cassette = active_cassette()
    return cassette.random() if cassette is not None else _random.random()
