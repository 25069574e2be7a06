"""Lock contention: a second process holding the DuckDB file makes Store.open wait, then give up clearly."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mattrace.errors import StoreError
from mattrace.store import Store

HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()      # hold the lock until told to let go
con.close()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Another process that opened the store for writing and holds it until its stdin gets a line."""
    path = tmp_path / "s.duckdb"
    Store.open(path).close()
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:   # closes the pipes on exit
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        try:
            yield path, proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.mark.slow
def test_a_held_store_is_retried_then_refused_naming_the_file(holder: tuple[Path, subprocess.Popen[str]]) -> None:
    """While another process holds the file, open retries for the timeout and then says another process holds it."""
    path, proc = holder
    started = time.monotonic()
    with pytest.raises(StoreError) as err:
        Store.open(path, timeout=0.5)
    waited = time.monotonic() - started
    assert 0.5 <= waited < 5
    message = str(err.value)
    assert message.startswith(f"{path}: another process (PID {proc.pid}) holds the store")
    assert "waited 0.5 s" in message
    with pytest.raises(StoreError, match="another process"):
        Store.open(path, read_only=True, timeout=0.1)   # readers cannot share it with a writer either


@pytest.mark.slow
def test_open_gets_the_store_once_the_other_process_lets_go(holder: tuple[Path, subprocess.Popen[str]]) -> None:
    """An open that starts while the file is held succeeds when the holder closes it within the timeout."""
    path, proc = holder
    assert proc.stdin is not None

    def release() -> None:
        time.sleep(0.4)
        assert proc.stdin is not None
        proc.stdin.write("done\n")
        proc.stdin.flush()

    threading.Thread(target=release, daemon=True).start()
    started = time.monotonic()
    with Store.open(path, timeout=10) as store:
        assert store.query("SELECT count(*) FROM traces")[1] == [(0,)]
    assert time.monotonic() - started >= 0.3
