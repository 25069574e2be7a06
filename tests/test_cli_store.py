"""The store's commands: ingest, query, metrics and runs (exit codes, --json, --csv, one-line errors)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mattrace.cli import DEFAULT_STORE, main
from mattrace.store import DEFAULT_STORE as STORE_DEFAULT
from mattrace.trace import OutcomeStatus
from tests.test_store_builders import check_line, labelled, write_results, write_trace

DASH = "\u2013"   # the en dash between an interval's bounds


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a CI's FORCE_COLOR or COLUMNS from changing the captured output."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "160")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def traces(tmp_path: Path) -> Path:
    """Six traces of one test in two configs (model x, y), three seeds each, plus a results file."""
    outcomes: dict[str, list[OutcomeStatus]] = {"x": ["success", "success", "failure"],
                                                "y": ["success", "success", "success"]}
    checks = []
    for model, statuses in outcomes.items():
        for seed, status in enumerate(statuses):
            t = labelled("test_a", seed=seed, status=status, config={"model": model})
            write_trace(t, tmp_path / "traces")
            checks.append(check_line(t.trace_id, {"c1": "fail" if (model, seed) == ("x", 0) else "pass"}))
    write_results(tmp_path / "traces" / "results.jsonl", "run-1", checks)
    return tmp_path / "traces"


def test_the_cli_default_store_is_the_store_default() -> None:
    """The CLI's --store default (kept literal for a fast start) is the store's default path."""
    assert DEFAULT_STORE == STORE_DEFAULT


def test_ingest_prints_the_report_and_exits_zero(traces: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """`ingest DIR` stores every trace and verdict, prints one summary line, exits 0; again it adds nothing."""
    store = str(tmp_path / "s.duckdb")
    code, out, err = _run(capsys, "ingest", str(traces), "--store", store)
    assert code == 0 and err == ""
    assert re.match(r"ingest: 7 files seen, 6 traces added \(36 steps\), 0 unchanged, 6 verdicts from "
                    r"1 results file, 0 files skipped in \d+\.\d\d s\n$", out)
    code, out, _ = _run(capsys, "ingest", str(traces), "--store", store, "--json")
    report = json.loads(out)
    assert code == 0 and report["traces_added"] == 0 and report["traces_unchanged"] == 6
    assert report["files_skipped"] == 0 and report["run_id"].startswith("ingest-")


def test_ingest_exits_one_when_a_file_is_skipped_and_still_ingests_the_rest(
        traces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A corrupt file is listed as `skipped path:line: reason`, the exit status is 1, the good files are stored."""
    (traces / "junk.jsonl").write_text('{"hello": 1}\n')
    store = str(tmp_path / "s.duckdb")
    code, out, _ = _run(capsys, "ingest", str(traces), "--store", store)
    assert code == 1
    assert f"skipped {(traces / 'junk.jsonl').resolve()}:1: not a mattrace trace or results file" in out
    code, out, _ = _run(capsys, "query", "SELECT count(*) AS n FROM traces", "--store", store, "--json")
    assert code == 0 and json.loads(out) == [{"n": 6}]


def test_ingest_with_contracts_checks_new_traces_and_stores_their_verdicts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--contracts checks each new trace, writes a results file next to the store and stores its verdicts."""
    write_trace(labelled("t", seed=0, run=None), tmp_path / "traces")
    write_trace(labelled("t", seed=1, run=None, untrusted=True), tmp_path / "traces")
    contracts = tmp_path / "contracts.toml"
    contracts.write_text('[[contract]]\nuse = "no_untrusted_action"\n\n[[contract]]\nuse = "terminates"\n'
                         'max_steps = 3\nname = "short"\n')
    store = tmp_path / "db" / "s.duckdb"
    code, out, _ = _run(capsys, "ingest", str(tmp_path / "traces"), "--store", str(store), "-c", str(contracts),
                        "--json")
    report = json.loads(out)
    assert code == 0 and report["verdicts_added"] == 4 and report["results_files"] == 1
    results = list((tmp_path / "db" / "results" / report["run_id"]).glob("*.jsonl"))
    assert len(results) == 1
    code, out, _ = _run(capsys, "query", "SELECT t.seed, v.contract, v.status FROM verdicts v JOIN traces t "
                        "USING (trace_id) ORDER BY 1, 2", "--store", str(store), "--csv")
    assert list(csv.reader(io.StringIO(out))) == [
        ["seed", "contract", "status"], ["0", "no untrusted action", "pass"], ["0", "short", "fail"],
        ["1", "no untrusted action", "fail"], ["1", "short", "fail"]]
    code, out, _ = _run(capsys, "runs", "--store", str(store), "--json")
    assert [r["run_id"] for r in json.loads(out)] == [report["run_id"]]


def test_ingest_with_a_bad_contract_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A contract file that does not load stops the command before the store is touched (exit 2)."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[[contract]]\nuse = "no_such_contract"\n')
    code, _, err = _run(capsys, "ingest", str(tmp_path), "--store", str(tmp_path / "s.duckdb"), "-c", str(bad))
    assert code == 2 and err.startswith("mattrace: error: ") and err.count("\n") == 1
    assert not (tmp_path / "s.duckdb").exists()


def test_query_prints_a_table_json_or_csv_and_bad_sql_is_one_line(
        traces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """query renders a table with a row count by default, exact values with --json/--csv, errors on one line."""
    store = str(tmp_path / "s.duckdb")
    _run(capsys, "ingest", str(traces), "--store", store)
    sql = "SELECT model, count(*) AS n, NULL AS nothing FROM traces GROUP BY model ORDER BY model"
    code, out, _ = _run(capsys, "query", sql, "--store", store)
    assert code == 0 and re.search(r"x\s+3\s+NULL", out) and out.rstrip().endswith("2 rows")
    assert json.loads(_run(capsys, "query", sql, "--store", store, "--json")[1]) == [
        {"model": "x", "n": 3, "nothing": None}, {"model": "y", "n": 3, "nothing": None}]
    assert _run(capsys, "query", sql, "--store", store, "--csv")[1] == "model,n,nothing\nx,3,\ny,3,\n"
    code, out, err = _run(capsys, "query", "SELECT * FROM nowhere", "--store", store)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("mattrace: error: query failed: Catalog Error: Table with name nowhere does not exist")


def test_metrics_table_shows_the_same_numbers_as_json(traces: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`metrics --by model` prints each rate as value [low-high] from the same rows --json gives."""
    store = str(tmp_path / "s.duckdb")
    _run(capsys, "ingest", str(traces), "--store", store)
    code, out, _ = _run(capsys, "metrics", "--store", store, "--by", "model", "--json")
    data = json.loads(out)
    assert code == 0 and data["by"] == ["model"] and [m["group"]["model"] for m in data["metrics"]] == ["x", "y"]
    x = data["metrics"][0]
    assert (x["success"]["hits"], x["success"]["total"], x["k"]) == (2, 3, 3)
    code, table, _ = _run(capsys, "metrics", "--store", store, "--by", "model")
    assert code == 0 and "pass^3" in table
    for m in data["metrics"]:
        cells = [m["success"], m["termination"], m["compliance"], m["factuality"], m["pass_k"], m["flip"]]
        shown = [DASH if c["value"] is None else
                 f"{c['value'] * 100:.0f}% [{c['low'] * 100:.0f}{DASH}{c['high'] * 100:.0f}]" for c in cells]
        row = next(line for line in table.splitlines() if line.startswith(m["group"]["model"] + " "))
        assert re.findall(rf"\d+% \[\d+{DASH}\d+\]|{DASH}", row) == shown


def test_metrics_options_by_run_k_and_per_contract(traces: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """--by takes comma lists, --run latest picks the newest run, --k sets pass^k, --per-contract adds compliance."""
    store = str(tmp_path / "s.duckdb")
    _run(capsys, "ingest", str(traces), "--store", store)
    code, out, _ = _run(capsys, "metrics", "--store", store, "--by", "model,seed", "--run", "latest",
                        "--k", "1", "--per-contract", "--json")
    data = json.loads(out)
    assert code == 0 and data["run"] == "run-1" and len(data["metrics"]) == 6
    assert {m["k"] for m in data["metrics"]} == {1}
    assert [(c["group"]["model"], c["subject"], c["failed"]) for c in data["compliance"]][:1] == [("x", "c1", 1)]
    code, out, _ = _run(capsys, "metrics", "--store", store, "--per-contract")
    assert code == 0 and "contract compliance" in out and "c1" in out
    code, out, _ = _run(capsys, "metrics", "--store", store, "--run", "nope")
    assert code == 0 and out.strip() == "no traces in the store for run nope"


def test_metrics_with_an_unknown_key_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --by key exits 2 with the valid keys; a missing store exits 2 saying to ingest."""
    code, _, err = _run(capsys, "metrics", "--store", str(tmp_path / "none.duckdb"))
    assert code == 2 and "no store here yet; run `mattrace ingest`" in err
    write_trace(labelled("t", seed=0), tmp_path)
    _run(capsys, "ingest", str(tmp_path), "--store", str(tmp_path / "s.duckdb"))
    code, _, err = _run(capsys, "metrics", "--store", str(tmp_path / "s.duckdb"), "--by", "colour")
    assert code == 2 and "cannot group metrics by 'colour'; valid: config, model, orchestration" in err


def test_runs_lists_runs_newest_first(traces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`runs` shows each run with traces and success; --json has the same counts."""
    store = str(tmp_path / "s.duckdb")
    _run(capsys, "ingest", str(traces), "--store", store)
    code, out, _ = _run(capsys, "runs", "--store", store)
    assert code == 0 and re.search(rf"run-1\s+2026-01-02 03:04:05\s+pytest\s+6\s+36\s+83% \[44{DASH}97\]\s+1", out)
    code, out, _ = _run(capsys, "runs", "--store", store, "--json", "--limit", "1")
    assert code == 0 and [(r["run_id"], r["traces"], r["failed_verdicts"]) for r in json.loads(out)] == [
        ("run-1", 6, 1)]


def test_store_commands_start_without_duckdb_for_help(tmp_path: Path) -> None:
    """--help of the store commands, and importing mattrace.store, leave duckdb unimported."""
    code = ("import json, sys\n"
            "from mattrace.cli import main\n"
            "import mattrace.store\n"
            "codes = [main([c, '--help']) for c in ('ingest', 'query', 'metrics', 'runs')]\n"
            "print(json.dumps({'codes': codes, 'duckdb': 'duckdb' in sys.modules}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(proc.stdout.splitlines()[-1]) == {"codes": [0, 0, 0, 0], "duckdb": False}


def test_metrics_are_drawn_wide_in_a_log_and_at_columns_when_set(traces: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a terminal or COLUMNS a row stays on one line; COLUMNS=80 narrows the table."""
    store = str(tmp_path / "s.duckdb")
    _run(capsys, "ingest", str(traces), "--store", store)
    monkeypatch.delenv("COLUMNS")
    _, wide, _ = _run(capsys, "metrics", "--store", store, "--by", "model,test")
    row = next(line for line in wide.splitlines() if line.startswith("x "))
    assert "test_a" in row and f"67% [21{DASH}94]" in row, "a row is not folded"
    monkeypatch.setenv("COLUMNS", "80")
    _, narrow, _ = _run(capsys, "metrics", "--store", store, "--by", "model,test")
    assert max(len(line) for line in narrow.splitlines()) <= 80 < max(len(line) for line in wide.splitlines())
