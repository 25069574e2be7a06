"""The terminal view of a trace comparison: the first divergence in context, then an overview.

A reader of a failed replay asks "where did the run go another way, and what did each
side do there", so the view leads with the one-sentence reason, then one table that
interleaves the two traces from the divergence on — ``old`` and ``new`` rows of the same
index next to each other — after a few steps of shared context (before the divergence
both traces agree, so those rows are shown once, as ``both``). The differing field
follows with both values in full. Markers (``▶``, ``old``/``new``) carry the meaning and
colour only decorates, so the view reads the same in a plain CI log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from mattrace.replay import MISSING, Divergence, describe_step
from mattrace.report._format import pretty_json, readable, step_summary
from mattrace.report.terminal import KIND_STYLES, _cell
from mattrace.trace import Step, Trace

__all__ = ["diff_parts", "print_diff", "render_diff"]

_MAX_VALUE_LINES = 30  # per side in the field detail; `--json` has everything
_SIDE_STYLES = {"both": "dim", "old": "red", "new": "green"}


class _Command(Text):
    """A command to copy: printed whole, however narrow the terminal."""


def render_diff(a: Trace, b: Trace, first: Divergence | None, *, old_path: str | Path | None = None,
                new_path: str | Path | None = None, around: int = 2,
                differences: list[Divergence] | None = None) -> Group:
    """A comparison of two traces as one rich renderable (see :func:`diff_parts`)."""
    return Group(*diff_parts(a, b, first, old_path=old_path, new_path=new_path, around=around,
                             differences=differences))


def print_diff(console: Console, a: Trace, b: Trace, first: Divergence | None, **options: Any) -> None:
    """Print :func:`diff_parts`; command lines stay whole so they can be copied."""
    for part in diff_parts(a, b, first, **options):
        console.print(part, soft_wrap=isinstance(part, _Command))


def diff_parts(a: Trace, b: Trace, first: Divergence | None, *, old_path: str | Path | None = None,
               new_path: str | Path | None = None, around: int = 2,
               differences: list[Divergence] | None = None) -> list[RenderableType]:
    """The comparison as renderables: a verdict line, the two traces, and the divergence in context.

    Args:
        a, b: the old (reference) and new trace.
        first: what :func:`~mattrace.replay._diff.first_divergence` returned for them.
        old_path, new_path: the files they were read from, for the headline and commands.
        around: steps of context before and after the first divergence.
        differences: an overview of every divergence (``diff_summary``) to list at the end.

    Raises:
        ValueError: ``around`` is negative.
    """
    if around < 0:
        raise ValueError(f"around must be >= 0, got {around}")
    if first is None:
        return [Text.assemble(("identical", "bold green"),
                              f" (fingerprint {_fingerprint(a, 16)}): {_steps(len(a.steps))}")]
    parts: list[RenderableType] = [
        Text.assemble(("differ  ", "bold red"), first.reason, overflow="fold"),
        _files(a, b, old_path, new_path),
    ]
    if first.index is not None:
        parts.append(_context(a, b, first, around))
    if first.field != "steps":  # an extra step is the table's last row; its JSON adds nothing
        parts.append(_detail(first))
    for path in (old_path, new_path):
        if path is not None and first.index is not None:
            see = _Command("  see: ")
            see.append(f"mattrace show {path} --step {first.index}", style="bold")
            parts.append(see)
    if differences:
        parts += [Text(""), _overview(differences)]
    return parts


def _fingerprint(t: Trace, length: int) -> str:
    try:
        return t.fingerprint()[:length]
    except ValueError:  # a value canonical JSON refuses (NaN) has no fingerprint
        return "none (the trace holds NaN or Infinity)"


def _steps(n: int) -> str:
    return f"{n} step{'' if n == 1 else 's'}"


def _files(a: Trace, b: Trace, old_path: str | Path | None, new_path: str | Path | None) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for side, t, path in (("old", a, old_path), ("new", b, new_path)):
        where = f"{path}  " if path is not None else ""
        grid.add_row(Text(f"  {side}", style=_SIDE_STYLES[side]),
                     Text(f"{where}{t.name} · {_steps(len(t.steps))} · fingerprint {_fingerprint(t, 12)}"))
    return grid


def _context(a: Trace, b: Trace, first: Divergence, around: int) -> Table:
    """Shared steps before the divergence once, then old and new interleaved by index."""
    assert first.index is not None
    i = first.index
    rows: list[tuple[str, Step | int]] = [("both", a.steps[j]) for j in range(max(0, i - around), i)]
    for j in range(i, i + around + 1):
        for side, t in (("old", a), ("new", b)):
            if j < len(t.steps):
                rows.append((side, t.steps[j]))
            elif j == len(t.steps):
                rows.append((side, j))  # where this trace ends
    steps = [s for _, s in rows if isinstance(s, Step)]
    width = {"index": max((len(str(s.index)) for s in steps), default=1),
             "agent": min(12, max((len(s.agent) for s in steps), default=5)),
             "kind": max((len(s.kind.value) for s in steps), default=4),
             "target": min(14, max((len(s.target or "") for s in steps), default=0))}
    # no marks column (unlike `show`): a differing side effect or source is the field below
    table = Table(show_header=False, show_edge=False, pad_edge=False, box=None, padding=(0, 1), expand=True)
    table.add_column("side", no_wrap=True, width=7)
    for column in ("index", "agent", "kind", "target", "content"):
        table.add_column(column, no_wrap=True, overflow="ellipsis", justify="right" if column == "index" else "left",
                         width=width.get(column), ratio=1 if column == "content" else None)
    for side, s in rows:
        if isinstance(s, int):
            table.add_row(Text(f"  {side}", style=_SIDE_STYLES[side]), "", "", "", "",
                          Text(f"(the {side} trace ends: {_steps(s)})", style="dim", no_wrap=False, overflow="fold"))
            continue
        at = s.index == i and side != "both"
        label = Text.assemble(("▶ " if at else "  ", "bold red"), (side, _SIDE_STYLES[side]))
        table.add_row(label, str(s.index), _cell(s.agent), Text(s.kind.value, style=KIND_STYLES.get(s.kind, "")),
                      _cell(s.target or ""), _cell(step_summary(s)), style="bold" if at else None)
    return table


def _detail(first: Divergence) -> Group:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for side, value in (("old", first.old), ("new", first.new)):
        grid.add_row(Text(f"    {side}", style=_SIDE_STYLES[side]), _value(value))
    return Group(Text.assemble("  ", (first.field, "bold"), overflow="fold"), grid)


def _value(value: Any) -> Text:
    if value is MISSING:
        return Text("<missing>", style="dim")
    lines = pretty_json(value).splitlines()
    if len(lines) > _MAX_VALUE_LINES:
        hidden = len(lines) - _MAX_VALUE_LINES
        lines = [*lines[:_MAX_VALUE_LINES], f"… {hidden} more line(s); see `mattrace diff --json`"]
    return Text("\n".join(lines), overflow="fold")


def _overview(differences: list[Divergence]) -> Group:
    """One line per difference, folded rather than cut: in a CI log nothing scrolls sideways."""
    width = max(len(str(d.index)) for d in differences if d.index is not None) if any(
        d.index is not None for d in differences) else 0
    lines: list[RenderableType] = [Text(f"{len(differences)} difference(s), the first field of each:", style="bold")]
    for d in differences:
        step = d.old_step or d.new_step
        where = f"step {d.index:>{width}}  {describe_step(step)}" if d.index is not None and step else "run"
        if d.field == "steps":
            change = f"only in the {'old' if d.new is MISSING else 'new'} trace"
        else:
            change = f"{d.field}: {_brief(d.old)} → {_brief(d.new)}"
        lines.append(Text.assemble(f"  {where}  ", (change, ""), overflow="fold"))
    return Group(*lines)


def _brief(value: Any) -> str:
    return "<missing>" if value is MISSING else readable(value, 60)
