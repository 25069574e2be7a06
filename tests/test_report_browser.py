"""The HTML report in a real browser: it runs without errors, links reach the violating step, and trace text
that looks like markup or script is shown as text and never run.

Headless Chromium is driven over the DevTools protocol (``tests/browser.py``). Screenshots go to
``$MATTRACE_ARTIFACTS`` when it is set (CI keeps them), else to the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import mattrace
from mattrace.contracts import never, no_untrusted_action, step
from mattrace.report.html import write_report
from mattrace.store import Store
from mattrace.store.results import ResultsWriter, new_run
from mattrace.testing import doc, llm, message, retrieval, tool_call, trace, user
from mattrace.tracefile import TraceWriter
from tests.browser import Browser, Page, chromium_path, png_pixels

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# the desk's tickets, its fault campaign and its governed runs: every chart of the report has data
EXAMPLES = ["examples/support_desk/test_support_desk.py", "examples/support_desk/test_fault_campaign.py",
            "examples/support_desk/test_governance.py"]
# the tests that record through the plugin (the others record to their own directories)
PLUGIN_TESTS = "within_the_contracts or resists_the_forum or fault_containment or under_the_governor"

SCRIPT_TAG = "<script>window.__pwned=1</script>"
IMG_TAG = '<img src=x onerror="window.__pwned=1">'
SCRIPT_END = "</script><script>window.__pwned=1</script>"
SVG_ATTR = '"><svg onload=window.__pwned=1>'
JS_URL = "javascript:window.__pwned=1"
LINE_SEP = "before\u2028after"
HOSTILE = [SCRIPT_TAG, IMG_TAG, SCRIPT_END, SVG_ATTR, JS_URL, LINE_SEP]
NON_ASCII = "café → 東京"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if chromium_path() is None:
        pytest.skip("chromium is not installed: apt-get install chromium (the CI script installs it)")
    with Browser() as b:
        yield b


def _artifacts(tmp_path: Path) -> Path:
    configured = os.environ.get("MATTRACE_ARTIFACTS")
    return Path(configured) if configured else tmp_path


def _assert_painted(png: Path) -> None:
    """A real screenshot: over 10 kB, and more than a sliver of it not white."""
    data = png.read_bytes()
    assert len(data) > 10_000, f"{png}: {len(data)} bytes"
    width, height, channels, rows = png_pixels(data)
    white = b"\xff" * channels
    blank = white * width
    inked = sum(sum(1 for x in range(0, len(row), channels) if row[x:x + channels] != white)
                for row in rows if row != blank)
    assert inked > width * height // 100, f"{png}: only {inked} of {width * height} pixels are not white"


def _no_errors(page: Page) -> None:
    errors = page.console_errors()
    assert errors == [], "\n".join(errors)


def test_report_of_the_example_suite_opens_and_links_to_the_first_violation(
        browser: Browser, tmp_path: Path) -> None:
    """Rendered from the support desk's own runs: no console error, every part drawn, and the first failing
    trace's link scrolls its violating step into view, marked."""
    store_dir = tmp_path / "store"
    # only the mattrace plugin: other installed plugins (and PYTEST_ADDOPTS) would just slow the run down
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"} | {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *EXAMPLES, "-k", PLUGIN_TESTS, "-q", "-p", "no:cacheprovider",
         "-p", "_mattrace_pytest", "--mattrace-store", str(store_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with Store.open(store_dir / "mattrace.duckdb", read_only=True) as store:
        report = write_report(store, tmp_path / "report.html")

    page = browser.open(report.as_uri())
    _no_errors(page)
    assert page.evaluate("document.body.dataset.ready") == "1"
    assert page.evaluate("document.querySelectorAll('#overview + table tr').length") > 1
    charts = page.evaluate("Array.from(document.querySelectorAll('.charts figure')).map(function (f) {"
                           " return [f.querySelector('figcaption').textContent, !!f.querySelector('svg.chart')]; })")
    assert charts == [["Compliance per contract", True], ["Containment per fault class", True],
                      ["Governance decisions per rule", True], ["Steps per trace", True]]
    href = page.evaluate("document.querySelector('a.first-violation').getAttribute('href')")
    assert re.fullmatch(r"#t\d+-s\d+", href), href

    page.click("a.first-violation")
    shown = page.wait_for("document.body.dataset.shown", timeout=5)
    assert shown == href[1:]
    row = page.evaluate(f"""(function () {{
        var e = document.getElementById({json.dumps(shown)}), r = e.getBoundingClientRect();
        return {{tag: e.tagName, cls: Array.from(e.classList), top: r.top, bottom: r.bottom,
                 nav: document.querySelector('nav').getBoundingClientRect().bottom, height: window.innerHeight}};
    }})()""")
    assert row["tag"] == "TR" and {"violation", "flash"} & set(row["cls"]), row
    assert row["nav"] <= row["top"] and row["bottom"] <= row["height"], f"the row is not in view: {row}"
    assert page.evaluate(f"!!document.querySelector('#{shown}').closest('section.trace')"
                         ".querySelector('.violation-box')")
    shot = page.screenshot(_artifacts(tmp_path) / "report-first-violation.png")
    _assert_painted(shot)
    _no_errors(page)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a store holding one trace whose every piece of text is markup or script, and that breaks
    two contracts."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    t = trace(
        user(f"{SCRIPT_TAG} refund? {LINE_SEP}"),
        retrieval(IMG_TAG, [doc(SVG_ATTR, f"{SCRIPT_END} e-mail {JS_URL}", trusted=False)], agent=SVG_ATTR),
        llm(IMG_TAG, SCRIPT_END, tool_calls=[("send_email", {"to": JS_URL})], reads=[1]),
        tool_call("send_email", {"to": JS_URL, "body": SCRIPT_TAG, "note": LINE_SEP, "city": NON_ASCII},
                  {"sent": IMG_TAG}, agent=IMG_TAG, side_effect=True, reads=[2]),
        message(SVG_ATTR, f"{SVG_ATTR} {JS_URL}", to="user"),
        name=f"hostile {SCRIPT_END}", config={"model": SVG_ATTR, "note": JS_URL},
        labels={"mattrace.test": f"{IMG_TAG}::{SCRIPT_TAG}"})
    contracts = [no_untrusted_action(), never(step.tool("send_email")).named(f"no mail {SCRIPT_TAG}")]
    checked = mattrace.check(t, contracts)
    assert [v.contract for v in checked.violations] == ["no untrusted action", f"no mail {SCRIPT_TAG}"]

    trace_file = tmp_path / "traces" / f"{SVG_ATTR}.jsonl"
    trace_file.parent.mkdir()
    writer = TraceWriter(trace_file, t)
    for s in t.steps:
        writer.write_step(s)
    writer.seal(t.outcome)
    results = tmp_path / "results" / "hostile" / "main.jsonl"
    with ResultsWriter(results, new_run("hostile", source="pytest")) as out:
        out.write_check(trace_id=t.trace_id, trace_file=trace_file, report=checked, test=None, trial=0, seed=0)
    with Store.open(tmp_path / "mattrace.duckdb") as store:
        ingested = store.ingest([trace_file, results])
        assert ingested.ok and ingested.traces_added == 1 and ingested.verdicts_added == 2, str(ingested)
        return write_report(store, tmp_path / "report.html")


def test_hostile_trace_content_is_shown_as_text_and_never_run(browser: Browser, hostile_report: Path,
                                                              tmp_path: Path) -> None:
    """Script tags, an attribute break-out, an event handler, a javascript: URL and U+2028 in step contents,
    tool arguments and results, agent, contract and trace names: the page shows them and runs none of them."""
    report = hostile_report
    html = report.read_text(encoding="utf-8")
    assert "window.__pwned" in html and SCRIPT_TAG not in html and IMG_TAG not in html

    listed = browser.open(report.as_uri())
    anchor = listed.evaluate("document.querySelector('a.first-violation').getAttribute('href')")
    assert re.fullmatch(r"#t\d+-s\d+", anchor), anchor
    page = browser.open(report.as_uri() + anchor)
    shown = page.wait_for("document.body.dataset.shown", timeout=5)
    assert shown == anchor[1:]
    page.evaluate("new Promise(function (done) { setTimeout(done, 200); })")  # let any handler fire
    assert page.evaluate("typeof window.__pwned") == "undefined"
    _no_errors(page)
    _no_errors(listed)

    section = f"document.getElementById({json.dumps(shown)}).closest('section.trace')"
    assert page.evaluate(f"{section}.querySelectorAll('.violation-box').length") == 2
    text = page.evaluate("document.body.textContent")
    visible = page.evaluate("document.body.innerText")
    for hostile in HOSTILE:
        assert hostile in text, f"{hostile!r} is not shown"
    for hostile in (SCRIPT_TAG, IMG_TAG, SCRIPT_END, SVG_ATTR, JS_URL):
        assert hostile in visible, f"{hostile!r} is not visible"
    assert page.evaluate(f"{section}.querySelector('h3').textContent") == f"hostile {SCRIPT_END}"
    injected = page.evaluate("""({
        scripts: document.scripts.length,
        elements: document.querySelectorAll('img, iframe, object, embed, svg:not(.chart)').length,
        handlers: Array.from(document.querySelectorAll('*')).filter(function (e) {
            return Array.from(e.attributes).some(function (a) { return /^on/i.test(a.name); }); }).length,
        links: Array.from(document.links).filter(function (a) {
            return !/^#/.test(a.getAttribute('href')); }).length
    })""")
    assert injected == {"scripts": 2, "elements": 0, "handlers": 0, "links": 0}, injected
    page.screenshot(_artifacts(tmp_path) / "report-hostile-trace.png")


def test_non_ascii_tool_arguments_are_shown_as_written(browser: Browser, hostile_report: Path) -> None:
    """A tool argument outside ASCII reads in the trace view as it was recorded."""
    listed = browser.open(hostile_report.as_uri())
    anchor = listed.evaluate("document.querySelector('a.first-violation').getAttribute('href')")
    page = browser.open(hostile_report.as_uri() + anchor)
    page.wait_for("document.body.dataset.shown", timeout=5)
    cell = page.evaluate(f"document.getElementById({json.dumps(anchor[1:])}).textContent")
    assert NON_ASCII in cell, cell


def test_the_browser_reports_script_errors_and_csp_violations(browser: Browser, tmp_path: Path) -> None:
    """The error checks above can fail: a thrown error, console.error and a blocked inline script are all seen."""
    page_file = tmp_path / "bad.html"
    page_file.write_text(
        "<!doctype html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">"
        "</head><body><p>x</p><script>window.__ran = 1;</script></body></html>", encoding="utf-8")
    page = browser.open(page_file.as_uri())
    assert page.evaluate("typeof window.__ran") == "undefined"
    errors = page.console_errors()
    assert any("Content Security Policy" in e for e in errors), errors
    page.evaluate("setTimeout(function () { console.error('told'); throw new Error('thrown'); }, 0); 1")
    page.evaluate("new Promise(function (done) { setTimeout(done, 50); })")
    errors = page.console_errors()
    assert any("told" in e for e in errors) and any("thrown" in e for e in errors), errors


def test_png_pixels_reads_every_filter_type() -> None:
    """The screenshot check decodes PNGs itself: each scanline filter round-trips."""
    import zlib

    width, bpp = 5, 3
    rows = [bytes((x * 37 + y * 91 + c * 13) % 256 for x in range(width) for c in range(bpp)) for y in range(5)]

    def predictor(kind: int, row: bytes, prior: bytes, i: int) -> int:
        a = row[i - bpp] if i >= bpp else 0
        b, c = prior[i], prior[i - bpp] if i >= bpp else 0
        if kind == 1:
            return a
        if kind == 2:
            return b
        if kind == 3:
            return (a + b) >> 1
        if kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            return a if pa <= pb and pa <= pc else b if pb <= pc else c
        return 0

    raw, prior = b"", bytes(width * bpp)
    for kind, row in enumerate(rows):
        raw += bytes([kind]) + bytes((row[i] - predictor(kind, row, prior, i)) % 256 for i in range(len(row)))
        prior = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack("!I", len(body)) + kind + body + struct.pack("!I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack("!IIBBBBB", width, len(rows), 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    assert png_pixels(png) == (width, len(rows), bpp, rows)


def test_an_arguments_origin_is_shown_and_links_to_its_step_even_step_0(browser: Browser, hostile_report: Path) -> None:
    """The e-mail's recipient is marked untrusted with a link to the document it was copied from; its body came
    from the user's message (step 0), and that link reaches the row of step 0."""
    listed = browser.open(hostile_report.as_uri())
    anchor = listed.evaluate("document.querySelector('a.first-violation').getAttribute('href')")
    page = browser.open(hostile_report.as_uri() + anchor)
    shown = page.wait_for("document.body.dataset.shown", timeout=5)
    origins = page.evaluate(f"""Array.from(document.getElementById({json.dumps(shown)})
        .querySelectorAll('.origin')).map(function (o) {{
            return [o.className, o.textContent, o.getAttribute('title'),
                    o.querySelector('a.origin-step').getAttribute('href')]; }})""")
    by_arg = {text.split(":", 1)[0].lstrip("\u26a0 "): (cls, text, title, href) for cls, text, title, href in origins}
    t = shown.split("-")[0]
    cls, text, title, href = by_arg["to"]
    assert cls == "origin untrusted" and text.startswith("\u26a0 to: untrusted") and href == f"#{t}-s1"
    assert title.startswith("to is untrusted: found in step 1's result[0].text (") and title.endswith(" match)"), title
    cls, text, title, href = by_arg["body"]
    assert cls == "origin user" and href == f"#{t}-s0"

    page.click(f"#{shown} .origin.user a.origin-step")
    assert page.wait_for(f"document.body.dataset.shown === '{t}-s0' && document.body.dataset.shown",
                         timeout=5) == f"{t}-s0"
    assert page.evaluate(f"document.getElementById('{t}-s0').querySelector('td.idx').textContent") == "0"
    _no_errors(page)
