"""The static HTML report: what it shows, that it is self-contained, and that trace text stays text."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from mattrace.cli import main
from mattrace.report.html import write_report
from mattrace.store import Store
from tests.test_store_builders import check_line, labelled, write_results, write_trace

HOSTILE = '<script>window.__pwned=1</script></script><img src=x onerror="window.__pwned=1">\u2028'


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Two configurations, one with a failing trace whose step text is hostile."""
    traces = tmp_path / "traces"
    checks = []
    for seed, model in ((0, "alpha"), (1, "alpha"), (0, "beta")):
        t = labelled("test_desk", seed=seed, config={"model": model}, untrusted=model == "beta")
        if model == "beta":
            steps = list(t.steps)
            steps[0] = steps[0].model_copy(update={"content": HOSTILE})
            t = t.model_copy(update={"steps": steps, "name": "test_desk" + HOSTILE})
        path = write_trace(t, traces)
        verdicts = {"no untrusted action": "fail" if model == "beta" else "pass", "terminates": "pass"}
        checks.append(check_line(t.trace_id, verdicts, trace_file=path, test="test_desk"))
    write_results(tmp_path / "results" / "run-1" / "main.jsonl", "run-1", checks)
    db = tmp_path / "mattrace.duckdb"
    with Store.open(db) as s:
        s.ingest([traces, tmp_path / "results"])
    return db


def _report(store: Path, tmp_path: Path, **kwargs: object) -> str:
    with Store.open(store, read_only=True) as s:
        path = write_report(s, tmp_path / "out" / "report.html", **kwargs)  # type: ignore[arg-type]
    return path.read_text(encoding="utf-8")


def test_the_report_compares_configurations_and_lists_failing_traces(store: Path, tmp_path: Path) -> None:
    html = _report(store, tmp_path, by=("model",))
    overview = html.split('id="overview"')[1].split('id="charts"')[0]
    assert "model=alpha" in overview and "model=beta" in overview
    assert "100% [" in overview and "0% [" in overview           # compliance of each, with intervals
    assert html.count("<svg") == 2       # compliance per contract and steps per trace (no faults, no governor)
    failing = html.split('id="failing"')[1].split('id="traces"')[0]
    assert failing.count('class="first-violation"') == 1
    assert re.search(r'href="#t\d+-s3"', failing) and "no untrusted action broken" in failing


def test_the_report_is_self_contained_and_its_script_is_the_only_one_allowed(store: Path, tmp_path: Path) -> None:
    html = _report(store, tmp_path)
    assert not re.search(r'(src|href)="(https?:)?//', html), "nothing may load from the network"
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert policy is not None and f"script-src &#x27;sha256-{digest}&#x27;" in policy.group(1)
    assert "default-src &#x27;none&#x27;" in policy.group(1)


def test_trace_text_never_becomes_markup(store: Path, tmp_path: Path) -> None:
    html = _report(store, tmp_path)
    assert "<script>window.__pwned" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html          # escaped where HTML shows it
    blob = re.search(r'<script type="application/json" id="mattrace-data">(.*?)</script>', html, re.S)
    assert blob is not None and "<" not in blob.group(1) and "\u2028" not in blob.group(1)
    data = json.loads(blob.group(1))                                        # and it is still the same text
    failing = next(t for t in data["traces"] if t["violations"])
    assert failing["name"] == "test_desk" + HOSTILE and failing["steps"][0]["c"] == HOSTILE
    assert failing["first"] == 3 and failing["violations"][0]["witness"] == [1, 3]


def test_one_run_only(store: Path, tmp_path: Path) -> None:
    assert "3 traces" in _report(store, tmp_path, run_id="run-1")
    assert "0 traces" in _report(store, tmp_path, run_id="no-such-run")


def test_mattrace_report_writes_the_file_and_says_where(store: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r" / "report.html"
    assert main(["report", "--store", str(store), "--out", str(out), "--by", "model", "--run", "latest"]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out}"
    assert "model=beta" in out.read_text(encoding="utf-8")
    assert main(["report", "--store", str(store), "--out", str(out), "--by", "colour"]) == 2
    assert "colour" in capsys.readouterr().err


def test_pytest_writes_the_sessions_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_desk='''
import pytest
import mattrace
from mattrace.contracts import never, step

@mattrace.tool(side_effect=True)
def send(to):
    return "sent"

@pytest.mark.mattrace(contracts=[never(step.tool("send") & step.arg("to").matches("evil")).named("no evil")])
def test_send(mat):
    with mat.run():
        send("evil@example.com")
''')
    result = pytester.runpytest("-p", "no:cacheprovider", "--mattrace-report", "out/report.html")
    result.assert_outcomes(failed=1)
    report = pytester.path / "out" / "report.html"
    result.stdout.fnmatch_lines([f"report: {report}"])
    html = report.read_text(encoding="utf-8")
    assert "pytest run" in html and "no evil" in html and 'class="first-violation"' in html


pytest_plugins = ["pytester"]
