"""Replay: a recorded run re-runs from its cassette alone, to the same fingerprint, or says where it differs."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

import mattrace
from mattrace.apps.demo.support_desk import TICKETS, handle_ticket, tools
from mattrace.errors import ReplayMismatch, TraceFormatError
from mattrace.replay import Cassette, cassette_path, read_cassette
from mattrace.testing.provider import ScriptedLLM
from mattrace.trace import StepKind


def _desk(ticket: str, cassette: Path, mode: str) -> tuple[mattrace.Trace, Cassette]:
    with mattrace.record(f"desk/{ticket}", config={"ticket": ticket}, cassette=cassette,
                         record_mode=mode) as rec:
        handle_ticket(TICKETS[ticket])
        cassette_obj = mattrace.replay.active_cassette()
    assert cassette_obj is not None
    return rec.trace, cassette_obj


def test_the_support_desk_replays_to_the_same_fingerprint_without_calling_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recorded once, then replayed in 'none' mode with the model and tools broken: same fingerprint."""
    tape = tmp_path / "desk.cassette"
    recorded, _ = _desk("slow-refund", tape, "once")
    assert read_cassette(tape).sealed

    def broken(*args: object, **kwargs: object) -> None:
        raise AssertionError("a replayed run must not reach the model or the tools")

    monkeypatch.setattr(ScriptedLLM, "completion", broken)
    monkeypatch.setattr(tools, "KNOWLEDGE_BASE", [], raising=False)
    replayed, cassette = _desk("slow-refund", tape, "none")
    assert replayed.fingerprint() == recorded.fingerprint()
    assert cassette.mismatches == [] and cassette.unused() == []


def test_a_changed_tool_is_a_mismatch_at_its_step_with_an_argument_diff(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A retriever whose default k changed fails replay at the retrieval step, naming k with both values."""
    tape = tmp_path / "desk.cassette"
    recorded, _ = _desk("refund", tape, "once")
    retrieval = next(s for s in recorded.steps if s.kind is StepKind.RETRIEVAL)

    @mattrace.retriever
    def search_kb(query: str, k: int = 3) -> list[mattrace.Doc]:
        return []

    monkeypatch.setitem(tools.RESEARCH_TOOLS, "search_kb", search_kb)
    found: list[Cassette] = []
    with pytest.raises(ReplayMismatch), \
            mattrace.record("desk/refund", config={"ticket": "refund"}, cassette=tape, record_mode="none"):
        found.append(mattrace.replay.active_cassette())   # type: ignore[arg-type]
        handle_ticket(TICKETS["refund"])
    first = str(found[0].mismatches[0])
    assert first.startswith(f"step {retrieval.index}: retrieval search_kb by researcher is not in the cassette")
    assert "k: expected 2, got 3" in first


def test_modes_once_new_and_all(tmp_path: Path) -> None:
    """once records then replays; new records only calls it lacks; all records afresh; none needs a cassette."""
    tape = tmp_path / "t.cassette"
    calls: list[int] = []

    @mattrace.tool
    def roll(n: int) -> int:
        calls.append(n)
        return random.randint(0, 10**9)

    def run(mode: str, ns: list[int]) -> list[int]:
        with mattrace.record("dice", dir=tmp_path, cassette=tape, record_mode=mode):
            return [roll(n) for n in ns]

    first = run("once", [1, 2])
    assert run("once", [1, 2]) == first and calls == [1, 2]
    more = run("new", [1, 2, 3])
    assert more[:2] == first and calls == [1, 2, 3]
    assert [e["args"] for e in read_cassette(tape).entries] == [{"n": 1}, {"n": 2}, {"n": 3}]
    run("new", [1, 1])
    assert calls == [1, 2, 3, 1], "new: the second identical call was not in the cassette"
    assert [(e["args"], e["occurrence"]) for e in read_cassette(tape).entries][-1] == ({"n": 1}, 1)
    run("all", [5])
    assert calls == [1, 2, 3, 1, 5] and [e["args"] for e in read_cassette(tape).entries] == [{"n": 5}]
    with pytest.raises(ReplayMismatch, match="no cassette to replay from"):
        with mattrace.record("x", dir=tmp_path / "none", cassette=tmp_path / "nope", record_mode="none"):
            pass
    assert not (tmp_path / "none").exists(), "a refused replay leaves no trace file behind"


def test_identical_calls_replay_by_occurrence_and_errors_replay_as_errors(tmp_path: Path) -> None:
    """The n-th identical call gets the n-th answer; a recorded exception is raised again, same type and text."""
    tape = tmp_path / "t.cassette"
    state = {"n": 0}

    @mattrace.tool
    def tick() -> int:
        state["n"] += 1
        if state["n"] == 3:
            raise TimeoutError("slow service")
        return state["n"]

    def run(mode: str) -> list[object]:
        out: list[object] = []
        with mattrace.record("ticks", dir=tmp_path, cassette=tape, record_mode=mode):
            for _ in range(4):
                try:
                    out.append(tick())
                except TimeoutError as exc:
                    out.append(f"timeout: {exc}")
        return out

    recorded = run("once")
    assert recorded == [1, 2, "timeout: slow service", 4]
    state["n"] = 100
    assert run("none") == recorded


def test_clock_and_randomness_replay(tmp_path: Path) -> None:
    """mattrace.now(), mattrace.random() and the global random replay their recorded values."""
    tape = tmp_path / "t.cassette"

    def run(mode: str) -> tuple[float, float, float, mattrace.Trace]:
        with mattrace.record("clock", dir=tmp_path, cassette=tape, record_mode=mode) as rec:
            values = (mattrace.now(), mattrace.random(), random.random())
            mattrace.message("main", f"{values}")
        return (*values, rec.trace)

    first = run("once")
    second = run("none")
    assert first[:3] == second[:3]
    assert first[3].fingerprint() == second[3].fingerprint()


def test_unused_calls_are_reported(tmp_path: Path) -> None:
    """A replay that makes fewer calls than were recorded lists the ones left over."""
    tape = tmp_path / "t.cassette"

    @mattrace.tool
    def echo(x: str) -> str:
        return x

    with mattrace.record("a", dir=tmp_path, cassette=tape):
        echo("one")
        echo("two")
    with mattrace.record("a", dir=tmp_path, cassette=tape, record_mode="none"):
        echo("one")
        cassette = mattrace.replay.active_cassette()
    assert cassette is not None and [e["args"] for e in cassette.unused()] == [{"x": "two"}]


def test_concurrent_calls_replay_whatever_the_interleaving(tmp_path: Path) -> None:
    """Threads calling different tools in another order on replay still get their own answers."""
    tape = tmp_path / "t.cassette"
    import contextvars

    @mattrace.tool
    def work(name: str) -> str:
        return f"{name}-{random.random()}"

    def run(mode: str, order: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with mattrace.record("threads", dir=tmp_path, cassette=tape, record_mode=mode):
            threads = [threading.Thread(target=contextvars.copy_context().run,
                                        args=(lambda n=n: out.__setitem__(n, work(n)),)) for n in order]
            for t in threads:
                t.start()
                t.join()
        return out

    assert run("once", ["a", "b", "c"]) == run("none", ["c", "a", "b"])


def test_a_tampered_or_foreign_cassette_is_a_format_error(tmp_path: Path) -> None:
    """Editing a cassette line breaks its hash chain; another format version says so; both name file and line."""
    tape = tmp_path / "t.cassette"

    @mattrace.tool
    def echo(x: str) -> str:
        return x

    with mattrace.record("a", dir=tmp_path, cassette=tape):
        echo("one")
    lines = tape.read_text().splitlines()
    tampered = tmp_path / "tampered.cassette"
    tampered.write_text("\n".join([lines[0], lines[1].replace("one", "two"), *lines[2:]]) + "\n")
    with pytest.raises(TraceFormatError, match=r"tampered.cassette:2: hash chain broken"):
        read_cassette(tampered)
    foreign = tmp_path / "foreign.cassette"
    foreign.write_text(lines[0].replace('"version":1', '"version":9') + "\n")
    with pytest.raises(TraceFormatError, match=r"foreign.cassette:1: cassette format version 9"):
        read_cassette(foreign)
    truncated = tmp_path / "cut.cassette"
    truncated.write_text("\n".join(lines[:-1]) + "\n")
    assert not read_cassette(truncated).sealed and len(read_cassette(truncated).entries) == 1


def test_every_recorded_run_gets_a_cassette_next_to_its_trace(tmp_path: Path) -> None:
    """By default the cassette is x.cassette beside x.jsonl; cassette=False records none."""
    with mattrace.record("plain", dir=tmp_path) as rec:
        pass
    assert cassette_path(rec.path).exists() and cassette_path(rec.path).name.endswith(".cassette")
    with mattrace.record("none", dir=tmp_path, cassette=False) as rec2:
        pass
    assert not cassette_path(rec2.path).exists()


def test_every_demo_trace_replays_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo records its entry point; each of its traces re-runs from the cassette alone to the same trace."""
    from rich.console import Console

    from mattrace.apps.demo import run_demo
    from mattrace.replay import replay_trace

    with open(tmp_path / "out", "w") as out:
        traces = run_demo(runs=3, dir=tmp_path / "traces", console=Console(file=out))
    monkeypatch.setattr(ScriptedLLM, "completion", lambda *a, **k: (_ for _ in ()).throw(AssertionError("live")))
    (folder,) = (tmp_path / "traces").glob("demo-*")
    for path in sorted(folder.glob("*.jsonl")):
        result = replay_trace(path)
        assert result.identical, result.divergence
        assert result.error is None and result.mismatches == [] and result.unused == []
        assert result.path.parent == folder / "replays"
        assert result.replayed.labels["mattrace.replay_of"] == result.original.trace_id
    assert {t.outcome.status for t in traces} == {"success", "failure"}


def test_replay_of_a_decorated_function_and_a_changed_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """@mattrace.record functions replay; after a code change the replay names the first diverging step."""
    from mattrace.replay import replay_trace

    monkeypatch.chdir(tmp_path)
    (tmp_path / "flow_mod.py").write_text(
        "import mattrace\n"
        "GREETING = 'hello'\n"
        "@mattrace.tool\n"
        "def shout(text: str) -> str:\n"
        "    return text.upper()\n"
        "@mattrace.record('flow')\n"
        "def flow(name: str) -> str:\n"
        "    mattrace.message('main', f'{GREETING} {name}')\n"
        "    return shout(name)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import flow_mod  # type: ignore[import-not-found]

    assert flow_mod.flow("ana") == "ANA"
    (path,) = (tmp_path / ".mattrace" / "traces").glob("*.jsonl")
    assert replay_trace(path).identical
    monkeypatch.setattr(flow_mod, "GREETING", "hi")
    changed = replay_trace(path)
    assert not changed.identical and changed.divergence is not None
    assert changed.divergence.index == 0 and changed.divergence.field == "content"


def test_a_trace_without_an_entry_point_cannot_be_replayed(tmp_path: Path) -> None:
    """Replaying a trace that records no entry point says how to record one."""
    from mattrace.replay import replay_trace

    with mattrace.record("bare", dir=tmp_path) as rec:
        mattrace.message("main", "hi")
    with pytest.raises(ReplayMismatch, match="records no entry point"):
        replay_trace(rec.path)


@pytest.mark.slow
def test_mattrace_replay_reruns_a_demo_trace_in_a_fresh_process(tmp_path: Path) -> None:
    """`mattrace demo` then `mattrace replay TRACE` in new processes (litellm imported only inside the run):
    refused until the demo module is allowed, then identical."""
    import json
    import os
    import subprocess
    import sys

    demo = subprocess.run([sys.executable, "-m", "mattrace", "demo"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    trace = sorted((tmp_path / ".mattrace" / "traces").glob("demo-*/*slow-refund*.jsonl"))[0]
    env = {**os.environ, "OPENAI_API_KEY": ""}
    refused = subprocess.run([sys.executable, "-m", "mattrace", "replay", str(trace)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300, env=env)
    assert refused.returncode == 2 and "--entrypoint mattrace.apps.demo._run:" in refused.stderr
    done = subprocess.run([sys.executable, "-m", "mattrace", "replay", str(trace), "--json",
                           "--allow-module", "mattrace.apps.demo"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["identical"] and report["fingerprint"] == mattrace.load(trace).fingerprint()


def test_replay_command_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """0 for an identical replay, 1 with the divergence after a change, 2 for a trace without an entry point."""
    from mattrace.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "cli_flow.py").write_text(
        "import mattrace\nWORD = 'a'\n@mattrace.record('cli-flow')\n"
        "def flow() -> None:\n    mattrace.message('main', WORD)\n")
    import cli_flow  # type: ignore[import-not-found]

    cli_flow.flow()
    (path,) = (tmp_path / ".mattrace" / "traces").glob("*.jsonl")
    assert main(["replay", str(path)]) == 0
    assert "identical: the replay reproduced 2 steps" in capsys.readouterr().out
    monkeypatch.setattr(cli_flow, "WORD", "b")
    assert main(["replay", str(path)]) == 1
    assert "step 0 (message by main): content differs" in capsys.readouterr().out
    with mattrace.record("bare", dir=tmp_path) as rec:
        pass
    assert main(["replay", str(rec.path)]) == 2
    assert "records no entry point" in capsys.readouterr().err


def test_a_call_by_another_agent_is_a_mismatch_that_names_the_agents(tmp_path: Path) -> None:
    """The same call made by a different agent is not served; the mismatch says which agent was recorded."""
    tape = tmp_path / "t.cassette"

    @mattrace.tool
    def echo(x: str) -> str:
        return x

    with mattrace.record("a", dir=tmp_path, cassette=tape), mattrace.agent("planner"):
        echo("one")
    with pytest.raises(ReplayMismatch, match=r"\(agent\): expected 'planner', got 'writer'"), \
            mattrace.record("a", dir=tmp_path, cassette=tape, record_mode="none"), mattrace.agent("writer"):
        echo("one")


def test_a_program_seeded_before_its_run_stays_deterministic(tmp_path: Path) -> None:
    """Seeding random before record() still gives the same numbers inside the run, every time."""
    def run() -> list[float]:
        random.seed(7)
        with mattrace.record("seeded", dir=tmp_path):
            return [random.random(), mattrace.random()]

    assert run() == run()


@pytest.mark.parametrize(("args", "result"), [
    ({"n": 1, "s": "é"}, {"b": True, "none": None}), ({"x": 1e-07}, 1), ({"n": 1}, [1e-05, 2]),
    ({"n": 1}, 2.5e-06), ({"n": 2**70}, "big"), ({"n": 1}, {"z": 1, "a": 2}), ({"n": 1}, {1e-07: "float key"}),
])
def test_cassette_lines_are_canonical_with_and_without_floats(tmp_path: Path, args: dict[str, object],
                                                              result: object) -> None:
    """A cassette line is the canonical JSON of its record, whether its values took the
    unchecked encoding (no floats) or not (tiny floats, big integers), and replays the same
    value; the same call twice is numbered by occurrence."""
    import json

    tape = tmp_path / "t.cassette"

    @mattrace.tool
    def answer(n: object = None, s: object = None, x: object = None) -> object:
        return result

    with mattrace.record("canonical", dir=tmp_path, cassette=tape):
        answer(**args), answer(**args)
    for line in tape.read_bytes().splitlines():
        body = line[:line.rindex(b',"h":"')] + b"}"
        record = json.loads(body)
        assert body == json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert [e["occurrence"] for e in read_cassette(tape).entries] == [0, 1]
    with mattrace.record("canonical", dir=tmp_path, cassette=tape, record_mode="none"):
        assert answer(**args) == result


def test_a_recording_cassette_keeps_args_as_before_the_call_and_redacts_what_the_line_shows(tmp_path: Path) -> None:
    """Args are taken before the call (the tool changes its dict after), a secret in the result
    alone or in the args is redacted, and identical calls are numbered whichever way their line
    was written."""
    tape = tmp_path / "t.cassette"
    key = "sk-abcdefghijklmnopqrstuvwx12"

    @mattrace.tool
    def change(opts: dict[str, object]) -> str:
        opts["added"] = True
        return "changed"

    @mattrace.tool
    def reveal(name: str) -> str:
        return f"{name} uses {key}"

    @mattrace.tool
    def login(user: str, password: str) -> str:
        return "welcome"

    with mattrace.record("cassette", dir=tmp_path, cassette=tape):
        change({"a": 1})
        reveal("svc"), reveal("svc")
        reveal(key)
        login("ann", "hunter2-but-longer")
    entries = read_cassette(tape).entries
    assert entries[4]["args"] == {"user": "ann", "password": "[REDACTED]"} and entries[4]["result"] == "welcome"
    assert "hunter2" not in tape.read_text(encoding="utf-8")
    assert entries[0]["args"] == {"opts": {"a": 1}}
    assert [(e["args"], e["result"], e["occurrence"]) for e in entries[1:3]] == [
        ({"name": "svc"}, "svc uses [REDACTED]", 0), ({"name": "svc"}, "svc uses [REDACTED]", 1)]
    assert entries[3]["args"] == {"name": "[REDACTED]"} and key not in tape.read_text(encoding="utf-8")
