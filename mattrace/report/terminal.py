"""The terminal view of a trace: a header panel, one table row per step, a detail panel.

Why this layout: the question a reader brings to a trace is almost always "what happened
around step N, and where did its input come from", so the table keeps one line per step
(content or ``args → result``, ellipsized) and puts provenance in a *marks* column —
untrusted sources, side effects, errors and ``reads`` edges (``←`` those the trace records,
``⇠`` those :mod:`mattrace.provenance` infers from the text) — that reads as plain text
without colour. Colour is decoration only: rich drops it when stdout is not a terminal,
and nothing here forces it.

Everything is built as rich renderables and returned, not printed, so the same view can
go to a terminal, a captured test console or an exported HTML/SVG file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.highlighter import JSONHighlighter
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mattrace.report._format import compact, one_line, pretty_json, readable, step_summary, timestamp
from mattrace.report.excerpt import Excerpt, collect
from mattrace.trace import Step, StepKind, Trace, describe_entrypoint

if TYPE_CHECKING:
    from mattrace.provenance import StepReads

__all__ = ["KIND_STYLES", "print_trace", "render_excerpt", "render_trace", "window"]

KIND_STYLES: dict[StepKind, str] = {
    StepKind.MESSAGE: "cyan",
    StepKind.DELEGATE: "blue",
    StepKind.LLM: "magenta",
    StepKind.TOOL: "yellow",
    StepKind.RETRIEVAL: "green",
    StepKind.MEMORY_READ: "bright_blue",
    StepKind.MEMORY_WRITE: "bright_blue",
    StepKind.GOVERNANCE: "bright_magenta",
    StepKind.FAULT: "red",
    StepKind.END: "bold",
}
_MAX_DETAIL_LINES = 60  # per JSON field in the detail panel; `mattrace show --json` has all
_MIN_CONTENT = 30  # columns the content column keeps before it shrinks too
_MAX_READS_SHOWN = 3  # runs of step indices; the rest are counted
_OUTCOME_STYLES = {"success": "green", "failure": "red", "error": "bold red",
                   "timeout": "red", "max_steps": "red"}


def render_trace(trace: Trace, *, step: int | None = None, around: int = 3,
                 width: int | None = None, path: str | Path | None = None,
                 sealed: bool | None = None, torn_line: int | None = None) -> Group:
    """The trace as rich renderables: header panel, step table, and a detail panel.

    Args:
        trace: the trace to show.
        step: show only steps ``step-around .. step+around`` and a detail panel of
            ``step``; ``None`` shows every step and no detail panel.
        around: how many steps of context either side of ``step``.
        width: the width to lay out to (default: the console's width).
        path, sealed, torn_line: where the trace was read from and whether its file was
            sealed (``sealed=False`` is shown as a warning); unknown when ``None``.

    Raises:
        IndexError: ``step`` is not an index of the trace (the message gives the range).
        ValueError: ``around`` is negative.
    """
    if around < 0:
        raise ValueError(f"around must be >= 0, got {around}")
    if step is not None:
        trace.step(step)  # raises IndexError naming the valid range
    lo, hi = window(len(trace.steps), step, around)
    excerpt = collect(trace, trace.steps, range(lo, hi), detail=step)
    return render_excerpt(excerpt, step=step, around=around, width=width, path=path, sealed=sealed,
                          torn_line=torn_line)


def window(count: int, step: int | None, around: int) -> tuple[int, int]:
    """The steps ``lo..hi-1`` a view of ``step`` (None: every step) shows in a run of ``count``."""
    if step is None:
        return 0, count
    return max(0, step - around), min(count, step + around + 1)


def render_excerpt(excerpt: Excerpt, *, step: int | None = None, around: int = 3,
                   width: int | None = None, path: str | Path | None = None,
                   sealed: bool | None = None, torn_line: int | None = None) -> Group:
    """:func:`render_trace` of a trace read once into an :class:`Excerpt` (see :func:`collect`).

    The excerpt must hold the steps :func:`window` names and, with ``step``, that step's detail.
    """
    if around < 0:
        raise ValueError(f"around must be >= 0, got {around}")
    if step is not None and not 0 <= step < excerpt.count:
        raise IndexError(f"step {step} is out of range: trace has steps 0..{excerpt.count - 1}")
    lo, hi = window(excerpt.count, step, around)
    parts: list[RenderableType] = [_header(excerpt, path, sealed, torn_line, width)]
    if excerpt.count:
        parts.append(_StepTable(excerpt, lo, hi, step, width))
    else:
        parts.append(Text("(no steps recorded)", style="dim"))
    if step is not None:
        parts.append(_detail(excerpt, excerpt.steps[step], width, excerpt.reads[step]))
    return Group(*parts)


def print_trace(trace: Trace, console: Console | None = None, **options: Any) -> None:
    """Print :func:`render_trace` of ``trace`` to ``console`` (default: a new stdout console)."""
    console = console or Console(markup=False)
    console.print(render_trace(trace, **options))


# -- header ----------------------------------------------------------------------------------

def _header(excerpt: Excerpt, path: str | Path | None, sealed: bool | None,
            torn_line: int | None, width: int | None) -> Panel:
    grid = _grid()
    _meta_rows(grid, excerpt.trace)
    grid.add_row("outcome", _outcome(excerpt))
    grid.add_row("steps", Text(_step_stats(excerpt)))
    if path is not None:
        grid.add_row("file", Text(str(path)))
    grid.add_row("status", _status(sealed, torn_line))
    return Panel(grid, title="mattrace trace", title_align="left", width=width)


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def _meta_rows(grid: Table, trace: Trace) -> None:
    """What the file's header line says: known before any step is read."""
    grid.add_row("name", Text(trace.name))
    grid.add_row("id", Text(trace.trace_id))
    if trace.config:
        grid.add_row("config", Text(readable(trace.config)))
    if trace.labels:
        grid.add_row("labels", Text(readable(trace.labels)))
    if trace.entrypoint:
        # as the file says it: replay runs it only when the user allows it
        grid.add_row("entry point", Text(describe_entrypoint(trace.entrypoint)))


def _outcome(excerpt: Excerpt) -> Text:
    outcome = excerpt.trace.outcome
    if outcome is None:
        if excerpt.last_kind is StepKind.END:
            return Text("none recorded", style="yellow")
        # imported logs are complete but say nothing of how the run ended
        return Text("none recorded (no end step: unfinished, or imported from a log)", style="yellow")
    text = Text(outcome.status, style=_OUTCOME_STYLES.get(outcome.status, ""))
    if outcome.reason:
        text.append(f": {one_line(outcome.reason, 200)}")
    if outcome.output is not None:
        text.append(f" → {compact(outcome.output, 200)}")
    return text


def _step_stats(excerpt: Excerpt) -> str:
    text = str(excerpt.count)
    if excerpt.agents:
        text += f" · agents: {', '.join(sorted(excerpt.agents))}"
    if excerpt.first_start is not None and excerpt.last_end is not None:
        text += f" · {(excerpt.last_end - excerpt.first_start) / 1e9:.3f} s"
    return text


def _status(sealed: bool | None, torn_line: int | None) -> Text:
    if sealed is None:
        return Text("not read from a file", style="dim")
    if sealed:
        return Text("sealed ✓ (hash chain verified)", style="green")
    text = Text("⚠ NOT SEALED: the recording stopped before the end", style="bold yellow")
    if torn_line is not None:
        text.append(f"; torn line {torn_line} ignored")
    return text


# -- step table ------------------------------------------------------------------------------

class _StepTable:
    """The step table, laid out when rendered, because only then is the width known.

    The content column is what people read, so it gets whatever the other columns leave;
    agent, target and marks give up characters (to an ellipsis) before it drops under
    :data:`_MIN_CONTENT` columns.
    """

    def __init__(self, excerpt: Excerpt, lo: int, hi: int, selected: int | None, width: int | None) -> None:
        self.excerpt, self.lo, self.hi, self.selected, self.width = excerpt, lo, hi, selected, width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.build(min(self.width or options.max_width, options.max_width))

    def build(self, width: int) -> Table:
        """The table for ``width`` columns."""
        steps = [self.excerpt.steps[i] for i in range(self.lo, self.hi)]
        reads = self.excerpt.reads
        used: set[str] = set()
        rows = [(s, _marks(s, reads[s.index], used)) for s in steps]
        layout = _Layout.fit(rows, width, self.selected)
        total = self.excerpt.count
        whole = (self.lo, self.hi) == (0, total)
        return layout.table(rows, self.selected, title=None if whole else f"steps {self.lo}..{self.hi - 1} of {total}",
                            caption=_legend(used))


_Row = tuple[Step, Text]
"""A step and its marks (see :func:`_marks`)."""


class _Layout:
    """The widths of the step table's columns, fitted to some rows; kept for the rows after them."""

    def __init__(self, width: int, index: int, kind: int, caps: dict[str, int]) -> None:
        self.width, self.index, self.kind, self.caps = width, index, kind, caps

    @classmethod
    def fit(cls, rows: Sequence[_Row], width: int, selected: int | None, *, index: int = 0) -> _Layout:
        """Columns for ``rows`` within ``width``; the index column at least ``index`` wide."""
        steps = [s for s, _ in rows]
        index_w = max(index, *(len(f"▶ {s.index}" if s.index == selected else str(s.index)) for s in steps))
        kind_w = max(len(s.kind.value) for s in steps)
        caps = {"agent": min(14, max(cell_len(s.agent) for s in steps)),
                "target": min(16, max(cell_len(s.target or "") for s in steps)),
                "marks": min(20, max(m.cell_len for _, m in rows))}
        floors = {"agent": min(caps["agent"], 6), "target": min(caps["target"], 6),
                  "marks": min(caps["marks"], 8)}
        overhead = 5 + 2 * 6 - 2  # separators between 6 columns, padding without the edges
        while (width - overhead - index_w - kind_w - sum(caps.values()) < _MIN_CONTENT
               and any(caps[k] > floors[k] for k in caps)):
            widest = max((k for k in caps if caps[k] > floors[k]), key=lambda k: caps[k])
            caps[widest] -= 1
        return cls(width, index_w, kind_w, caps)

    def table(self, rows: Sequence[_Row], selected: int | None, *, title: str | None = None,
              caption: str | None = None, header: bool = True) -> Table:
        """``rows`` as a table in these columns (``header``: with the column names)."""
        table = Table(title=title, title_justify="left", caption=caption, caption_justify="left",
                      expand=True, width=self.width, pad_edge=False, show_edge=False,
                      header_style="bold", show_header=header)
        table.add_column("#", justify="right", no_wrap=True, width=self.index)
        table.add_column("agent", no_wrap=True, width=self.caps["agent"])
        table.add_column("kind", no_wrap=True, width=self.kind)
        table.add_column("target", no_wrap=True, width=self.caps["target"])
        table.add_column("content", no_wrap=True, ratio=1)
        table.add_column("marks", width=self.caps["marks"])
        for s, marks in rows:
            mark = s.index == selected
            index = Text(f"▶ {s.index}" if mark else str(s.index), style="bold" if mark else "")
            table.add_row(index, _cell(s.agent),
                          Text(s.kind.value, style=KIND_STYLES.get(s.kind, "")),
                          _cell(s.target or ""), _cell(step_summary(s)), marks,
                          style="reverse" if mark else None)
        return table


def _cell(text: str) -> Text:
    return Text(text, no_wrap=True, overflow="ellipsis")


def _marks(step: Step, read: StepReads, used: set[str]) -> Text:
    parts: list[tuple[str, str]] = []
    if step.error is not None:
        parts.append(("✗ error", "bold red"))
    if step.untrusted:
        parts.append(("⚠ untrusted", "red"))
    if step.side_effect:
        parts.append(("⚡ side effect", "yellow"))
    for arrow, edges, name in (("←", read.explicit, "reads"), ("⇠", read.inferred, "inferred")):
        if edges:
            shown = _ranges(edges)
            parts.append((f"{arrow} {shown}", "dim"))
            used.add(name + "+" if "+" in shown else name)
    used.update(label for label, _ in parts)
    return Text(" ").join(Text(label, style=style) for label, style in parts)


def _ranges(reads: Sequence[int]) -> str:
    """``0,1,2,5`` → ``0-2,5``; past a few runs the rest is counted (``0-2,5,9,+4``)."""
    runs: list[tuple[int, int]] = []
    used = 0   # the edges in the runs shown; the rest are counted, not walked (a step may read thousands)
    for r in reads:
        if runs and r == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], r)
        elif len(runs) == _MAX_READS_SHOWN:
            break
        else:
            runs.append((r, r))
        used += 1
    shown = [str(a) if a == b else f"{a}-{b}" for a, b in runs]
    hidden = len(reads) - used
    return ",".join(shown) + (f",+{hidden}" if hidden else "")


def _legend(used: set[str]) -> str | None:
    notes = []
    more = " (+k: and k more)" if "reads+" in used or "inferred+" in used else ""
    if "reads" in used or "reads+" in used:
        notes.append("← n: reads step n's output" + ("" if "inferred" in used or "inferred+" in used else more))
    if "inferred" in used or "inferred+" in used:
        notes.append("⇠ n: its input holds step n's output (inferred)" + more)
    if "⚠ untrusted" in used:
        notes.append("⚠: content from an untrusted source")
    if "⚡ side effect" in used:
        notes.append("⚡: acts on the outside world")
    return " · ".join(notes) or None


# -- detail panel ----------------------------------------------------------------------------

def _detail(excerpt: Excerpt, step: Step, width: int | None, read: StepReads) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    none = Text("—", style="dim")
    grid.add_row("kind", Text(step.kind.value, style=KIND_STYLES.get(step.kind, "")))
    grid.add_row("agent", Text(step.agent))
    grid.add_row("target", Text(step.target) if step.target else none)
    grid.add_row("content", Text(step.content, overflow="fold") if step.content else none)
    grid.add_row("args", _json(step.args) if step.args is not None else none)
    origins = _origins(excerpt)
    if origins is not None:
        grid.add_row("origins", origins)
    grid.add_row("result", _json(step.result) if step.result is not None else none)
    grid.add_row("error", Text(f"{step.error.type}: {step.error.message}", style="bold red")
                 if step.error else none)
    grid.add_row("sources", _json([s.model_dump(mode="json") for s in step.sources])
                 if step.sources else none)
    described = [_describe_read(excerpt, r) for r in read.explicit] + \
        [_describe_read(excerpt, r, " (inferred)") for r in read.inferred]
    grid.add_row("reads", Text("\n".join(described)) if described else none)
    grid.add_row("side effect", Text("yes ⚡", style="yellow") if step.side_effect else Text("no"))
    grid.add_row("untrusted", Text("yes ⚠", style="red") if step.untrusted else Text("no"))
    grid.add_row("attrs", _json(step.attrs) if step.attrs else none)
    grid.add_row("time", Text(_times(step)) if step.t_start is not None else none)
    title = f"step {step.index} · {step.kind.value}" + (f" {step.target}" if step.target else "")
    return Panel(grid, title=Text(title), title_align="left", width=width)   # a tool name is text, not markup


_TRUST_STYLES = {"untrusted": "bold red", "mixed": "red", "user": "green", "trusted": "green", "generated": "dim"}


def _origins(excerpt: Excerpt) -> Text | None:
    """Where each input value of the detail step came from (mattrace.provenance), untrusted ones marked ⚠."""
    found = excerpt.origins.values if excerpt.origins is not None else ()
    if not found:
        return None
    text = Text()
    for value in found:
        if text:
            text.append("\n")
        mark = "⚠ " if value.trust in ("untrusted", "mixed") else ""
        shown = value.value if len(value.value) <= 40 else value.value[:37] + "..."
        text.append(f"{mark}{value.path}={shown!r} ", style=_TRUST_STYLES[value.trust])
        text.append(value.trust, style=_TRUST_STYLES[value.trust])
        steps = sorted({o.step for o in value.origins})
        if steps:
            first = min(value.origins, key=lambda o: (o.trust != "untrusted", o.step))
            text.append(f" ← step {', '.join(map(str, steps[:4]))} ({first.where}, {first.how})", style="dim")
    return text


def _json(value: Any) -> Text:
    lines = pretty_json(value).splitlines()
    if len(lines) > _MAX_DETAIL_LINES:
        hidden = len(lines) - _MAX_DETAIL_LINES
        lines = [*lines[:_MAX_DETAIL_LINES], f"… {hidden} more line(s); see `mattrace show --json`"]
    text = JSONHighlighter()(Text("\n".join(lines)))
    text.overflow = "fold"
    return text


def _describe_read(excerpt: Excerpt, index: int, how: str = "") -> str:
    if not 0 <= index < excerpt.count:
        return f"{index}{how} (not in this trace)"
    return f"{index}{how}: {excerpt.described[index]}"


def _times(step: Step) -> str:
    text = timestamp(step.t_start)
    if step.t_end is not None and step.t_start is not None:
        text += f" ({(step.t_end - step.t_start) / 1e6:.3f} ms)"
    return text
