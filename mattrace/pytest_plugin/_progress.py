"""A live progress bar for a test's trials (a campaign case, or k trials of a live model).

Shown only where someone watches: an interactive terminal, not an xdist worker and not
a CI log (there pytest's own per-test lines say enough). It is transient, so once the
trials end pytest's output continues as if it had never been there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["TrialProgress", "trial_progress"]


class TrialProgress:
    """Advances once per finished trial; thread-safe (concurrent trials finish in any order)."""

    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress = progress
        self._task = task
        self._lock = threading.Lock()

    def advance(self) -> None:
        if self._progress is not None:
            with self._lock:
                self._progress.advance(self._task)


def _console(config: pytest.Config) -> Console | None:
    if hasattr(config, "workerinput"):
        return None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    writer = getattr(reporter, "_tw", None)
    if writer is None or not writer.hasmarkup or not getattr(writer._file, "isatty", lambda: False)():
        return None
    return Console(file=writer._file, force_terminal=True)


@contextmanager
def trial_progress(config: pytest.Config, name: str, trials: int, *,
                   console: Console | None = None) -> Iterator[TrialProgress]:
    """A transient bar over ``trials`` trials of test ``name`` (a no-op when nobody watches)."""
    console = console if console is not None else _console(config)
    if console is None or trials < 2:
        yield TrialProgress(None, None)
        return
    progress = Progress(TextColumn("[bold]mattrace[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("trials"), TimeElapsedColumn(), console=console, transient=True)
    with progress:
        task = progress.add_task(name, total=trials)
        yield TrialProgress(progress, task)
