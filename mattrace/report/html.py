"""The static HTML report: one self-contained file to open from disk, share, or keep as a CI artefact.

```python
from mattrace.report.html import write_report
with Store.open(".mattrace/mattrace.duckdb", read_only=True) as store:
    write_report(store, "report.html", run_id=None, by=("config",))
```

It shows the six metrics and pass^k per configuration side by side, with their
intervals; charts (per-contract compliance, containment per fault class, governance
outcomes, steps per trace) as inline SVG; the failing traces sorted by their first
violation; and a view of every trace (agents as lanes, untrusted provenance, side
effects, faults and governance decisions in place, the first violating step and its
witnesses marked, the commands that show and replay it), drawn on demand by a small
inline script. No network, no CDN: inline CSS, JS and SVG. Text from traces is escaped
in the HTML and only ever set as ``textContent`` by the script; a Content-Security-Policy
allows the page's own script and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from mattrace.report._html_assets import CSS, SCRIPT
from mattrace.report._report_data import ReportData, TraceEntry, read_report_data
from mattrace.report._svg import histogram, rate_bars, stacked_bars
from mattrace.store import Store

__all__ = ["render_report", "write_report"]

_DASH = "\u2013"


def _group(group: dict[str, Any]) -> str:
    if not group:
        return "all traces"
    parts = []
    for key, value in group.items():
        if isinstance(value, str) and value.startswith("{"):
            try:
                value = " ".join(f"{k}={v}" for k, v in json.loads(value).items()) or "{}"
            except ValueError:
                pass
        parts.append(str(value) if key == "config" else f"{key}={value}")
    return " ".join(parts)


def _config(config: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items() if k != "seed") or "{}"


def _cell(value: Any, cls: str = "num") -> str:
    return f'<td class="{cls}">{escape(str(value))}</td>'


def _overview(data: ReportData) -> str:
    containment = {_group(r.group): r for r in data.containment_by_group}
    governance = {_group(r.group): r for r in data.governance_by_group}
    head = ("<tr><th>configuration</th><th class=num>traces</th><th class=num>task success</th>"
            "<th class=num>termination</th><th class=num>compliance</th><th class=num>factuality</th>"
            "<th class=num>pass^k</th><th class=num>containment</th><th class=num>governance</th>"
            "<th class=num>tokens</th><th class=num>cost</th></tr>")
    rows = []
    for m in data.metrics:
        name = _group(m.group)
        c, g = containment.get(name), governance.get(name)
        gov = ("<br>".join(escape(f"{name} {rate}") for name, rate in (("allow", g.allow), ("rewrite", g.rewrite),
                                                                        ("block", g.block)))
               if g is not None and g.decisions else _DASH)
        rows.append("<tr>" + _cell(name, "") + _cell(m.traces) + _cell(m.success) + _cell(m.termination)
                    + _cell(m.compliance) + _cell(m.factuality)
                    + _cell(f"{m.pass_k} k={m.k}" if m.k else _DASH)
                    + _cell(c.containment if c is not None and c.faulted else _DASH)
                    + f'<td class="num">{gov}</td>'
                    + _cell(m.tokens if m.tokens is not None else _DASH)
                    + _cell(f"${m.cost_usd:.4f}" if m.cost_usd is not None else _DASH) + "</tr>")
    if not rows:
        return '<p class="empty">No traces in the store for this report.</p>'
    return (f"<table>{head}{''.join(rows)}</table><p class=muted>Rates with Wilson 95% intervals; pass^k: "
            "the unbiased estimator over tasks (same test and configuration, any seed); containment over "
            "the traces with an injected fault.</p>")


def _charts(data: ReportData) -> str:
    figures = []
    if data.compliance:
        rows = [(f"{r.subject}", r.rate.value, r.rate.low, r.rate.high, str(r.rate)) for r in data.compliance]
        figures.append(("Compliance per contract", rate_bars(rows, title="Compliance per contract")))
    if data.containment_by_fault:
        rows2 = [(_group(r.group), [("contained", r.contained - r.degraded), ("degraded", r.degraded),
                                    ("escaped", r.escaped)]) for r in data.containment_by_fault]
        figures.append(("Containment per fault class", stacked_bars(rows2, title="Containment per fault class")))
    if data.governance_by_rule:
        rows3 = [(_group(r.group), [("allow", r.allowed), ("rewrite", r.rewritten), ("block", r.blocked)])
                 for r in data.governance_by_rule]
        figures.append(("Governance decisions per rule", stacked_bars(rows3, title="Governance decisions per rule")))
    figures.append(("Steps per trace", histogram(data.step_counts, title="Steps per trace")))
    return '<div class="charts">' + "".join(f"<figure><figcaption>{escape(t)}</figcaption>{svg}</figure>"
                                            for t, svg in figures) + "</div>"


def _failing(data: ReportData, index: dict[str, int]) -> str:
    failing = [t for t in data.traces if t.violations]
    if not failing:
        return '<p class="empty">No trace broke a contract.</p>'

    def order(t: TraceEntry) -> tuple[str, int, str]:
        first = t.first_violation or {}
        step = first.get("step")
        return (str(first.get("contract")), int(step) if step is not None else 1 << 30, t.name)

    rows = []
    for t in sorted(failing, key=order):
        first = t.first_violation or {}
        n = index[t.trace_id]
        anchor = f"#t{n}-s{first['step']}" if first.get("step") is not None else f"#trace-{n}"
        at = f"step {first['step']}" if first.get("step") is not None else "at the end"
        trial = f" <span class=muted>trial {t.trial}</span>" if t.trial is not None else ""
        rows.append(f'<tr><td><a class="first-violation" href="{anchor}">{escape(t.name)}</a>{trial}</td>'
                    f"<td>{escape(str(first.get('contract')))} <span class=muted>[{escape(str(first.get('severity')))}]"
                    f"</span></td><td class=num>{escape(at)}</td><td>{escape(str(first.get('reason') or ''))}</td>"
                    f"<td class=num>{len(t.violations)}</td></tr>")
    return ("<table><tr><th>trace</th><th>first violation</th><th class=num>where</th><th>why</th>"
            f"<th class=num>violations</th></tr>{''.join(rows)}</table>")


def _warnings(t: TraceEntry) -> str:
    """The verdicts of a trace not to take at face value: vacuous passes, undecided contracts."""
    cells = []
    for kind in ("incomplete", "vacuous"):
        found = [w for w in t.warnings if w["kind"] == kind]
        if found:
            why = "\n".join(f"{w['contract']}: {w['reason']}" for w in found)
            cells.append(f'<span class="warn-{kind}" title="{escape(why)}">{len(found)} {kind}</span>')
    return " ".join(cells)


def _index(data: ReportData, index: dict[str, int]) -> str:
    rows = []
    for t in data.traces:
        n = index[t.trace_id]
        status = escape(str(t.status))
        seed = t.config.get("seed", t.trial)   # runs of one configuration differ by seed: without it they look alike
        rows.append(f'<tr><td><a href="#trace-{n}">{escape(t.name)}</a></td><td>{escape(_config(t.config))}</td>'
                    f'<td class="num seed">{escape("" if seed is None else str(seed))}</td>'
                    f'<td class="status-{status}">{status}</td><td class=num>{len(t.steps)}</td>'
                    f"<td class=num>{len(t.violations)}</td><td>{_warnings(t)}</td></tr>")
    return ("<table><tr><th>trace</th><th>configuration</th><th class=num>seed</th><th>outcome</th>"
            "<th class=num>steps</th><th class=num>violations</th>"
            "<th title=\"a vacuous pass never applied to the trace; an incomplete "
            f"verdict needs the end of a run the trace does not hold\">warnings</th></tr>{''.join(rows)}</table>")


def _payload(data: ReportData) -> str:
    traces = []
    for t in data.traces:
        first = t.first_violation
        traces.append({"name": t.name, "test": t.test, "trial": t.trial, "config": _config(t.config),
                       "status": t.status, "path": t.path, "replayable": t.replayable,
                       "first": first.get("step") if first else None, "violations": t.violations,
                       "warnings": t.warnings,
                       "steps": t.steps})
    text = json.dumps({"traces": traces}, separators=(",", ":"), default=str)
    # inside <script>: no "</script>", no "<!--", no line separators that end a JS string
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_report(data: ReportData) -> str:
    """The report as one HTML document."""
    index = {t.trace_id: n for n, t in enumerate(data.traces)}
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    policy = (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; img-src data:; "
              "base-uri 'none'; form-action 'none'")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    scope = f"run {data.run_id}" if data.run_id else "every run in the store"
    failing = sum(1 for t in data.traces if t.violations)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(data.title)}</title><style>{CSS}</style></head>
<body><header><h1>{escape(data.title)}</h1>
<p>{escape(scope)} · {len(data.traces)} traces, {failing} breaking a contract · grouped by
{escape(", ".join(data.by) or "nothing")} · generated {generated} by mattrace</p></header>
<nav><a href="#overview">Overview</a><a href="#charts">Charts</a><a href="#failing">Failing traces</a>
<a href="#traces">All traces</a></nav>
<main>
<h2 id="overview">Overview by configuration</h2>{_overview(data)}
<h2 id="charts">Charts</h2>{_charts(data)}
<h2 id="failing">Failing traces, by first violation</h2>{_failing(data, index)}
<h2 id="traces">All traces</h2>{_index(data, index)}
<div id="views"></div>
</main>
<script type="application/json" id="mattrace-data">{_payload(data)}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def write_report(store: Store, out: str | Path, *, run_id: str | None = None, by: Sequence[str] = ("config",),
                 title: str | None = None) -> Path:
    """Write the report of ``run_id`` (default: every run) to ``out`` and return its path.

    Raises:
        StoreError: an unknown ``by`` item.
        OSError: ``out`` cannot be written.
    """
    html = render_report(read_report_data(store, run_id=run_id, by=by, title=title))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
