"""The whole-trace view printed while the trace is read, for traces too long to wait for.

Why: ``mattrace show`` of a run of 200,000 steps used to read every step, lay out one table
of 200,000 rows and only then print its first line, a minute later and gigabytes larger.
Here a short trace (under :data:`FIRST` steps) prints exactly as :func:`render_trace` draws
it; a longer one prints what its header line says at once, then its rows in batches as
they are read, the columns fitted to the first :data:`FIRST` rows and kept for the rest,
and last what only the end of the file can tell: the outcome, the step totals, whether the
file is sealed. The context flow behind the marks column runs along, so the rows read as
in the one-table view; only the rows of one batch are held at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.control import strip_control_codes
from rich.panel import Panel
from rich.text import Text

from mattrace.provenance import ContextFlow
from mattrace.report._format import step_summary
from mattrace.report.excerpt import Excerpt, collect
from mattrace.report.terminal import (
    KIND_STYLES,
    _grid,
    _Layout,
    _legend,
    _marks,
    _meta_rows,
    _outcome,
    _Row,
    _status,
    _step_stats,
    render_excerpt,
)
from mattrace.trace import Step, Trace

__all__ = ["FIRST", "print_trace_stream"]

FIRST = 500
"""Steps read before the first row is printed: the columns are fitted to them."""
_BATCH = 1000


def print_trace_stream(console: Console, trace: Trace, steps: Iterable[Step], *,
                       ended: Callable[[], tuple[bool | None, int | None]], width: int | None = None,
                       path: str | Path | None = None, estimate: Callable[[], int] | None = None) -> None:
    """Print every step of a trace as ``steps`` yields them (see the module's docstring).

    Args:
        trace: the run's metadata (its own ``steps`` are not used); its ``outcome`` is
            read once ``steps`` is exhausted.
        steps: the steps, in order, e.g. a :class:`~mattrace.tracefile.TraceStream`.
        ended: called once ``steps`` is exhausted: whether the file was sealed, and its
            torn line (``(None, None)`` when the trace was not read from a file).
        estimate: how many steps the trace likely holds, asked after the first
            :data:`FIRST`, so that the index column is wide enough for the last of them.
    """
    pending = iter(steps)
    first = list(islice(pending, FIRST))
    if len(first) < FIRST:   # the whole trace: the one-table view
        excerpt = collect(trace, first, range(len(first)))
        sealed, torn = ended()
        console.print(render_excerpt(excerpt, width=width, path=path, sealed=sealed, torn_line=torn))
        return
    grid = _grid()
    _meta_rows(grid, trace)
    if path is not None:
        grid.add_row("file", Text(str(path)))
    console.print(Panel(grid, title="mattrace trace", title_align="left", width=width))
    flow = ContextFlow()
    totals = Excerpt(trace)
    used: set[str] = set()

    def rows(batch: list[Step]) -> list[_Row]:
        out = []
        for s in batch:
            totals.tally(s)
            out.append((s, _marks(s, flow.observe(s), used)))
        return out

    batch = rows(first)
    likely = max(estimate() if estimate is not None else 0, FIRST)
    layout = _Layout.fit(batch, min(width or console.width, console.width), None, index=len(str(likely)))
    console.print(layout.table([], None))   # the column names
    lines = _Lines(console, layout)
    # without colour (a pipe, a file, a CI log) the rows are plain text, written as such
    plain = console.color_system is None and not console.record
    while batch:
        if plain:
            console.file.write("".join(line + "\n" for row in batch for line in lines.plain(row)))
        else:
            console.print(Text("\n").join(line for row in batch for line in lines.of(row)), soft_wrap=True)
        batch = rows(list(islice(pending, _BATCH)))
    legend = _legend(used)
    if legend:
        console.print(Text(legend, style="dim"))
    sealed, torn = ended()
    end = _grid()
    end.add_row("outcome", _outcome(totals))
    end.add_row("steps", Text(_step_stats(totals)))
    end.add_row("status", _status(sealed, torn))
    console.print(Panel(end, title="end of trace", title_align="left", width=width))


class _Lines:
    """The step table's rows drawn as lines of text, as rich's table draws them in ``layout``.

    A table lays out every cell of every row again for each batch, several times the cost
    of the row's text; drawing the row directly keeps a long trace's view to the time it
    takes to read it. A marks cell wraps, as in the table; the others are cut with an ellipsis.
    """

    _SEP = " │ "

    def __init__(self, console: Console, layout: _Layout) -> None:
        self.console = console
        self.widths = (layout.index, layout.caps["agent"], layout.kind, layout.caps["target"])
        self.marks = layout.caps["marks"]
        self.content = max(1, layout.width - 15 - sum(self.widths) - self.marks)   # 5 separators, 10 paddings
        self.blank = Text(self._SEP.join(" " * w for w in (*self.widths, self.content)) + self._SEP)

    def of(self, row: _Row) -> list[Text]:
        """The lines of one row (more than one when its marks wrap)."""
        s, marks = row
        line = Text(str(s.index).rjust(self.widths[0]))
        cells = ((s.agent, self.widths[1], ""), (s.kind.value, self.widths[2], KIND_STYLES.get(s.kind, "")),
                 (s.target or "", self.widths[3], ""), (step_summary(s), self.content, ""))
        for text, width, style in cells:
            line.append(self._SEP)
            cell = Text(text, style=style)
            cell.truncate(width, overflow="ellipsis", pad=True)
            line.append_text(cell)
        line.append(self._SEP)
        return [line + part if i == 0 else self.blank + part for i, part in enumerate(self._wrapped(marks))]

    def plain(self, row: _Row) -> list[str]:
        """:meth:`of` without styles, as text: what rich prints of it where there is no colour."""
        s, marks = row
        cells = (str(s.index).rjust(self.widths[0]), _fit(s.agent, self.widths[1]), _fit(s.kind.value, self.widths[2]),
                 _fit(s.target or "", self.widths[3]), _fit(step_summary(s), self.content))
        line = self._SEP.join(cells) + self._SEP
        text = marks.plain
        if cell_len(text) <= self.marks:
            return [line + text + " " * (self.marks - cell_len(text))]
        blank = self.blank.plain
        return [(line if i == 0 else blank) + part.plain for i, part in enumerate(self._wrapped(marks))]

    def _wrapped(self, marks: Text) -> list[Text]:
        """The marks cell's lines, wrapped as the table wraps them, each padded to the column."""
        parts = list(marks.wrap(self.console, self.marks)) if marks else [Text()]
        for part in parts:
            part.truncate(self.marks, pad=True)
        return parts


def _fit(text: str, width: int) -> str:
    """``text`` in ``width`` cells: padded, or cut with an ellipsis, as rich draws a cell of it."""
    text = strip_control_codes(text)
    simple = text.isascii() and text.isprintable()
    size = len(text) if simple else cell_len(text)
    if size <= width:
        return text + " " * (width - size)
    return (text[:width - 1] if simple else set_cell_size(text, width - 1)) + "…"
