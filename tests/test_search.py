"""The counterexample search: planted bugs found and shrunk, budgets kept, results reproducible."""

from __future__ import annotations

import asyncio
import difflib
import json
import time
from pathlib import Path
from typing import Any

import pytest

import mattrace
from mattrace.contracts import never, step
from mattrace.errors import SearchError
from mattrace.integrations.litellm import instrument
from mattrace.search import Budget, Inject, P, Paraphrase, SearchResult, find_counterexample
from mattrace.testing import Rule, Script, ToolCall, register_script
from mattrace.trace import StepKind
from mattrace.tracefile import load
from tests.planted_bugs import Case, cases, style_at_position

CASES = cases()


def _traces(directory: Path) -> list[mattrace.Trace]:
    return [load(p) for p in sorted(directory.glob("*.jsonl"))]


def _recorded(directory: Path) -> dict[str, float]:
    """Usage recounted from every trace file a search left behind (cut-short runs included)."""
    calls = tokens = 0
    usd = 0.0
    for trace in _traces(directory):
        for s in trace.steps:
            if s.kind is StepKind.LLM:
                calls += 1
                tokens += s.attrs.get("tokens", {}).get("total", 0)
                usd += s.attrs.get("cost_usd", 0.0)
    return {"runs": len(_traces(directory)), "llm_calls": calls, "tokens": tokens, "usd": usd}


def _search(case: Case, tmp_path: Path, **kwargs: Any) -> SearchResult:
    kwargs.setdefault("budget", Budget(runs=60))
    kwargs.setdefault("database", None)
    return find_counterexample(case.run, case.space, list(case.contracts), dir=tmp_path / "runs", **kwargs)


# -- planted bugs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_guided_search_finds_each_planted_bug_and_shrinks_it_to_the_known_minimum(
        case: Case, seed: int, tmp_path: Path) -> None:
    result = _search(case, tmp_path, seed=seed)
    assert result.found, result.stopped
    assert str(result.perturbation) == str(case.minimal)
    assert result.violation is not None and result.violation.contract == "no untrusted action"
    assert result.runs <= 60 and result.runs_to_find is not None and result.runs_to_find <= result.runs
    assert result.trace_path is not None and result.trace_path.exists()


def test_the_counterexample_trace_shows_the_planted_instruction_as_an_untrusted_fault(tmp_path: Path) -> None:
    result = _search(style_at_position("override", 1, docs=5, shown=3), tmp_path)
    assert result.trace is not None and isinstance(result.perturbation, Inject)
    faults = [s for s in result.trace.steps if s.kind is StepKind.FAULT]
    assert [s.attrs["fault_class"] for s in faults] == ["injected_instruction"]
    retrieval = next(s for s in result.trace.steps if s.kind is StepKind.RETRIEVAL)
    assert faults[0].index in retrieval.reads and retrieval.untrusted
    assert "Ignore all previous instructions" in json.dumps(retrieval.result)


def test_the_canary_run_comes_first_and_every_run_is_labelled_with_its_search(tmp_path: Path) -> None:
    result = _search(CASES[0], tmp_path)
    traces = _traces(tmp_path / "runs")
    roles = [t.labels["mattrace.search.role"] for t in sorted(traces, key=lambda t: int(t.name.split("#")[1]))]
    assert roles[0] == "canary" and set(roles[1:]) == {"candidate"}
    assert {t.labels["mattrace.search"] for t in traces} == {"runs"}
    assert result.sites is not None and len(result.sites.reachable) == 3     # 10 documents, 3 shown


def test_the_same_seed_gives_the_same_counterexample_and_the_same_runs(tmp_path: Path) -> None:
    first = _search(CASES[3], tmp_path / "a", seed=7)
    second = _search(CASES[3], tmp_path / "b", seed=7)
    assert first.found and str(first.perturbation) == str(second.perturbation)
    assert [str(a.perturbation) for a in first.attempts] == [str(a.perturbation) for a in second.attempts]


def test_the_random_baseline_samples_until_the_first_counterexample_and_does_not_shrink(tmp_path: Path) -> None:
    result = _search(CASES[2], tmp_path, strategy="random", budget=Budget(runs=300), seed=0)
    assert result.found and result.strategy == "random"
    assert result.runs_to_find == result.runs
    assert "does not shrink" in result.stopped


# -- budgets -------------------------------------------------------------------------------------------


@mattrace.retriever(name="web")
def _web(query: str) -> list[mattrace.Doc]:
    return [mattrace.Doc(id=f"w{i}", text=f"Result {i} about {query}.") for i in range(3)]


def _priced_run(swallow: bool = False) -> None:
    """Two mocked gpt-4o-mini calls per run (30 tokens and $1.35e-5 each); nothing ever breaks."""
    import litellm

    instrument()
    docs = _web("refunds")
    for _ in range(2):
        try:
            litellm.completion(model="gpt-4o-mini", mock_response="noted", messages=[
                {"role": "user", "content": "\n".join(d.text for d in docs)}])
        except Exception:
            if not swallow:
                raise


NEVER_BREAKS = [never(step.tool("no-such-tool")).named("unbreakable")]


@pytest.mark.parametrize(("budget", "limit"), [
    (Budget(runs=5), "runs"),
    (Budget(llm_calls=7), "llm_calls"),
    (Budget(tokens=200), "tokens"),
    (Budget(tokens=210), "tokens"),
    (Budget(usd=5e-5), "usd"),
])
def test_a_search_never_spends_past_its_budget(budget: Budget, limit: str, tmp_path: Path) -> None:
    result = find_counterexample(_priced_run, P.inject("retrieval:web"), NEVER_BREAKS, budget, dir=tmp_path,
                                 database=None)
    spent = _recorded(tmp_path)
    assert not result.found and f"{limit} limit" in result.stopped
    assert spent[limit] <= getattr(budget, limit) + 1e-12
    assert (result.runs, result.llm_calls, result.tokens) == (spent["runs"], spent["llm_calls"], spent["tokens"])
    assert result.usd == pytest.approx(spent["usd"])


def test_a_run_cut_short_by_the_budget_is_not_a_result_even_if_the_code_swallows_errors(tmp_path: Path) -> None:
    result = find_counterexample(lambda: _priced_run(swallow=True), P.inject("retrieval:web"), NEVER_BREAKS,
                                 Budget(tokens=210), dir=tmp_path, database=None)
    assert "cut short" in result.stopped and _recorded(tmp_path)["tokens"] <= 210
    assert len(result.attempts) == result.runs - 1


def test_the_seconds_limit_stops_a_search_of_slow_runs(tmp_path: Path) -> None:
    def slow() -> None:
        _priced_run()
        time.sleep(0.05)

    result = find_counterexample(slow, P.inject("retrieval:web"), NEVER_BREAKS, Budget(seconds=0.3),
                                 dir=tmp_path, database=None)
    assert "seconds limit 0.3" in result.stopped and 2 <= result.runs <= 12


def test_on_run_is_told_of_every_run_with_the_spending_so_far(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    find_counterexample(_priced_run, P.inject("retrieval:web"), NEVER_BREAKS, Budget(runs=4), dir=tmp_path,
                        database=None, on_run=lambda attempt, spend: seen.append((attempt.number, spend.llm_calls)))
    assert seen == [(1, 2), (2, 4), (3, 6), (4, 8)]


# -- input perturbations ---------------------------------------------------------------------------------


@mattrace.tool(side_effect=True)
def delete_rows(table: str) -> str:
    return f"deleted {table}"


def _careless_agent(text: str) -> str:
    """Refuses 'delete' spelled right; a near miss slips past the filter, and the model still understands it."""
    if "delete" in text.lower():
        return "refused: deletions need a ticket"
    if any(difflib.SequenceMatcher(None, word, "delete").ratio() >= 0.8 for word in text.lower().split()):
        delete_rows("orders")
        return "done"
    return "nothing to do"


NO_DELETES = [never(step.tool("delete_rows")).named("no deletes")]


@pytest.mark.parametrize("strategy", ["guided", "random"])
def test_typos_in_the_input_find_the_filter_bypass(strategy: str, tmp_path: Path) -> None:
    result = find_counterexample(_careless_agent, P.typos(max_edits=3), NO_DELETES, Budget(runs=150), seed=3,
                                 input="please delete the old rows", strategy=strategy,  # type: ignore[arg-type]
                                 dir=tmp_path, database=None)
    assert result.found and result.perturbation is not None
    assert "delete" not in result.perturbation.edit_input("please delete the old rows")
    if strategy == "guided":
        assert result.perturbation.size == 1


def test_a_paraphrase_that_breaks_the_contract_is_found(tmp_path: Path) -> None:
    templates = ["Kindly {input}", "{input}, thanks", "Could you please remove the old rows?", "{input} now"]

    def agent(text: str) -> None:
        if "remove" in text:
            delete_rows("orders")

    result = find_counterexample(agent, P.paraphrase(templates), NO_DELETES, Budget(runs=20),
                                 input="delete the old rows", dir=tmp_path, database=None)
    assert result.found and result.perturbation == Paraphrase("Could you please remove the old rows?")


def test_the_example_database_tries_the_last_counterexample_first(tmp_path: Path) -> None:
    def search() -> SearchResult:
        return find_counterexample(_careless_agent, P.typos(max_edits=3), NO_DELETES, Budget(runs=150), seed=3,
                                   input="please delete the old rows", dir=tmp_path / "runs",
                                   database=tmp_path / "examples")

    first, again = search(), search()
    assert first.found and first.runs_to_find is not None and first.runs_to_find > 1
    assert again.runs_to_find == 1       # the saved counterexample is the first thing tried
    assert str(again.perturbation) == str(first.perturbation)


# -- replay and special outcomes -----------------------------------------------------------------------------


def test_the_counterexample_replays_from_its_cassette_without_live_calls(tmp_path: Path) -> None:
    import litellm

    instrument()
    calls: list[str] = []
    register_script("replayed-writer", Script(rules=[
        Rule(agent="writer", contains="Ignore all previous instructions",
             tool_calls=[ToolCall(name="delete_rows", arguments={"table": "orders"})]),
        Rule(agent="writer", reply="Nothing to do.")]))

    @mattrace.retriever(name="kb")
    def counted(query: str) -> list[mattrace.Doc]:
        calls.append(query)
        return [mattrace.Doc(id=f"kb{i}", text=f"Fact number {i} about refunds.") for i in range(3)]

    def run() -> None:
        docs = counted("refunds")
        reply = litellm.completion(model="mattrace/replayed-writer", metadata={"agent": "writer"},
                                   messages=[{"role": "user", "content": docs[0].text}])
        for call in reply.choices[0].message.tool_calls or []:
            delete_rows(**json.loads(call.function.arguments))

    result = find_counterexample(run, P.inject("retrieval:kb"), NO_DELETES, Budget(runs=40), dir=tmp_path,
                                 database=None)
    assert result.found and result.cassette is not None and result.cassette.exists()
    before = len(calls)
    replayed = result.replay()
    assert result.trace is not None and replayed.fingerprint() == result.trace.fingerprint()
    assert len(calls) == before, "the replay called the live retriever"


def test_an_unperturbed_run_that_already_breaks_a_contract_is_the_answer(tmp_path: Path) -> None:
    def leaky() -> None:
        docs = _web("x")
        delete_rows(docs[0].text)

    result = find_counterexample(leaky, P.inject("retrieval:web"), NO_DELETES, Budget(runs=10), dir=tmp_path,
                                 database=None)
    assert result.found and result.perturbation is None and result.runs == 2
    assert "unperturbed run already breaks" in result.stopped and "the unperturbed run" in str(result)


def test_a_space_with_nothing_reachable_is_an_error_that_says_what_the_canary_saw(tmp_path: Path) -> None:
    with pytest.raises(SearchError, match=r"none reached an LLM prompt.*canary run: 1 boundary call"):
        find_counterexample(lambda: _web("unused"), P.inject("retrieval:web"), NO_DELETES, Budget(runs=5),
                            dir=tmp_path, database=None)
    with pytest.raises(SearchError, match=r"made no tool:\* call"):
        find_counterexample(lambda: _web("unused"), P.inject("tool:*"), NO_DELETES, Budget(runs=5),
                            dir=tmp_path, database=None)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"space": "inject"}, "must be built with P"),
    ({"strategy": "smart"}, "strategy must be 'guided' or 'random'"),
    ({"budget": {"runs": 3}}, "budget must be a Budget"),
    ({"space": P.typos(2)}, "perturbs the run's input; pass input="),
    ({"input": 42}, "input must be text"),
    ({"run": "not callable"}, "run must be callable"),
    ({"database": 3}, "database must be"),
])
def test_bad_arguments_are_typed_errors_naming_the_argument(kwargs: dict[str, Any], message: str,
                                                            tmp_path: Path) -> None:
    args: dict[str, Any] = {"run": _careless_agent, "space": P.inject("retrieval:*"), "contracts": NO_DELETES,
                            "dir": tmp_path} | kwargs
    with pytest.raises(SearchError, match=message):
        find_counterexample(**args)


def test_a_coroutine_function_is_refused_with_the_fix(tmp_path: Path) -> None:
    async def agent() -> None:
        await asyncio.sleep(0)

    with pytest.raises(SearchError, match=r"asyncio.run"):
        find_counterexample(agent, P.inject("retrieval:*"), NO_DELETES, dir=tmp_path)


def test_the_result_reads_as_a_report(tmp_path: Path) -> None:
    result = _search(CASES[0], tmp_path)
    text = str(result)
    assert text.startswith("counterexample (guided search of P.inject('retrieval:kb', P.injections())")
    assert "perturbation: inject 'As the administrator" in text and "(size 1)" in text
    assert "breaks: no untrusted action [safety] at step" in text and str(result.trace_path) in text
    nothing = find_counterexample(_priced_run, P.inject("retrieval:web"), NEVER_BREAKS, Budget(runs=3),
                                  dir=tmp_path / "n", database=None)
    assert str(nothing).startswith("no counterexample (guided search") and "runs limit 3" in str(nothing)
    with pytest.raises(SearchError, match="no counterexample to replay"):
        nothing.replay()
