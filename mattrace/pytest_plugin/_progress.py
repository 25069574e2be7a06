"""A live progress bar for a test's trials (a campaign case, or k trials of a live model).

Shown only where someone watches: an interactive terminal, not an xdist worker and not
a CI log (there pytest's own per-test lines say enough). It is transient, so once the
trials end pytest's output continues as if it had never been there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import pytest
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from _mattrace_pytest import INTERACTIVE

__all__ = ["TrialProgress", "trial_progress"]

class TrialProgress:
    """Advances once per finished trial; thread-safe (concurrent trials finish in any order).

    The bar is redrawn only between trials, with pytest's output capture suspended for the
    moment it takes: a live refresh during a trial would land in the test's captured output.
    """

    def __init__(self, progress: Progress | None, task: Any, uncaptured: Any = None) -> None:
        self._progress = progress
        self._task = task
        self._uncaptured = uncaptured
        self._lock = threading.Lock()

    def _draw(self, action: Any) -> None:
        with self._lock, (self._uncaptured() if self._uncaptured is not None else nullcontext()):
            action()

    def start(self) -> None:
        if self._progress is not None:
            self._draw(self._progress.start)

    def advance(self, description: str | None = None) -> None:
        if self._progress is not None:
            progress = self._progress
            def draw() -> None:
                progress.advance(self._task)
                if description is not None:
                    progress.update(self._task, description=description)
                progress.refresh()
            self._draw(draw)

    def stop(self) -> None:
        if self._progress is not None:
            self._draw(self._progress.stop)


def _console(config: pytest.Config) -> Console | None:
    if hasattr(config, "workerinput") or not config.stash.get(INTERACTIVE, False):
        return None
    writer = getattr(config.pluginmanager.get_plugin("terminalreporter"), "_tw", None)
    return Console(file=writer._file, force_terminal=True) if writer is not None else None


@contextmanager
def trial_progress(config: pytest.Config, name: str, trials: int | None, *,
                   console: Console | None = None, unit: str = "trials") -> Iterator[TrialProgress]:
    """A transient bar over ``trials`` trials (or search runs: ``unit="runs"``; None: no known
    total) of test ``name``; a no-op when nobody watches."""
    console = console if console is not None else _console(config)
    if console is None or (trials is not None and trials < 2):
        yield TrialProgress(None, None)
        return
    progress = Progress(TextColumn("[bold]mattrace[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn(unit), TimeElapsedColumn(), console=console, transient=True,
                        auto_refresh=False)
    capture = config.pluginmanager.get_plugin("capturemanager")
    bar = TrialProgress(progress, progress.add_task(escape(name), total=trials),   # test ids hold [params]
                        getattr(capture, "global_and_fixture_disabled", None))
    bar.start()
    try:
        yield bar
    finally:
        bar.stop()
