"""Running a test body k times (one trial per seed), in sequence or in threads, and judging it.

Trials run inside one pytest item rather than as k parametrized items because pass^k is a
property of the k trials together, and because live LLM calls are I/O-bound: k trials in
threads take about as long as one. Each trial runs in its own copy of the context, so its
``record()`` blocks, agent names and recorder never leak into another trial, and the
traces equal those of a sequential run. Fixtures other than ``mat`` are shared by the trials.
"""

from __future__ import annotations

import contextvars
import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mattrace.pytest_plugin._cassettes import fail_on_misses, misses
from mattrace.pytest_plugin._failure import failure_message, failure_summary, junit_properties, quality_notes
from mattrace.pytest_plugin._marker import MarkerSpec
from mattrace.pytest_plugin._mat import Mat, MatRun
from mattrace.pytest_plugin._progress import trial_progress
from mattrace.pytest_plugin._session import QUALITY_KEY, MatSession

__all__ = ["run_trials"]


def _call(fn: Any, args: dict[str, Any], mat: Mat) -> BaseException | None:
    if "mat" in args:
        args = {**args, "mat": mat}
    try:
        fn(**args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # pytest.fail/skip too: judged after every trial ran
        return exc
    return None


def run_trials(item: pytest.Function, session: MatSession, spec: MarkerSpec, first: Mat) -> None:
    """Call the test function once per trial, then fail it as its trials and contracts say."""
    fn = item.obj
    if inspect.iscoroutinefunction(fn):
        raise pytest.UsageError(f"{item.nodeid}: mattrace trials call the test function directly; "
                                "make it a plain function that runs its coroutine with asyncio.run()")
    argnames = item._fixtureinfo.argnames
    args = {name: item.funcargs[name] for name in argnames}
    mats = [first] + [Mat(session, spec, item.nodeid, trial, first.seed - first.trial + trial)
                      for trial in range(1, spec.trials)]
    workers = min(spec.concurrency or session.settings.concurrency, len(mats))
    with trial_progress(item.config, item.name, len(mats)) as progress:
        def trial(mat: Mat) -> BaseException | None:
            try:
                return _call(fn, args, mat)
            finally:
                progress.advance()

        if workers <= 1:
            errors = [contextvars.copy_context().run(trial, mat) for mat in mats]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mattrace-trial") as pool:
                futures = [pool.submit(contextvars.copy_context().run, trial, mat) for mat in mats]
                errors = [f.result() for f in futures]

    item.user_properties.extend(junit_properties(mats))
    if not session.settings.strict:
        item.stash[QUALITY_KEY] = [note for mat in mats for note in quality_notes(mat)]
    failing: list[tuple[Mat, list[MatRun]]] = [(m, runs) for m in mats if (runs := m.unchecked_failures())]
    unrecorded = misses(mats, errors)
    if unrecorded:   # the runs broke off (or left their recording): that is the failure, not their verdicts
        fail_on_misses(item, session, unrecorded, len(mats))
    raised = [(mat, exc) for mat, exc in zip(mats, errors, strict=True) if exc is not None]
    if raised:
        mat, exc = raised[0]
        if len(mats) > 1:
            exc.add_note(f"mattrace: trial {mat.trial} of 0..{len(mats) - 1} (seed {mat.seed}) raised this; "
                         f"{len(raised)} of {len(mats)} trials raised")
        if failing:
            exc.add_note(_describe(failing))
        raise exc
    if failing:
        pytest.fail(_describe(failing), pytrace=False)


def _describe(failing: list[tuple[Mat, list[MatRun]]]) -> str:
    """The first failing trial in full, each further one in a line per violation."""
    (first, runs), *rest = failing
    return "\n\n".join([failure_message(first, runs), *(failure_summary(m, r) for m, r in rest)])
