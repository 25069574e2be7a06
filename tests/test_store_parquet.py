"""Parquet export of the store: one Hive partition per run and table, read back with DuckDB, and the CLI.

Two runs, each with contract verdicts (and violations), injected faults and governance decisions,
recorded through the public API and ingested into one store::

    run-1       T1 x 3 (labelled), G1: lookup under a Timeout, e-mail to an outsider blocked
    nightly/2   T1 x 1 (labelled), G2: lookup under a Timeout, e-mail to a customer allowed

The second run id has a '/' so that its directory name must be encoded (``run_id=nightly%2F2``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

import mattrace
from mattrace.cli import main
from mattrace.contracts import step
from mattrace.errors import StoreError
from mattrace.faults import Timeout
from mattrace.governance import Governor, block
from mattrace.store import Store
from tests.test_store_builders import check_line, labelled, write_results, write_trace

RUNS = ("run-1", "nightly/2")
TABLES = ("traces", "steps", "verdicts", "violations", "faults", "decisions")
# what each table's exported rows are, written out here rather than taken from the exporter
EXPECTED = {
    "traces": "SELECT * EXCLUDE (run_id), run_id FROM traces",
    "steps": "SELECT x.*, t.run_id FROM steps x JOIN traces t USING (trace_id)",
    "verdicts": "SELECT x.*, t.run_id FROM verdicts x JOIN traces t USING (trace_id)",
    "violations": "SELECT x.*, t.run_id FROM violations x JOIN traces t USING (trace_id)",
    "faults": "SELECT * EXCLUDE (run_id), run_id FROM faults",
    "decisions": "SELECT * EXCLUDE (run_id), run_id FROM decisions",
}
OUTSIDERS = Governor([block(step.tool("send_email") & step.arg("to").not_matches(r"@example\.com$"),
                            "customers only", rule_id="no-outsiders")])


@mattrace.tool
def lookup(order: int) -> str:
    """The order's status."""
    return f"order {order}: shipped"


@mattrace.tool(side_effect=True)
def send_email(to: str, body: str) -> str:
    """Send an e-mail (a side effect)."""
    return "sent"


def _governed(directory: Path, name: str, run: str, to: str) -> str:
    """A recorded run of ``run`` with a Timeout fault and one governance decision; its trace id."""
    with mattrace.record(name, dir=directory, cassette=False, governor=OUTSIDERS, faults=[Timeout("tool:lookup")],
                         labels={"mattrace.run": run, "mattrace.test": name}) as rec:
        try:
            lookup(42)
        except Exception:
            pass
        send_email(to, "We are looking into your order.")
        rec.set_outcome(success=True)
    return rec.trace.trace_id


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two runs, ingested into a store file the tests open read-only."""
    base = tmp_path_factory.mktemp("parquet")
    traces = base / "traces"
    ids = {run: [write_trace(labelled("T1", seed=seed, run=run), traces).stem for seed in range(n)]
           for run, n in zip(RUNS, (3, 1), strict=True)}
    ids["run-1"].append(_governed(traces, "G1", "run-1", "x@evil.example"))
    ids["nightly/2"].append(_governed(traces, "G2", "nightly/2", "ana@example.com"))
    checks = [check_line(trace_id, {"c1": "pass", "c2": "fail" if i % 2 == 0 else "pass"})
              for run in RUNS for i, trace_id in enumerate(ids[run])]
    write_results(base / "results" / "run-1" / "main.jsonl", "run-1", checks)
    path = base / "s.duckdb"
    with Store.open(path) as store:
        report = store.ingest([traces, base / "results"])
    assert report.ok and report.traces_added == 6 and report.verdicts_added == 12
    return path


@pytest.fixture
def store(store_path: Path) -> Any:
    """The dataset's store, read-only (as the CLI opens it to export)."""
    with Store.open(store_path, read_only=True) as s:
        yield s


def _read(directory: Path, table: str) -> str:
    """The exported files of ``table``, with run_id from the directory names."""
    return f"read_parquet('{directory / table}/*/*.parquet', hive_partitioning = true)"


def _per_run(store: Store, sql: str) -> dict[str, int]:
    return {run: int(n) for run, n in store.query(f"SELECT run_id, count(*) FROM ({sql}) GROUP BY run_id")[1]}


def _partitions(directory: Path, table: str) -> set[str]:
    """The run ids of a table's partition directories (decoded)."""
    return {unquote(p.name.removeprefix("run_id=")) for p in (directory / table).iterdir() if p.is_dir()}


def test_the_dataset_has_rows_of_every_table_in_both_runs(store: Store) -> None:
    """The checks below compare like with like: every exported table has rows in each run."""
    for table in TABLES:
        assert set(_per_run(store, EXPECTED[table])) == set(RUNS), table


def test_every_table_is_written_as_one_partition_per_run_and_reads_back_the_same(store: Store,
                                                                                  tmp_path: Path) -> None:
    """Counts per table and per run, rows and partition directories all match the store."""
    out = tmp_path / "lake"
    written = store.export_parquet(out)
    assert list(written) == list(TABLES)
    for table in TABLES:
        expected = _per_run(store, EXPECTED[table])
        assert written[table] == sum(expected.values()), table
        assert _per_run(store, f"SELECT * FROM {_read(out, table)}") == expected, table
        names = {p.name for p in (out / table).iterdir()}
        assert names == {f"run_id={quote(run, safe='')}" for run in RUNS}, table
        assert all(any(p.glob("*.parquet")) for p in (out / table).iterdir()), table
        columns = ", ".join(store.query(f"SELECT * FROM ({EXPECTED[table]}) LIMIT 0")[0])
        for a, b in ((f"SELECT {columns} FROM {_read(out, table)}", EXPECTED[table]),
                     (EXPECTED[table], f"SELECT {columns} FROM {_read(out, table)}")):
            extra = store.query(f"SELECT count(*) FROM (SELECT {columns} FROM ({a}) EXCEPT ALL "
                                f"SELECT {columns} FROM ({b}))")[1][0][0]
            assert extra == 0, f"{table}: {extra} rows differ"


def test_the_run_id_is_in_the_directory_names_not_in_the_files(store: Store, tmp_path: Path) -> None:
    """A reader without hive partitioning sees no run_id column (Spark refuses one in both places)."""
    store.export_parquet(tmp_path)
    files = f"read_parquet('{tmp_path}/steps/*/*.parquet', hive_partitioning = false)"
    columns, _ = store.query(f"SELECT * FROM {files} LIMIT 0")
    assert "run_id" not in columns and "trace_id" in columns


def test_one_run_exports_only_that_run(store: Store, tmp_path: Path) -> None:
    """--run: only its partitions, with its row counts."""
    written = store.export_parquet(tmp_path, run_id="nightly/2")
    for table in TABLES:
        expected = _per_run(store, EXPECTED[table])["nightly/2"]
        assert written[table] == expected, table
        assert _partitions(tmp_path, table) == {"nightly/2"}, table
        assert _per_run(store, f"SELECT * FROM {_read(tmp_path, table)}") == {"nightly/2": expected}


def test_exporting_again_replaces_the_runs_partitions_and_keeps_other_runs(store: Store, tmp_path: Path) -> None:
    """A second export does not duplicate rows; stale files of an exported run go; another store's runs stay."""
    store.export_parquet(tmp_path)
    run_1 = tmp_path / "steps" / "run_id=run-1"
    (data,) = run_1.glob("*.parquet")
    shutil.copy(data, run_1 / "stale_9.parquet")   # a file an earlier, larger export left behind
    other = tmp_path / "steps" / "run_id=other-machine"
    shutil.copytree(run_1, other)                  # a run exported from another store
    kept = sorted(p.read_bytes() for p in other.iterdir())
    written = store.export_parquet(tmp_path)
    expected = _per_run(store, EXPECTED["steps"])
    assert written["steps"] == sum(expected.values())
    assert list(run_1.iterdir()) == [data]
    assert sorted(p.read_bytes() for p in other.iterdir()) == kept
    read = _per_run(store, f"SELECT * FROM {_read(tmp_path, 'steps')}")
    assert read.pop("other-machine") == 2 * expected["run-1"]
    assert read == expected
    store.export_parquet(tmp_path, run_id="nightly/2")
    store.export_parquet(tmp_path, run_id="nightly/2")
    for table in ("traces", "verdicts"):
        assert _per_run(store, f"SELECT * FROM {_read(tmp_path, table)}") == _per_run(store, EXPECTED[table])


def test_an_unknown_run_or_an_unwritable_directory_is_a_store_error(store: Store, tmp_path: Path) -> None:
    """Each error names what is wrong, and nothing is written."""
    with pytest.raises(StoreError, match=r"no run 'nope' in the store"):
        store.export_parquet(tmp_path / "lake", run_id="nope")
    assert not (tmp_path / "lake").exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match=r"cannot write the Parquet export") as err:
        store.export_parquet(blocker / "lake")
    assert str(blocker / "lake") in str(err.value)


def test_mattrace_export_parquet_writes_every_run_and_says_what(store_path: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI prints the rows per table and the directory; the files hold the store's rows."""
    out = tmp_path / "lake"
    assert main(["export", "--parquet", str(out), "--store", str(store_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    with Store.open(store_path, read_only=True) as store:
        counts = {t: sum(_per_run(store, EXPECTED[t]).values()) for t in TABLES}
        read = {t: sum(_per_run(store, f"SELECT * FROM {_read(out, t)}").values()) for t in TABLES}
    assert [line.split()[:2] for line in lines[:-1]] == [[t, str(counts[t])] for t in TABLES]
    assert str(out) in lines[-1] and "every run" in lines[-1]
    assert read == counts


def test_mattrace_export_parquet_run_exports_one_run(store_path: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """--run ID: only that run's partitions; 'latest' is the newest run; an unknown run is an error that names it."""
    assert main(["export", "--parquet", str(tmp_path), "--store", str(store_path), "--run", "run-1"]) == 0
    assert "run run-1" in capsys.readouterr().out.splitlines()[-1]
    assert all(_partitions(tmp_path, t) == {"run-1"} for t in TABLES)
    with Store.open(store_path, read_only=True) as store:
        (newest,) = store.runs(limit=1)
    latest = tmp_path / "latest"
    assert main(["export", "--parquet", str(latest), "--store", str(store_path), "--run", "latest"]) == 0
    assert f"run {newest.run_id}" in capsys.readouterr().out.splitlines()[-1]
    assert all(_partitions(latest, t) == {newest.run_id} for t in TABLES)
    assert main(["export", "--parquet", str(tmp_path / "x"), "--store", str(store_path), "--run", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mattrace: error: ") and "'nope'" in err and err.count("\n") == 1


def test_mattrace_export_parquet_from_the_default_store(store_path: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Without --store it reads .mattrace/mattrace.duckdb in the working directory."""
    default = Path(".mattrace/mattrace.duckdb")
    default.parent.mkdir()
    shutil.copy(store_path, default)
    assert main(["export", "--parquet", "lake"]) == 0
    assert _partitions(Path("lake"), "traces") == set(RUNS)
    assert "lake" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["export"], "export needs --otlp ENDPOINT"),
    (["export", "t.jsonl", "--otlp", "http://localhost:4318", "--parquet", "lake"],
     "--otlp and --parquet are two different exports"),
    (["export", "t.jsonl", "--parquet", "lake"], "not trace files such as t.jsonl"),
    (["export", "t.jsonl", "--otlp", "http://localhost:4318", "--run", "run-1"], "--run is for --parquet"),
    (["export", "--otlp", "http://localhost:4318"], "--otlp needs the trace files"),
    (["export", "--parquet", "lake", "-c", "contracts.toml"], "--contracts is for --otlp"),
])
def test_export_usage_errors(argv: list[str], message: str, store_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """Neither or both exports, trace files with --parquet, --run with --otlp: one line, exit 2, nothing written."""
    assert main([*argv, "--store", str(store_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("mattrace: error: ") and captured.err.count("\n") == 1
    assert message in captured.err and captured.out == ""
    assert not Path("lake").exists()
