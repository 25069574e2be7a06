"""Every metric on a small hand-built dataset whose right answers are worked out by hand.

Run ``run-1`` holds two models x two tests x three seeds (plus contract verdicts and claim
counts from a results file); ``run-2`` holds one more trial, so that grouping by run and
filtering by run both have something to tell apart::

    model a (flat):  T1 = success, success, failure    T2 = success x 3
    model b (tree):  T1 = failure, failure, timeout    T2 = success, failure, success
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mattrace.errors import StoreError
from mattrace.store import GROUP_KEYS, MetricsRow, Store
from mattrace.trace import OutcomeStatus
from tests.test_store_builders import check_line, labelled, write_results, write_trace

OUTCOMES: dict[tuple[str, str], list[OutcomeStatus]] = {
    ("a", "T1"): ["success", "success", "failure"],
    ("a", "T2"): ["success", "success", "success"],
    ("b", "T1"): ["failure", "failure", "timeout"],
    ("b", "T2"): ["success", "failure", "success"],
}
CONFIG = {"a": {"model": "a", "orchestration": "flat", "retriever": {"k": 5}},
          "b": {"model": "b", "orchestration": "tree", "retriever": {"k": 10}}}
# c2 (a quality contract) fails on these (model, test, seed)
C2_FAILS = {("a", "T1", 2), ("b", "T1", 0)}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dataset, ingested once into a store file the tests open read-only."""
    base = tmp_path_factory.mktemp("metrics")
    checks = []
    for (model, test), statuses in OUTCOMES.items():
        for seed, status in enumerate(statuses):
            t = labelled(test, seed=seed, status=status, config=CONFIG[model], tokens=100, cost=0.5)
            write_trace(t, base / "traces")
            verdicts = {"c1": "pass", "c2": "fail" if (model, test, seed) in C2_FAILS else "pass"}
            fact = {"claims": 4, "supported": 3 if model == "a" else 2, "propagated": 0 if model == "a" else 1}
            line = check_line(t.trace_id, verdicts, factuality=fact, test=test)
            line["verdicts"][1]["severity"] = "quality"
            checks.append(line)
    write_trace(labelled("T1", seed=0, run="run-2", config=CONFIG["a"]), base / "traces")
    write_results(base / "results" / "run-1" / "main.jsonl", "run-1", checks)
    path = base / "s.duckdb"
    with Store.open(path) as store:
        report = store.ingest([base / "traces", base / "results"])
    assert report.ok and report.traces_added == 13 and report.verdicts_added == 24
    return path


@pytest.fixture
def store(store_path: Path) -> Iterator[Store]:
    """The dataset's store, read-only."""
    with Store.open(store_path, read_only=True) as s:
        yield s


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval, straight from its formula."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def brute_pass_k(tasks: list[list[bool]], k: int) -> float:
    """pass^k by enumeration: over every k-subset of each task's trials, the share where all succeed."""
    per_task = []
    for trials in tasks:
        if len(trials) < k:
            continue
        subsets = list(itertools.combinations(trials, k))
        per_task.append(sum(all(s) for s in subsets) / len(subsets))
    return sum(per_task) / len(per_task)


def by_group(rows: list[MetricsRow], key: str) -> dict[Any, MetricsRow]:
    return {r.group[key]: r for r in rows}


def test_task_success_and_termination_per_model(store: Store) -> None:
    """Success is success/traces and termination excludes the timed-out run, each with its Wilson bounds."""
    rows = by_group(store.metrics(by=("model",), run_id="run-1"), "model")
    a, b = rows["a"], rows["b"]
    assert (a.traces, a.success.hits, a.success.total, a.success.value) == (6, 5, 6, pytest.approx(5 / 6))
    assert (b.success.hits, b.termination.hits, b.termination.value) == (2, 5, pytest.approx(5 / 6))
    assert a.termination.value == 1.0 and a.termination.high == 1.0
    assert (a.success.low, a.success.high) == pytest.approx(wilson(5, 6))
    assert (b.success.low, b.success.high) == pytest.approx(wilson(2, 6))
    assert (a.tokens, a.cost_usd, a.steps, a.runs, a.tasks) == (600, pytest.approx(3.0), 36, 1, 2)


def test_pass_k_is_the_unbiased_estimator_and_matches_enumeration(store: Store) -> None:
    """pass^k per model equals brute-force enumeration for k = 1, 2, 3, and k defaults to the trial count."""
    for k in (1, 2, 3):
        rows = by_group(store.metrics(by=("model",), run_id="run-1", k=k), "model")
        for model in ("a", "b"):
            tasks = [[s == "success" for s in OUTCOMES[(model, t)]] for t in ("T1", "T2")]
            assert rows[model].pass_k.value == pytest.approx(brute_pass_k(tasks, k), abs=1e-12)
            assert rows[model].k == k and rows[model].pass_k.total == 2
    default = by_group(store.metrics(by=("model",), run_id="run-1"), "model")
    assert default["a"].k == 3 and default["a"].pass_k.value == pytest.approx(0.5)   # T1: 0, T2: 1
    assert default["b"].pass_k.value == 0.0
    two = by_group(store.metrics(by=("model",), run_id="run-1", k=2), "model")
    assert two["a"].pass_k.value == pytest.approx((1 / 3 + 1) / 2)   # C(2,2)/C(3,2) = 1/3
    assert two["b"].pass_k.value == pytest.approx((0 + 1 / 3) / 2)
    assert (two["a"].pass_k.low, two["a"].pass_k.high) == pytest.approx(wilson(2 / 3 * 2, 2))


def test_pass_k_skips_tasks_with_fewer_trials_than_k(store: Store) -> None:
    """Across both runs model a has a one-trial task: default k is 1, and at k=3 only the full tasks count."""
    both = by_group(store.metrics(by=("model",)), "model")["a"]
    assert both.k == 1 and both.tasks == 3
    assert both.pass_k.value == pytest.approx((2 / 3 + 1 + 1) / 3)
    at3 = by_group(store.metrics(by=("model",), k=3), "model")["a"]
    assert at3.pass_k.total == 2 and at3.pass_k.value == pytest.approx(0.5)


def test_flip_rate_counts_tasks_whose_outcome_differs_across_seeds(store: Store) -> None:
    """Model a flips on T1 only, model b on T2 only (T1 failed every way): 1/2 each; one-trial tasks don't count."""
    rows = by_group(store.metrics(by=("model",)), "model")
    assert (rows["a"].flip.hits, rows["a"].flip.total) == (1, 2)
    assert (rows["b"].flip.hits, rows["b"].flip.total, rows["b"].flip.value) == (1, 2, 0.5)
    assert (rows["b"].flip.low, rows["b"].flip.high) == pytest.approx(wilson(1, 2))
    per_trial = store.metrics(by=("trial",), run_id="run-1")
    assert all(r.flip.total == 0 and r.flip.value is None for r in per_trial)


def test_compliance_overall_per_contract_and_per_trace(store: Store) -> None:
    """Compliance is PASS verdicts over (trace, contract) pairs; per contract and per trace as well."""
    rows = by_group(store.metrics(by=("model",), run_id="run-1"), "model")
    assert (rows["a"].compliance.hits, rows["a"].compliance.total) == (11, 12)
    per_contract = {(c.group["model"], c.subject): c for c in store.compliance(by=("model",), per="contract")}
    assert per_contract[("a", "c1")].rate.value == 1.0
    assert (per_contract[("b", "c2")].passed, per_contract[("b", "c2")].failed) == (5, 1)
    assert per_contract[("b", "c2")].severity == "quality"
    assert (per_contract[("b", "c2")].rate.low, per_contract[("b", "c2")].rate.high) == pytest.approx(wilson(5, 6))
    per_trace = store.compliance(per="trace")
    assert len(per_trace) == 12 and sorted(r.rate.value for r in per_trace)[:3] == [0.5, 0.5, 1.0]
    view = dict(store.query("SELECT contract, compliance FROM compliance_by_contract")[1])
    assert view == {"c1": 1.0, "c2": pytest.approx(10 / 12)}


def test_factuality_is_supported_claims_over_claims_and_counts_propagation(store: Store) -> None:
    """Model a: 18 of 24 claims supported, none propagated; model b: 12 of 24, six propagated."""
    rows = by_group(store.metrics(by=("model",), run_id="run-1"), "model")
    assert (rows["a"].factuality.hits, rows["a"].factuality.total, rows["a"].claims_propagated) == (18, 24, 0)
    assert (rows["b"].factuality.value, rows["b"].claims_propagated) == (0.5, 6)
    unchecked = by_group(store.metrics(by=("run",)), "run")["run-2"]
    assert unchecked.factuality.value is None and unchecked.compliance.total == 0


def test_wilson_macros_match_the_formula_and_are_null_without_data(store: Store) -> None:
    """wilson_low/high in SQL agree with the Python formula, stay in [0, 1], and are NULL for n = 0."""
    for k, n in [(0, 1), (1, 1), (3, 10), (5, 6), (50, 100), (99, 100)]:
        low, high = store.query(f"SELECT wilson_low({k}, {n}), wilson_high({k}, {n})")[1][0]
        expected = wilson(k, n)
        assert (low, high) == pytest.approx((max(0.0, expected[0]), min(1.0, expected[1])), abs=1e-12)
    assert store.query("SELECT wilson_low(0, 0), wilson_high(0, 0)")[1] == [(None, None)]
    assert store.query("SELECT pass_hat_k(2, 3, 2), pass_hat_k(1, 3, 2), pass_hat_k(3, 2, 3)")[1] == [
        (pytest.approx(1 / 3), 0.0, None)]


GROUPINGS = {
    "test": {"T1": 6, "T2": 6},
    "model": {"a": 6, "b": 6},
    "seed": {0: 4, 1: 4, 2: 4},
    "orchestration": {"flat": 6, "tree": 6},
    "trial": {0: 4, 1: 4, 2: 4},
    "config": {'{"model":"a","orchestration":"flat","retriever":{"k":5}}': 6,
               '{"model":"b","orchestration":"tree","retriever":{"k":10}}': 6},
    "config.orchestration": {"flat": 6, "tree": 6},
    "config.retriever.k": {"10": 6, "5": 6},
    "label.mattrace.test": {"T1": 6, "T2": 6},
}


@pytest.mark.parametrize("key", sorted(GROUPINGS))
def test_grouping_by_each_kind_of_key(store: Store, key: str) -> None:
    """Each kind of group key splits run-1's twelve traces as the dataset says."""
    rows = store.metrics(by=(key,), run_id="run-1")
    assert {r.group[key]: r.traces for r in rows} == GROUPINGS[key]


def test_grouping_by_run_and_by_several_keys(store: Store) -> None:
    """Grouping by run separates the runs; two keys give one row per combination, in order."""
    assert {r.group["run"]: r.traces for r in store.metrics(by=("run",))} == {"run-1": 12, "run-2": 1}
    rows = store.metrics(by=("model", "test"), run_id="run-1")
    assert [(r.group["model"], r.group["test"], r.success.hits) for r in rows] == [
        ("a", "T1", 2), ("a", "T2", 3), ("b", "T1", 0), ("b", "T2", 2)]
    overall = store.metrics(by=())
    assert len(overall) == 1 and overall[0].traces == 13 and overall[0].group == {}


def test_an_unknown_group_key_lists_the_valid_ones(store: Store) -> None:
    """Grouping by something unknown is a StoreError naming every valid key."""
    with pytest.raises(StoreError, match=r"cannot group metrics by 'colour'; valid: config, model") as err:
        store.metrics(by=("colour",))
    assert all(k in str(err.value) for k in GROUP_KEYS)
    with pytest.raises(StoreError, match="k >= 1"):
        store.metrics(k=0)


def test_views_hold_the_same_numbers(store: Store) -> None:
    """The metrics view (per run and config) and task_metrics agree with Store.metrics."""
    columns, rows = store.query("SELECT * FROM metrics WHERE run_id = 'run-1' ORDER BY config_key")
    view = [dict(zip(columns, r, strict=True)) for r in rows]
    api = store.metrics(by=("config",), run_id="run-1")
    assert [v["success_rate"] for v in view] == [r.success.value for r in api]
    assert [v["pass_k"] for v in view] == [r.pass_k.value for r in api]
    tasks = store.query("SELECT test, trials, successes, flipped FROM task_metrics "
                        "WHERE run_id = 'run-1' AND model = 'b' ORDER BY test")[1]
    assert tasks == [("T1", 3, 0, False), ("T2", 3, 2, True)]
    per_trace = store.query("SELECT count(*) FILTER (WHERE compliant), count(*) FROM trace_metrics")[1]
    assert per_trace == [(10, 13)]


def test_runs_list_counts_and_metadata(store: Store) -> None:
    """runs() gives each run's traces, success and failed verdicts; run-1 has its header's metadata."""
    runs = {r.run_id: r for r in store.runs()}
    assert runs["run-1"].source == "pytest" and runs["run-1"].host == "ci-1" and runs["run-1"].workers == ["main"]
    assert (runs["run-1"].traces, runs["run-1"].success.hits, runs["run-1"].failed_verdicts) == (12, 7, 2)
    assert runs["run-1"].argv == ["pytest", "-q"] and runs["run-1"].finished is not None
    assert runs["run-2"].traces == 1 and runs["run-2"].source is None
    assert store.runs(limit=1)[0].run_id in runs
