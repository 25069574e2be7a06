"""The report's stylesheet and script, inlined into every report (no CDN, works from disk).

Each argument whose origin the provenance analysis found is listed under its step with
its trust class and a link to the step it came from; hovering shows where in that
step's output it was found.

The script draws a trace view only when it is asked for (a link, or the address's
``#t3-s16``), from the JSON the page carries: a report of a thousand traces opens as fast
as one of ten. It builds every element with ``textContent``, never from HTML strings, so
text from a trace is shown, never run; the page's Content-Security-Policy allows this
script alone.
"""

from __future__ import annotations

__all__ = ["CSS", "SCRIPT"]

CSS = """
:root { --fg: #1b1b1b; --muted: #666; --line: #ddd; --bad: #c62828; --warn: #f9a825; --ok: #2e7d32;
        --hl: #fff3c4; --accent: #1565c0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0; }
header { padding: 16px 24px; border-bottom: 1px solid var(--line); background: #fafafa; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header p { margin: 0; color: var(--muted); }
nav { padding: 8px 24px; border-bottom: 1px solid var(--line); position: sticky; top: 0; background: #fff; z-index: 2; }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; }
main { padding: 8px 24px 48px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.charts { display: flex; flex-wrap: wrap; gap: 16px 40px; }
.charts figure { margin: 0; }
.charts figcaption { font-weight: 600; margin-bottom: 4px; }
svg.chart text { font: 12px system-ui, sans-serif; fill: var(--fg); }
svg.chart rect.track { fill: #eee; }
svg.chart line.whisker { stroke: #000; stroke-width: 1.5; }
.empty { color: var(--muted); }
.status-success { color: var(--ok); }
.status-failure, .status-error, .status-timeout, .status-max_steps { color: var(--bad); }
.warn-vacuous, .warn-incomplete { color: #8a6d00; cursor: help; }
section.trace { border-top: 2px solid var(--line); margin-top: 24px; padding-top: 8px; }
section.trace h3 { margin: 4px 0; font-size: 16px; }
.violation-box { border-left: 4px solid var(--bad); background: #fdecea; padding: 6px 10px; margin: 8px 0; }
.violation-box a { color: var(--bad); }
code, .cmd { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.cmd { background: #f5f5f5; padding: 2px 6px; display: inline-block; margin: 2px 0; user-select: all; }
table.lanes td { min-width: 120px; max-width: 420px; font-size: 12px; }
table.lanes td.idx { min-width: 0; color: var(--muted); text-align: right; }
table.lanes tr.violation td { background: #fdecea; }
table.lanes tr.violation td.idx { color: var(--bad); font-weight: 700; }
table.lanes tr.witness td { background: var(--hl); }
table.lanes tr:target td, table.lanes tr.flash td { outline: 2px solid var(--bad); }
.step { word-break: break-word; }
.badge { display: inline-block; border-radius: 3px; padding: 0 4px; margin-right: 4px; font-size: 11px;
         background: #e3e3e3; }
.badge.llm { background: #e3f2fd; } .badge.tool { background: #ede7f6; } .badge.retrieval { background: #e0f2f1; }
.badge.fault { background: #ffe0b2; } .badge.governance { background: #f3e5f5; } .badge.end { background: #eee; }
.mark { font-size: 11px; margin-left: 4px; }
.mark.untrusted { color: var(--warn); } .mark.effect { color: var(--bad); } .mark.error { color: var(--bad); }
.muted { color: var(--muted); }
.origin { font-size: 11px; color: var(--muted); cursor: help; }
.origin.untrusted, .origin.mixed { color: var(--bad); }
"""

SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("mattrace-data").textContent);
  var views = document.getElementById("views");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function link(href, text) {
    var a = el("a", null, text);
    a.setAttribute("href", href);
    return a;
  }

  function stepCell(t, s) {
    var box = el("div", "step");
    box.appendChild(el("span", "badge " + s.k, s.k));
    if (s.t) { box.appendChild(el("code", null, s.t)); box.appendChild(document.createTextNode(" ")); }
    if (s.f) { box.appendChild(el("span", "badge fault", "fault: " + s.f)); }
    if (s.g) { box.appendChild(el("span", "badge governance", s.g)); }
    var text = s.c || s["in"];
    if (text) { box.appendChild(el("span", null, text)); }
    if (s.out && !s.c) { box.appendChild(el("span", "muted", " \u2192 " + s.out)); }
    if (s.e) { box.appendChild(el("span", "mark error", " \u2716 " + s.e)); }
    if (s.u) { box.appendChild(el("span", "mark untrusted", "\u26a0 untrusted")); }
    if (s.se) { box.appendChild(el("span", "mark effect", "\u26a1 side effect")); }
    (s.o || []).forEach(function (o) {
      // [argument, trust class, origin step, where in its output, how it was found]
      var bad = o[1] === "untrusted" || o[1] === "mixed";
      var span = el("span", "origin " + o[1], (bad ? "\u26a0 " : "") + o[0] + ": " + o[1] + " \u2190 ");
      span.setAttribute("title", o[0] + " is " + o[1] + ": found in step " + o[2] + "'s " + o[3] +
                        " (" + o[4] + " match)");
      var from = link("#t" + t + "-s" + o[2], String(o[2]));
      from.className = "origin-step";
      span.appendChild(from);
      box.appendChild(el("br"));
      box.appendChild(span);
    });
    if (s.r && s.r.length) {
      var reads = el("span", "muted", " \u2190 ");
      s.r.forEach(function (r, i) {
        if (i) { reads.appendChild(document.createTextNode(",")); }
        reads.appendChild(link("#t" + t + "-s" + r, String(r)));
      });
      box.appendChild(reads);
    }
    return box;
  }

  function render(n) {
    var existing = document.getElementById("trace-" + n);
    if (existing) { return existing; }
    var t = data.traces[n];
    if (!t) { return null; }
    var section = el("section", "trace");
    section.id = "trace-" + n;
    section.appendChild(el("h3", null, t.name));
    var trial = t.trial !== null && t.trial !== undefined ? " \u00b7 trial " + t.trial : "";
    var meta = el("p", "muted", (t.test || "") + trial + " \u00b7 " + t.status + " \u00b7 " +
                  t.steps.length + " steps \u00b7 " + t.config);
    section.appendChild(meta);
    var witness = {};
    var first = t.first;
    t.violations.forEach(function (v) {
      var box = el("div", "violation-box");
      box.appendChild(el("strong", null, v.contract + " [" + v.severity + "]"));
      if (v.step !== null && v.step !== undefined) {
        box.appendChild(document.createTextNode(" first violation at "));
        box.appendChild(link("#t" + n + "-s" + v.step, "step " + v.step));
      }
      box.appendChild(el("div", null, v.reason));
      if (v.witness && v.witness.length) {
        var w = el("div", null, "witness steps: ");
        v.witness.forEach(function (s, i) {
          if (i) { w.appendChild(document.createTextNode(", ")); }
          w.appendChild(link("#t" + n + "-s" + s, String(s)));
          witness[s] = true;
        });
        box.appendChild(w);
      }
      section.appendChild(box);
    });
    if (t.path) {
      var cmds = el("div");
      cmds.appendChild(el("span", "cmd", "mattrace show " + t.path + (first !== null ? " --step " + first : "")));
      if (t.replayable) {
        cmds.appendChild(el("br"));
        cmds.appendChild(el("span", "cmd", "mattrace replay " + t.path));
      }
      section.appendChild(cmds);
    }
    var lanes = [];
    t.steps.forEach(function (s) { if (lanes.indexOf(s.a) < 0) { lanes.push(s.a); } });
    var table = el("table", "lanes");
    var head = el("tr");
    head.appendChild(el("th", null, "#"));
    lanes.forEach(function (a) { head.appendChild(el("th", null, a)); });
    table.appendChild(head);
    t.steps.forEach(function (s) {
      var row = el("tr");
      row.id = "t" + n + "-s" + s.i;
      if (s.i === first) { row.className = "violation"; } else if (witness[s.i]) { row.className = "witness"; }
      row.appendChild(el("td", "idx", s.i));
      lanes.forEach(function (a) {
        var cell = el("td");
        if (a === s.a) { cell.appendChild(stepCell(n, s)); }
        row.appendChild(cell);
      });
      table.appendChild(row);
    });
    section.appendChild(table);
    views.appendChild(section);
    return section;
  }

  function show() {
    var hash = window.location.hash.slice(1);
    var m = /^t(\d+)-s(\d+)$/.exec(hash) || /^trace-(\d+)$/.exec(hash);
    if (!m) { return; }
    var section = render(Number(m[1]));
    if (!section) { return; }
    var target = m[2] !== undefined ? document.getElementById(hash) : section;
    if (target) {
      target.scrollIntoView({block: "center", inline: "nearest"});
      if (target.tagName === "TR") {
        target.classList.add("flash");
        document.body.setAttribute("data-shown", hash);
      }
    }
  }

  window.addEventListener("hashchange", show);
  show();
  document.body.setAttribute("data-ready", "1");
})();
"""
