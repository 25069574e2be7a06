"""Governance decisions in the store: the decisions table, the governance view and API, migration, the CLI.

Four governed runs and one ungoverned one, recorded through ``record(governor=...)``; the
decisions, worked out by hand (agent ``main`` unless said)::

    model a:  A1 lookup allow (lookups), send_email to a customer allow (default),
                 refund 500 rewrite (refund-cap), wire 30 allow (wire-approval, escalated)
              A2 send_email to an outsider block (no-outsiders), refund 50 allow (default: the cap
                 changes nothing), wire 80 block (wire-approval, escalated)
    model b:  B1 lookup allow (lookups), send_email to an outsider block (no-outsiders),
                 refund 1000 rewrite (refund-cap)
              B2 (capabilities) writer: send_email allow (default); intruder: lookup block (capability)
              C0 no governor: lookup, no decisions

12 decisions: 6 allow, 2 rewrite, 4 block, 2 escalated.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

import mattrace
from mattrace.cli import main
from mattrace.contracts import step
from mattrace.errors import StoreError
from mattrace.governance import Capability, Governor, allow, block, escalate, rewrite
from mattrace.report.metrics import governance_table
from mattrace.store import SCHEMA_VERSION, GovernanceRow, Rate, Store
from mattrace.trace import StepKind, Trace

OUTSIDE = step.tool("send_email") & step.arg("to").not_matches(r"@example\.com$")
RULES = [
    allow(step.tool("lookup"), rule_id="lookups"),
    block(OUTSIDE, "customers only", rule_id="no-outsiders"),
    rewrite(step.tool("refund"), lambda a: {**a, "amount": min(a["amount"], 100.0)}, reason="refund cap",
            rule_id="refund-cap"),
    escalate(step.tool("wire"), lambda s: bool(s.args["amount"] < 50), rule_id="wire-approval"),
]
PLAIN = Governor(RULES)
CAPPED = Governor(RULES, capabilities={"writer": Capability(tools=("send_*",))})

# (agent, tool, decision, rule, escalated) per run, in order
EXPECTED: dict[str, list[tuple[str, str, str, str, bool]]] = {
    "A1": [("main", "lookup", "allow", "lookups", False), ("main", "send_email", "allow", "default", False),
           ("main", "refund", "rewrite", "refund-cap", False), ("main", "wire", "allow", "wire-approval", True)],
    "A2": [("main", "send_email", "block", "no-outsiders", False), ("main", "refund", "allow", "default", False),
           ("main", "wire", "block", "wire-approval", True)],
    "B1": [("main", "lookup", "allow", "lookups", False), ("main", "send_email", "block", "no-outsiders", False),
           ("main", "refund", "rewrite", "refund-cap", False)],
    "B2": [("writer", "send_email", "allow", "default", False), ("intruder", "lookup", "block", "capability", False)],
    "C0": [],
}


@mattrace.tool
def lookup(order: int) -> str:
    """The order's status."""
    return f"order {order}: shipped"


@mattrace.tool(side_effect=True)
def send_email(to: str, body: str) -> str:
    """Send an e-mail (a side effect)."""
    return "sent"


@mattrace.tool(side_effect=True)
def refund(order: str, amount: float) -> str:
    """Refund an order (a side effect)."""
    return f"refunded {amount}"


@mattrace.tool(side_effect=True)
def wire(amount: float) -> str:
    """Wire money (a side effect)."""
    return f"wired {amount}"


def _a1() -> None:
    lookup(1)
    send_email("ana@example.com", "hi")
    refund("1", 500.0)
    wire(30.0)


def _a2() -> None:
    send_email("x@evil.example", "hi")
    refund("2", 50.0)
    wire(80.0)


def _b1() -> None:
    lookup(2)
    send_email("x@evil.example", "hi")
    refund("3", 1000.0)


def _b2() -> None:
    with mattrace.agent("writer"):
        send_email("bo@example.com", "hi")
    with mattrace.agent("intruder"):
        lookup(3)


RUNS: dict[str, tuple[str, Governor | None, Any]] = {
    "A1": ("a", PLAIN, _a1), "A2": ("a", PLAIN, _a2), "B1": ("b", PLAIN, _b1), "B2": ("b", CAPPED, _b2),
    "C0": ("b", None, lambda: lookup(4)),
}


def _record(directory: Path) -> dict[str, tuple[Trace, Path]]:
    out = {}
    for name, (model, governor, body) in RUNS.items():
        with mattrace.record(name, dir=directory, cassette=False, governor=governor,
                             config={"model": model}) as rec:
            body()
            rec.set_outcome(success=True)
        assert rec.path is not None
        out[name] = (rec.trace, Path(rec.path))
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[Trace, Path]]]:
    """The five runs, ingested into a store file."""
    base = tmp_path_factory.mktemp("governance")
    runs = _record(base / "traces")
    recorded = {name: [(s.args["agent"], s.target.split(":", 1)[1], s.args["decision"], s.args["rule"],
                        bool(s.args.get("escalated"))) for s in t.steps if s.kind is StepKind.GOVERNANCE]
                for name, (t, _) in runs.items()}
    assert recorded == EXPECTED, "the runs were recorded with the decisions worked out by hand"
    path = base / "s.duckdb"
    with Store.open(path) as store:
        report = store.ingest(base / "traces")
    assert report.ok and report.traces_added == 5
    return path, runs


@pytest.fixture
def store(dataset: tuple[Path, Any]) -> Any:
    """The dataset's store, read-only."""
    with Store.open(dataset[0], read_only=True) as s:
        yield s


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.96
    p = k / n
    centre, margin = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z * z / n)), min(1.0, (centre + margin) / (1 + z * z / n))


def _assert_wilson(rate: Rate, k: int, n: int) -> None:
    low, high = _wilson(k, n)
    assert (rate.hits, rate.total) == (k, n)
    assert rate.value == pytest.approx(k / n) and rate.low == pytest.approx(low) and rate.high == pytest.approx(high)


def _counts(rows: list[GovernanceRow]) -> dict[tuple[Any, ...], tuple[int, int, int, int, int]]:
    return {tuple(r.group.values()): (r.decisions, r.allowed, r.rewritten, r.blocked, r.escalated) for r in rows}


def test_each_governance_step_is_a_decisions_row(store: Store, dataset: tuple[Path, Any]) -> None:
    """Every governance step becomes one row with the acting agent, call, decision, rule, reason and arguments."""
    ids = {t.trace_id: name for name, (t, _) in dataset[1].items()}
    _, rows = store.query("""SELECT trace_id, step, agent, call_kind, tool, decision, rule, escalated, run_id
                             FROM decisions ORDER BY trace_id, step""")
    got: dict[str, list[tuple[str, str, str, str, bool]]] = {name: [] for name in EXPECTED}
    for trace_id, idx, agent, kind, tool, decision, rule, escalated, run_id in rows:
        trace = dataset[1][ids[trace_id]][0]
        assert trace.steps[idx].kind is StepKind.GOVERNANCE and kind == "tool"
        assert run_id == store.query("SELECT run_id FROM traces WHERE trace_id = ?", [trace_id])[1][0][0]
        got[ids[trace_id]].append((agent, tool, decision, rule, escalated))
    assert got == EXPECTED


def test_a_rewrite_keeps_both_argument_sets_and_a_block_its_reason(store: Store, dataset: tuple[Path, Any]) -> None:
    """The refund rewrite stores the original and the capped arguments; the block stores its rule's reason."""
    a1 = dataset[1]["A1"][0].trace_id
    original, rewritten, reason = store.query(
        "SELECT original, rewritten, reason FROM decisions WHERE trace_id = ? AND decision = 'rewrite'", [a1])[1][0]
    assert json.loads(original) == {"order": "1", "amount": 500.0}
    assert json.loads(rewritten) == {"order": "1", "amount": 100.0} and reason == "refund cap"
    assert store.query("SELECT count(*) FROM decisions WHERE decision <> 'rewrite' AND rewritten IS NOT NULL")[1] \
        == [(0,)]
    assert store.query("SELECT DISTINCT reason FROM decisions WHERE rule = 'no-outsiders'")[1] == [("customers only",)]
    assert store.query("SELECT reason FROM decisions WHERE rule = 'capability'")[1] == [
        ("no capability covers agent 'intruder'",)]


def test_shares_per_rule_match_hand_counts_with_wilson_bounds(store: Store) -> None:
    """By rule (the default): counts as worked out by hand, each share with the Python Wilson bounds."""
    rows = store.governance()
    assert _counts(rows) == {("capability",): (1, 0, 0, 1, 0), ("default",): (3, 3, 0, 0, 0),
                             ("lookups",): (2, 2, 0, 0, 0),
                             ("no-outsiders",): (2, 0, 0, 2, 0), ("refund-cap",): (2, 0, 2, 0, 0),
                             ("wire-approval",): (2, 1, 0, 1, 2)}
    wire_rule = rows[-1]
    _assert_wilson(wire_rule.allow, 1, 2)
    _assert_wilson(wire_rule.block, 1, 2)
    _assert_wilson(wire_rule.rewrite, 0, 2)
    (overall,) = store.governance(by=())
    assert (overall.runs, overall.traces, overall.decisions) == (1, 4, 12)
    assert (overall.allowed, overall.rewritten, overall.blocked, overall.escalated) == (6, 2, 4, 2)
    _assert_wilson(overall.allow, 6, 12)
    _assert_wilson(overall.rewrite, 2, 12)
    _assert_wilson(overall.block, 4, 12)
    assert overall.allow.value + overall.rewrite.value + overall.block.value == pytest.approx(1.0)


def test_groups_by_agent_tool_decision_and_metric_keys(store: Store) -> None:
    """Agent and tool, decision, model and config.model group as the hand counts say; unknown keys are refused."""
    assert _counts(store.governance(by=("agent", "tool"))) == {
        ("intruder", "lookup"): (1, 0, 0, 1, 0), ("main", "lookup"): (2, 2, 0, 0, 0),
        ("main", "refund"): (3, 1, 2, 0, 0), ("main", "send_email"): (3, 1, 0, 2, 0),
        ("main", "wire"): (2, 1, 0, 1, 2), ("writer", "send_email"): (1, 1, 0, 0, 0)}
    assert _counts(store.governance(by=("decision",))) == {("allow",): (6, 6, 0, 0, 1), ("block",): (4, 0, 0, 4, 1),
                                                           ("rewrite",): (2, 0, 2, 0, 0)}
    by_model = {r.group["model"]: r for r in store.governance(by=["model"])}
    assert _counts(list(by_model.values())) == {("a",): (7, 4, 1, 2, 2), ("b",): (5, 2, 1, 2, 0)}
    assert by_model["a"].traces == 2 and by_model["b"].traces == 2, "C0 has no decisions, so it is in no group"
    _assert_wilson(by_model["b"].block, 2, 5)
    assert _counts(store.governance(by=("config.model",))) == _counts(list(by_model.values()))
    config = store.governance(by="config")
    assert [json.loads(r.group["config"]) for r in config] == [{"model": "a"}, {"model": "b"}]
    with pytest.raises(StoreError, match=r"cannot group governance by 'fault'; valid: agent, call_kind, decision, "
                                         r"rule, tool, config"):
        store.governance(by=("fault",))


def test_the_view_and_run_filter_agree_with_the_api(store: Store) -> None:
    """The governance view (per run, agent, tool, rule, config) sums to the API's totals; --run filters."""
    _, rows = store.query("""SELECT rule, sum(decisions), sum(allowed), sum(rewritten), sum(blocked), sum(escalated)
                             FROM governance GROUP BY rule ORDER BY rule""")
    assert {r[0]: tuple(int(v) for v in r[1:]) for r in rows} == {
        r.group["rule"]: (r.decisions, r.allowed, r.rewritten, r.blocked, r.escalated)
        for r in store.governance()}
    _, cols = store.query("SELECT allow_share, allow_low, allow_high FROM governance WHERE rule = 'wire-approval'")
    low, high = _wilson(1, 2)
    assert cols[0] == (pytest.approx(0.5), pytest.approx(low), pytest.approx(high))
    run_id = store.runs()[0].run_id
    assert _counts(store.governance(run_id=run_id)) == _counts(store.governance())
    assert store.governance(run_id="nope") == []


def test_re_ingest_is_idempotent_and_a_grown_trace_replaces_its_rows(tmp_path: Path, dataset: tuple[Path, Any]) -> None:
    """Ingesting twice adds no rows; a trace file that grew from a partial copy replaces its decisions."""
    _, a1_file = dataset[1]["A1"]
    path = tmp_path / "s.duckdb"
    partial = tmp_path / "traces" / "a1.jsonl"
    partial.parent.mkdir()
    lines = a1_file.read_text().splitlines(keepends=True)
    partial.write_text("".join(lines[:4]))   # header and three steps: the lookup and e-mail decisions, the lookup
    with Store.open(path) as store:
        assert store.ingest(partial).traces_added == 1
        assert store.query("SELECT count(*) FROM decisions")[1] == [(2,)]
        partial.write_text("".join(lines))
        assert store.ingest(partial).traces_replaced == 1
        assert store.query("SELECT count(*) FROM decisions")[1] == [(4,)]
        report = store.ingest(partial)
        assert report.traces_unchanged == 1 and report.traces_added == 0
        assert _counts(store.governance(by=())) == {(): (4, 3, 1, 0, 1)}


def test_a_version_2_store_is_migrated_with_its_decisions(tmp_path: Path, dataset: tuple[Path, Any]) -> None:
    """A store from before the decisions table gains it, filled from its stored governance steps."""
    traces = dataset[1]["A1"][1].parent
    path = tmp_path / "old.duckdb"
    with Store.open(path) as store:
        store.ingest(traces)
        expected = _counts(store.governance(by=("rule",)))
    con = duckdb.connect(str(path))   # take it back to version 2
    con.execute("DROP VIEW governance")
    con.execute("DROP TABLE decisions")
    for column in ("vacuous", "reason"):   # version 4's
        con.execute(f"ALTER TABLE verdicts DROP COLUMN {column}")
    con.execute("UPDATE meta SET value = '2'")
    con.close()
    with pytest.raises(StoreError, match=r"schema version 2, older .* open it once for writing"):
        Store.open(path, read_only=True)
    with Store.open(path) as store:
        assert SCHEMA_VERSION == 4
        assert store.query("SELECT value FROM meta")[1] == [("4",)]
        assert store.query("SELECT count(*) FROM decisions")[1] == [(12,)]
        assert _counts(store.governance(by=("rule",))) == expected
        assert store.ingest(traces).traces_unchanged == 5


def test_the_cli_prints_the_table_and_json_with_the_same_numbers(dataset: tuple[Path, Any],
                                                                capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """`metrics --governance --by agent,tool` prints one line per group; --json gives the same counts and shares."""
    monkeypatch.setenv("COLUMNS", "160")
    store = str(dataset[0])
    assert main(["metrics", "--store", store, "--governance", "--by", "agent,tool"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].rstrip() == "governance decisions"
    lines = {tuple(line.split()[:2]): line.split()[2:] for line in out.splitlines()
             if re.match(r"(main|writer|intruder) ", line)}
    assert len(lines) == 6
    assert main(["metrics", "--store", store, "--governance", "--by", "agent,tool", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["by"] == ["agent", "tool"] and data["run"] is None and len(data["governance"]) == 6
    for row in data["governance"]:
        cells = lines[(row["group"]["agent"], row["group"]["tool"])]
        assert cells[:5] == [str(row[k]) for k in ("decisions", "allowed", "rewritten", "blocked", "escalated")]
        assert " ".join(cells[5:]) == " ".join(str(Rate(**row[k])) for k in ("allow", "rewrite", "block"))
    assert main(["metrics", "--store", store, "--governance"]) == 0
    wire_rule = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("wire-approval ")]
    assert wire_rule == [["wire-approval", "2", "1", "0", "1", "2", "50%", "[9\u201391]", "0%", "[0\u201366]", "50%",
                          "[9\u201391]"]]


def test_the_cli_rejects_governance_with_other_tables_and_says_when_nothing_was_decided(
        dataset: tuple[Path, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """--governance with --containment, --k or --per-contract is a usage error; no decisions prints a line."""
    store = str(dataset[0])
    for extra in (["--containment"], ["--k", "2"], ["--per-contract"]):
        assert main(["metrics", "--store", store, "--governance", *extra]) == 2
        assert "--governance" in capsys.readouterr().err
    assert main(["metrics", "--store", store, "--governance", "--by", "nope"]) == 2
    assert "cannot group governance by 'nope'" in capsys.readouterr().err
    assert main(["metrics", "--store", store, "--governance", "--run", "nope"]) == 0
    assert capsys.readouterr().out == "no governance decisions in the store for run nope\n"


def test_governance_table_has_a_column_per_count_and_share(store: Store) -> None:
    """The rendered table heads the group keys, the five counts and the three shares."""
    table = governance_table(store.governance(by=("agent",)))
    assert [c.header for c in table.columns] == ["agent", "decisions", "allowed", "rewritten", "blocked",
                                                 "escalated", "allow", "rewrite", "block"]
    assert table.row_count == 3
