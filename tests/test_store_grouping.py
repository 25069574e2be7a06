"""Grouping the metric queries: the keys each query takes, and keys a person typed staying data, never SQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mattrace.errors import StoreError
from mattrace.store import CONTAINMENT_KEYS, GOVERNANCE_KEYS, GROUP_KEYS, Store
from tests.test_store_builders import labelled, write_trace

ODD = 'we"ird\'key'   # a config key and label holding both kinds of quote


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three traces: two configs whose odd key differs, and a label of the same odd name."""
    base = tmp_path_factory.mktemp("grouping")
    for seed, value in enumerate(("x", "x", "y")):
        t = labelled("T1", seed=seed, config={"nested": {ODD: value}}, status="success" if seed else "failure")
        write_trace(t.model_copy(update={"labels": {**t.labels, ODD: value}}), base)
    path = base / "s.duckdb"
    with Store.open(path) as store:
        assert store.ingest(base).traces_added == 3
    return path


@pytest.fixture
def store(store_path: Path) -> Iterator[Store]:
    """The dataset, opened read-only."""
    with Store.open(store_path, read_only=True) as s:
        yield s


@pytest.mark.parametrize("key", [f"config.nested.{ODD}", f"label.{ODD}"])
def test_a_key_with_quotes_groups_and_names_its_column_after_itself(store: Store, key: str) -> None:
    """A config path or label name holding quotes is a group like any other, its column named exactly as given."""
    rows = store.metrics(by=(key,))
    assert [(r.group, r.traces, r.success.hits) for r in rows] == [({key: "x"}, 2, 1.0), ({key: "y"}, 1, 1.0)]
    assert [r.group for r in store.compliance(by=(key,))] == []


def test_a_key_that_looks_like_sql_stays_a_json_path(store: Store) -> None:
    """A key written as SQL reaches DuckDB as a string: it matches no config key and runs nothing."""
    key = "config.x') IS NULL OR (1=1"
    rows = store.metrics(by=(key, "label.a\" AS b, 1 AS \"c"))
    assert len(rows) == 1 and rows[0].traces == 3
    assert set(rows[0].group.values()) == {None}


def test_every_query_takes_the_trace_keys_after_its_own() -> None:
    """Containment and governance take their own keys first, then every metric key."""
    assert CONTAINMENT_KEYS == ("call_target", "fault", "fault_class", "target", *GROUP_KEYS)
    assert GOVERNANCE_KEYS == ("agent", "call_kind", "decision", "rule", "tool", *GROUP_KEYS)


@pytest.mark.parametrize("item", ["colour", "config.", "label.", "Config.model", "fault"])
def test_an_unknown_key_is_refused_naming_the_query_and_the_valid_keys(store: Store, item: str) -> None:
    """An empty config path, an unknown key or another query's own key is a StoreError listing the valid ones."""
    with pytest.raises(StoreError, match=rf"cannot group metrics by {item!r}; valid: config, model"):
        store.metrics(by=(item,))
    with pytest.raises(StoreError, match=rf"cannot group metrics by {item!r}; valid: config, model"):
        store.compliance(by=(item,))
    if item != "fault":
        with pytest.raises(StoreError, match=rf"cannot group containment by {item!r}; valid: call_target, fault,"):
            store.containment(by=(item,))
    with pytest.raises(StoreError, match=rf"cannot group governance by {item!r}; valid: agent, call_kind,"):
        store.governance(by=(item,))


def test_a_key_given_twice_is_one_group_and_no_keys_is_one_row(store: Store) -> None:
    """Repeated keys are one group (in first-seen order); no keys at all is one row over every trace."""
    assert [r.group for r in store.metrics(by=("test", "model", "test"))] == [{"test": "T1", "model": "scripted"}]
    assert [(r.group, r.traces) for r in store.metrics(by=())] == [({}, 3)]
