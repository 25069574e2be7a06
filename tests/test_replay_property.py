"""Property: any program of boundary calls, interleaved across asyncio tasks, replays to the same trace."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import mattrace

Op = tuple[Any, ...]

ops = st.one_of(
    st.tuples(st.just("call"), st.integers(0, 2), st.integers(0, 9), st.booleans(), st.integers(0, 3)),
    st.tuples(st.just("write"), st.sampled_from(["a", "b"])),
    st.tuples(st.just("read"), st.sampled_from(["a", "b", "c"])),
    st.tuples(st.just("search"), st.integers(0, 3)),
    st.tuples(st.just("now"),),
)
programs = st.lists(st.lists(ops, min_size=1, max_size=5), min_size=1, max_size=3)


def _boundaries() -> tuple[list[Any], Any]:
    """Async tools with live latency and live randomness, and a retriever; fresh per run."""
    def make(i: int) -> Any:
        @mattrace.tool(name=f"service{i}")
        async def service(x: int, fail: bool, delay_ms: int) -> int:
            await asyncio.sleep(delay_ms / 1000)     # simulated network latency
            if fail:
                raise ConnectionError(f"service{i} unavailable for {x}")
            return int.from_bytes(os.urandom(4), "big")   # differs on every live call
        return service

    @mattrace.retriever(trusted=False)
    def search(q: int) -> list[mattrace.Doc]:
        return [mattrace.Doc(id=f"d{q}-{os.urandom(2).hex()}", text=f"text {q}")]

    return [make(i) for i in range(3)], search


def _run(program: list[list[Op]], path: Path, tape: Path, mode: str) -> mattrace.Trace:
    services, search = _boundaries()
    memory = mattrace.Memory("shared")

    async def task(n: int, ops: list[Op]) -> None:
        last: Any = n
        with mattrace.agent(f"agent{n}"):
            for op in ops:
                if op[0] == "call":
                    try:
                        last = await services[op[1]](op[2], op[3], op[4])
                    except ConnectionError as exc:
                        last = str(exc)
                elif op[0] == "write":
                    memory[op[1]] = last
                elif op[0] == "read":
                    last = memory.get(op[1])
                elif op[0] == "search":
                    last = search(op[1])[0].id
                else:
                    last = mattrace.now()

    async def main() -> None:
        await asyncio.gather(*(task(n, ops) for n, ops in enumerate(program)))

    with mattrace.record("program", dir=path, cassette=tape, record_mode=mode) as rec:
        asyncio.run(main())
    return rec.trace


@settings(max_examples=30)
@given(program=programs)
def test_interleaved_async_programs_replay_to_identical_traces(program: list[list[Op]]) -> None:
    """Recorded live (latency, randomness, errors, interleaving), replayed from the cassette: same fingerprint."""
    with tempfile.TemporaryDirectory() as tmp:
        tape = Path(tmp) / "p.cassette"
        live = _run(program, Path(tmp), tape, "all")
        replayed = _run(program, Path(tmp), tape, "none")
    assert replayed.fingerprint() == live.fingerprint(), mattrace.replay.first_divergence(live, replayed)
