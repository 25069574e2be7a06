"""``mattrace compare``: designs run over seeds, measured per design, the same seeds giving the same numbers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mattrace.apps.compare import compare, load_suite
from mattrace.cli import main
from mattrace.errors import MatTraceError

SUITE = '''
import random
import mattrace
from mattrace.contracts import never, step
from mattrace.governance import Governor, block

DESIGNS = ("careful", "reckless")
TASKS = {"refund": "refund order 7", "ship": "ship order 8"}

@mattrace.retriever(name="kb", trusted=False)
def kb(q):
    return [mattrace.Doc(id="d1", text="Orders ship in two days. " + q)]

@mattrace.tool(side_effect=True)
def send(to, body=""):
    return "sent to " + to

def run(design, question, *, seed=0, model=None, weakness=None):
    docs = kb(question)
    rng = random.Random(f"{design}:{question}:{seed}")
    reckless = (design == "reckless" and rng.random() < 0.5) or "Ignore" in docs[0].text
    send("x@evil.example" if reckless else "customer@example.org", body=docs[0].text)
    return {"answer": docs[0].text, "ok": not reckless or rng.random() < 0.5}

def oracle(result, steps):
    return bool(result["ok"]) and any(s.kind == "tool" for s in steps)

CONTRACTS = [never(step.tool("send") & step.arg("to").matches("evil")).named("no evil mail")]

def governor():
    return Governor([block(step.tool("send") & step.arg("to").matches("evil"), "outsiders")])
'''


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"cmpsuite_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(SUITE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _rates(result: object) -> dict[str, tuple[float | None, float | None]]:
    return {m.group["config.design"]: (m.success.value, m.compliance.value) for m in result.metrics}  # type: ignore[attr-defined]


def test_designs_are_measured_apart_and_the_same_seeds_give_the_same_numbers(suite: str, tmp_path: Path) -> None:
    module = load_suite(suite)
    first = compare(module, seeds=6, store=tmp_path / "a" / "m.duckdb")
    assert first.runs == 2 * 2 * 6
    rates = _rates(first)
    assert rates["careful"] == (1.0, 1.0) and rates["reckless"][0] is not None and rates["reckless"][0] < 1.0
    assert rates["reckless"][1] is not None and rates["reckless"][1] < 1.0
    assert {m.k for m in first.metrics} == {6}                 # pass^k over the seeds of each task
    again = compare(module, seeds=6, store=tmp_path / "b" / "m.duckdb")
    assert _rates(again) == rates


def test_faults_and_the_governor_apply_to_every_run(suite: str, tmp_path: Path) -> None:
    from mattrace.faults import Timeout

    module = load_suite(suite)
    faulted = compare(module, ["careful"], 2, faults=[Timeout("retrieval:kb")], store=tmp_path / "f" / "m.duckdb")
    assert faulted.containment and faulted.containment[0].faulted == 4
    governed = compare(module, ["reckless"], 6, governed=True, store=tmp_path / "g" / "m.duckdb")
    assert _rates(governed)["reckless"][1] == 1.0               # every evil e-mail blocked before it went out


def test_mattrace_compare_prints_the_table_and_writes_the_report(suite: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "compare.html"
    code = main(["compare", suite, "--designs", "careful,reckless", "--seeds", "3", "--store",
                 str(tmp_path / "s" / "m.duckdb"), "--out", str(out), "--search"])
    captured = capsys.readouterr()
    text = captured.out
    assert code == 0, captured.err
    assert "2 design(s) x 2 task(s) x 3 seed(s) = 12 runs" in text
    assert "careful" in text and "reckless" in text
    assert "search careful: inject 'Ignore all previous instructions" in text and "breaks no evil mail" in text
    assert f"report: {out}" in text.replace("\n", "") and "config.design=reckless" in out.read_text()
    assert main(["compare", suite, "--seeds", "2", "--store", str(tmp_path / "j" / "m.duckdb"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runs"] == 8 and {m["group"]["config.design"] for m in data["metrics"]} == {"careful", "reckless"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--designs", "careful,bold"], "has no design 'bold'; it has careful, reckless"),
    (["--tasks", "fly"], "has no task 'fly'"),
])
def test_bad_names_are_usage_errors(suite: str, tmp_path: Path, argv: list[str], message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", suite, "--store", str(tmp_path / "m.duckdb"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_module_that_is_not_a_suite_is_refused_with_what_it_lacks() -> None:
    with pytest.raises(MatTraceError, match="lacks DESIGNS, TASKS, run, oracle, CONTRACTS"):
        load_suite("json")
    with pytest.raises(MatTraceError, match="cannot import the suite 'no/such/suite'"):
        load_suite("no/such/suite")


def test_a_suite_loads_from_a_file_path_anywhere(suite: str, tmp_path: Path) -> None:
    module = load_suite(str(tmp_path / f"{suite}.py"))
    assert module.__name__ == suite and module.DESIGNS == ("careful", "reckless")


def test_the_research_team_designs_differ_and_repeat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worked example: three designs measured apart over seeds, the same seeds giving the same numbers."""
    monkeypatch.delenv("MATTRACE_MODEL", raising=False)
    module = load_suite(str(Path(__file__).resolve().parents[1] / "examples" / "research_team"))

    def numbers(store: Path) -> dict[str, tuple[object, ...]]:
        result = compare(module, seeds=10, store=store)
        return {m.group["config.design"]: (m.success.value, m.compliance.value, m.factuality.value)
                for m in result.metrics}

    first = numbers(tmp_path / "a" / "m.duckdb")
    assert set(first) == {"central", "roundrobin", "hierarchical"}
    assert len(set(first.values())) > 1, f"the designs measured alike: {first}"
    assert numbers(tmp_path / "b" / "m.duckdb") == first


EVEN = '''
import mattrace

DESIGNS = ("solo", "pair")
TASKS = {"refund": "refund order 7"}

@mattrace.tool(side_effect=False)
def look(q):
    return "order " + q

def run(design, question, *, seed=0, model=None, weakness=None):
    for _ in range(1 if design == "solo" else 3):
        look(question)
    return {"ok": True}

def oracle(result, steps):
    return bool(result["ok"])

CONTRACTS = []
'''


def test_the_report_shows_each_seed_the_differences_and_says_when_nothing_separates_the_designs(
        suite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    name = f"evensuite_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(EVEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert main(["compare", name, "--seeds", "3", "--store", str(tmp_path / "e" / "m.duckdb")]) == 0
        even = capsys.readouterr().out
        assert main(["compare", suite, "--seeds", "4", "--store", str(tmp_path / "u" / "m.duckdb")]) == 0
        uneven = capsys.readouterr().out
        assert main(["compare", name, "--seeds", "2", "--store", str(tmp_path / "j" / "m.duckdb"), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
    finally:
        sys.modules.pop(name, None)
    # per seed: every (design, task) row names its seeds and their outcomes
    assert "solo refund: seed 0 ok, 1 ok, 2 ok" in even and "pair refund: seed 0 ok, 1 ok, 2 ok" in even
    # the differences between the designs: steps (solo 1 tool call, pair 3)
    rows = {line.split()[0]: line.split() for line in even.splitlines() if line.split()[:1] in (["solo"], ["pair"])
            and "seed" not in line}
    assert "differences between designs" in even and float(rows["pair"][4]) > float(rows["solo"][4])
    # every design scored the same: said plainly, with how to make the comparison separate them
    assert "does not separate the designs" in even.replace("\n", " ")
    assert "--seeds" in even and "--faults" in even
    assert "does not separate" not in uneven
    assert "reckless refund: seed 0" in uneven and "violation" in uneven
    assert data["separates"] is False and {r["design"] for r in data["per_seed"]} == {"solo", "pair"}
    steps = {d["design"]: d["mean_steps"] for d in data["designs"]}
    assert steps["pair"] > steps["solo"]


def test_the_html_report_of_a_comparison_tells_the_seeds_apart(suite: str, tmp_path: Path) -> None:
    """Rows of the same design and task differ only by seed; the index shows it, so they do not look identical."""
    import re

    out = tmp_path / "compare.html"
    compare(load_suite(suite), ["careful"], 3, tasks=["refund"], store=tmp_path / "h" / "m.duckdb", report=out)
    html = out.read_text()
    index = html[html.index("<th>trace</th><th>configuration</th>"):]
    index = index[:index.index("</table>")]
    assert "<th class=num>seed</th>" in index
    seeds = re.findall(r'<td class="num seed">(\d+)</td>', index)
    assert sorted(seeds) == ["0", "1", "2"]
