"""Behaviour of the recording API: boundaries, record(), agents, memory, redaction, interceptors."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest

import mattrace
from mattrace import (
    Doc,
    Memory,
    Outcome,
    Recorder,
    RecordingError,
    Redactor,
    Source,
    StepError,
    StepKind,
    Trace,
)
from mattrace.provenance import context_reads
from mattrace.recording import Answer, Call, CallOutcome

REDACTED = "[REDACTED]"


def _saved(rec: Recorder) -> Trace:
    """The trace as stored in rec's file, after checking that the file verifies."""
    report = mattrace.verify(rec.path)
    assert report.ok, report
    trace = mattrace.load(rec.path)
    assert trace.steps == rec.trace.steps
    return trace


# -- tools and retrievers ------------------------------------------------------------------------


def test_tool_call_is_one_step_with_args_and_result(trace_dir: Path) -> None:
    """A @tool call becomes one tool step with target, bound args (defaults included) and result."""
    @mattrace.tool(side_effect=True)
    def send(to: str, body: str, cc: str | None = None) -> dict[str, Any]:
        return {"sent": True, "to": to}

    with mattrace.record("tool", dir=trace_dir) as rec:
        assert send("ann@example.com", body="hi") == {"sent": True, "to": "ann@example.com"}
    step = _saved(rec).steps[0]
    assert (step.kind, step.target, step.agent, step.side_effect) == ("tool", "send", "main", True)
    assert step.args == {"to": "ann@example.com", "body": "hi", "cc": None}
    assert step.result == {"sent": True, "to": "ann@example.com"}
    assert step.error is None
    assert step.sources == (Source(kind="tool", ref="send", trusted=True),)
    assert step.t_start is not None and step.t_end is not None and step.t_start <= step.t_end


def test_tool_that_raises_is_recorded_and_reraised_unchanged(trace_dir: Path) -> None:
    """A tool's exception is recorded as error {type, message} and re-raised as the same object."""
    boom = ValueError("no such order: 42")

    @mattrace.tool(name="lookup")
    def lookup(order: int) -> str:
        raise boom

    with mattrace.record("err", dir=trace_dir) as rec:
        with pytest.raises(ValueError) as exc:
            lookup(42)
        assert exc.value is boom
    step = _saved(rec).steps[0]
    assert step.error == StepError(type="ValueError", message="no such order: 42")
    assert (step.result, step.sources, step.args) == (None, (), {"order": 42})
    assert rec.trace.outcome == Outcome(status="success")  # the run itself handled it


def test_async_tool_and_async_retriever_are_recorded(trace_dir: Path) -> None:
    """Async tools and retrievers are awaited and recorded, errors included."""
    @mattrace.tool
    async def fetch(url: str) -> str:
        await asyncio.sleep(0)
        return f"<html>{url}</html>"

    @mattrace.tool
    async def broken() -> None:
        await asyncio.sleep(0)
        raise ConnectionError("reset")

    @mattrace.retriever(trusted=False)
    async def web(query: str) -> list[Doc]:
        await asyncio.sleep(0)
        return [Doc(id="w1", text=f"about {query}")]

    async def main() -> Recorder:
        async with mattrace.record("async", dir=trace_dir) as rec:
            assert await fetch("a.b") == "<html>a.b</html>"
            with pytest.raises(ConnectionError):
                await broken()
            assert await web("cats") == [Doc(id="w1", text="about cats")]
        return rec

    steps = _saved(asyncio.run(main())).steps
    assert [(s.kind, s.target) for s in steps] == [
        ("tool", "fetch"), ("tool", "broken"), ("retrieval", "web"), ("end", None)]
    assert steps[0].result == "<html>a.b</html>"
    assert steps[1].error == StepError(type="ConnectionError", message="reset")
    assert steps[2].result == [{"id": "w1", "text": "about cats", "trusted": False}]
    assert steps[2].sources == (Source(kind="retrieval", ref="w1", trusted=False),)


def test_retriever_docs_carry_ids_and_trusted_flags(trace_dir: Path) -> None:
    """Doc objects, dicts and plain strings become sources with ids and per-document trust."""
    @mattrace.retriever(name="kb")
    def kb(query: str) -> list[Any]:
        return [Doc(id="d1", text="one", trusted=False), Doc(id="d2", text="two"),
                {"id": 7, "text": "seven"}, {"text": "no id", "trusted": False}, "plain text"]

    @mattrace.retriever(trusted=False)
    def inbox(query: str) -> list[str]:
        return ["mail one", "mail two"]

    with mattrace.record("docs", dir=trace_dir) as rec:
        docs = kb("q")
        assert docs[0] == Doc(id="d1", text="one", trusted=False)  # the caller gets its own values
        assert inbox("q") == ["mail one", "mail two"]
    kb_step, inbox_step = _saved(rec).steps[:2]
    assert kb_step.sources == (
        Source(kind="retrieval", ref="d1", trusted=False),
        Source(kind="retrieval", ref="d2", trusted=True),
        Source(kind="retrieval", ref="7", trusted=True),
        Source(kind="retrieval", ref="kb#3", trusted=False),
        Source(kind="retrieval", ref="kb#4", trusted=True),
    )
    assert [d["text"] for d in kb_step.result] == ["one", "two", "seven", "no id", "plain text"]
    assert inbox_step.sources == (Source(kind="retrieval", ref="inbox#0", trusted=False),
                                  Source(kind="retrieval", ref="inbox#1", trusted=False))
    assert inbox_step.untrusted


def test_tool_args_containing_retrieved_text_read_the_retrieval(trace_dir: Path) -> None:
    """A tool whose argument quotes earlier retrieved text reads that retrieval: inferred at
    analysis time, not written into the recorded step."""
    @mattrace.retriever(trusted=False)
    def search(query: str) -> list[Doc]:
        return [Doc(id="p", text="Refunds are allowed within 30 days of purchase.")]

    @mattrace.tool(side_effect=True)
    def send_email(to: str, body: str) -> str:
        return "ok"

    with mattrace.record("reads", dir=trace_dir) as rec:
        docs = search("refund policy")
        mattrace.message("planner", "thinking about it")
        send_email("bob@example.com", f"Hi Bob. Policy: {docs[0].text} Regards")
        send_email("bob@example.com", "an unrelated body text")
    steps = _saved(rec).steps
    assert [s.reads for s in steps[:4]] == [(), (), (), ()]
    flow = context_reads(steps)
    assert flow[2].inferred == (0,)
    assert flow[3].inferred == ()


# -- record() as context manager and decorator ------------------------------------------------


def test_record_block_writes_a_sealed_file_ending_in_end(trace_dir: Path) -> None:
    """A record() block writes its trace as it goes and seals it with a final 'end' step."""
    with mattrace.record("flow", dir=trace_dir, config={"seed": 3}, labels={"k": "v"}) as rec:
        assert mattrace.active_recorder() is rec
        step = mattrace.message("user", "hello")
        assert step is not None and step.index == 0
        assert rec.path.exists() and not rec.closed
    assert mattrace.active_recorder() is None
    assert rec.closed and rec.path.parent == trace_dir
    trace = _saved(rec)
    assert (trace.name, trace.config, trace.labels) == ("flow", {"seed": 3}, {"k": "v"})
    assert [s.kind for s in trace.steps] == ["message", "end"]
    assert trace.steps[-1].agent == "main"
    assert trace.outcome == Outcome(status="success")


def test_record_defaults_to_mattrace_traces_in_the_working_directory() -> None:
    """Without dir=, trace files land in .mattrace/traces under the current directory."""
    with mattrace.record("default dir") as rec:
        pass
    assert rec.path.parent.resolve() == (Path.cwd() / ".mattrace" / "traces").resolve()
    assert rec.path.name.startswith("default-dir-")


def test_set_outcome_lands_in_the_end_step_and_the_seal(trace_dir: Path) -> None:
    """rec.set_outcome(success=False, output=...) is the end step's result and the sealed outcome."""
    with mattrace.record("oracle", dir=trace_dir) as rec:
        mattrace.message("agent", "the answer is 41")
        rec.set_outcome(success=False, output={"answer": 41}, reason="expected 42")
    trace = _saved(rec)
    expected = Outcome(status="failure", output={"answer": 41}, reason="expected 42")
    assert trace.outcome == expected
    end = trace.steps[-1]
    assert end.kind == "end"
    assert Outcome.model_validate(end.result) == expected


def test_set_outcome_without_status_or_success_is_an_error(trace_dir: Path) -> None:
    """set_outcome() with neither status nor success raises RecordingError."""
    with mattrace.record("oracle", dir=trace_dir) as rec:
        with pytest.raises(RecordingError, match="status"):
            rec.set_outcome()


def test_exception_in_block_ends_run_as_error_and_propagates(trace_dir: Path) -> None:
    """An exception escaping record() seals the run as 'error' (TimeoutError: 'timeout') and propagates."""
    err = RuntimeError("agent crashed")
    with pytest.raises(RuntimeError) as exc:
        with mattrace.record("crash", dir=trace_dir) as rec:
            raise err
    assert exc.value is err
    trace = _saved(rec)
    assert trace.outcome is not None and trace.outcome.status == "error"
    assert "agent crashed" in (trace.outcome.reason or "")
    assert trace.steps[-1].kind == "end"
    assert trace.steps[-1].error == StepError(type="RuntimeError", message="agent crashed")

    with pytest.raises(TimeoutError):
        with mattrace.record("slow", dir=trace_dir) as rec2:
            raise TimeoutError("too slow")
    assert _saved(rec2).outcome.status == "timeout"  # type: ignore[union-attr]


def test_record_decorator_on_sync_function_writes_one_trace_per_call() -> None:
    """@record on a function records each call as its own sealed trace with outcome success."""
    seen: list[Recorder] = []

    @mattrace.record("deco")
    def run(x: int) -> int:
        rec = mattrace.active_recorder()
        assert rec is not None
        seen.append(rec)
        mattrace.message("main", f"run {x}")
        return x * 2

    assert run(1) == 2
    assert run(2) == 4
    assert run.__name__ == "run"
    assert len(seen) == 2 and seen[0].path != seen[1].path
    assert sorted(Path(".mattrace/traces").glob("*.jsonl")) == sorted(r.path for r in seen)
    for x, rec in enumerate(seen, start=1):
        trace = _saved(rec)
        assert trace.name == "deco"
        assert [s.content for s in trace.steps[:-1]] == [f"run {x}"]
        assert trace.steps[-1].kind == "end"
        assert trace.outcome == Outcome(status="success")
        assert trace.entrypoint is None  # a local function cannot be re-imported


def test_bare_record_decorator_names_the_run_after_the_function() -> None:
    """A bare @record uses the function's qualified name as the run name."""
    seen: list[Recorder] = []

    @mattrace.record
    def bare() -> str:
        rec = mattrace.active_recorder()
        assert rec is not None
        seen.append(rec)
        return "ok"

    assert bare() == "ok"
    assert _saved(seen[0]).name.endswith("bare")


def test_record_decorator_on_async_function(trace_dir: Path) -> None:
    """@record on an async function records each awaited call as its own trace."""
    seen: list[Recorder] = []

    @mattrace.record("adeco", dir=trace_dir)
    async def run(x: int) -> int:
        await asyncio.sleep(0)
        rec = mattrace.active_recorder()
        assert rec is not None
        seen.append(rec)
        mattrace.message("main", f"async {x}")
        return x + 1

    async def main() -> list[int]:
        return list(await asyncio.gather(run(1), run(2)))

    assert asyncio.run(main()) == [2, 3]
    assert len({r.path for r in seen}) == 2
    for rec in seen:
        trace = _saved(rec)
        assert trace.outcome == Outcome(status="success")
        assert [s.kind for s in trace.steps] == ["message", "end"]


def test_record_decorator_records_errors_and_timeouts_and_reraises(trace_dir: Path) -> None:
    """A decorated function that raises ends its trace as 'error' ('timeout' for TimeoutError) and re-raises."""
    seen: list[Recorder] = []

    @mattrace.record("fails", dir=trace_dir)
    def fails(exc: BaseException) -> None:
        seen.append(mattrace.active_recorder())  # type: ignore[arg-type]
        raise exc

    @mattrace.record("afails", dir=trace_dir)
    async def afails(exc: BaseException) -> None:
        seen.append(mattrace.active_recorder())  # type: ignore[arg-type]
        raise exc

    errors = [KeyError("k"), TimeoutError("late"), ValueError("a"), TimeoutError("b")]
    for n, error in enumerate(errors):
        with pytest.raises(type(error)) as exc:
            if n < 2:
                fails(error)
            else:
                asyncio.run(afails(error))
        assert exc.value is error
    statuses = [_saved(rec).outcome.status for rec in seen]  # type: ignore[union-attr]
    assert statuses == ["error", "timeout", "error", "timeout"]


_entry_runs: list[Recorder] = []


@mattrace.record("entry")
def deco_entry(x: int, name: str = "n") -> int:
    """A module-level recorded function, so the decorator can name it as an entrypoint."""
    _entry_runs.append(mattrace.active_recorder())  # type: ignore[arg-type]
    return x


def test_record_decorator_fills_the_entrypoint_for_json_arguments() -> None:
    """The decorator stores module:function and JSON-able arguments so the run can be re-run."""
    _entry_runs.clear()
    assert deco_entry(3, name="z") == 3
    entry = _saved(_entry_runs[0]).entrypoint
    assert entry == {"target": f"{__name__}:deco_entry", "args": [3], "kwargs": {"name": "z"}}
    assert deco_entry({1, 2}) == {1, 2}  # type: ignore[arg-type]
    assert _saved(_entry_runs[1]).entrypoint is None  # a set does not survive JSON


def test_bare_record_decorator_works_on_methods() -> None:
    """A bare @record on a method binds self like @record(name) does, recording one run per call."""
    class Orchestrator:
        @mattrace.record
        def run(self, x: int) -> int:
            return x + 1

        @mattrace.record("named")
        def run_named(self, x: int) -> int:
            return x + 1

    assert Orchestrator().run_named(1) == 2
    assert Orchestrator().run(1) == 2
    assert len(list(Path(".mattrace/traces").glob("*.jsonl"))) == 2


def test_bare_record_decorator_keeps_coroutine_functions_recognisable() -> None:
    """A bare @record on an async function is still a coroutine function (as @record(name) is)."""
    @mattrace.record("named")
    async def named() -> int:
        return 1

    @mattrace.record
    async def bare() -> int:
        return 1

    assert inspect.iscoroutinefunction(named)
    assert inspect.iscoroutinefunction(bare)


def test_nested_record_blocks_record_into_the_innermost(trace_dir: Path) -> None:
    """Steps inside a nested record() block go to the inner trace only; the outer one resumes after."""
    with mattrace.record("outer", dir=trace_dir) as outer:
        mattrace.message("a", "outer before")
        with mattrace.record("inner", dir=trace_dir) as inner:
            mattrace.message("a", "inner only")
        mattrace.message("a", "outer after")
    assert [s.content for s in _saved(outer).steps[:-1]] == ["outer before", "outer after"]
    assert [s.content for s in _saved(inner).steps[:-1]] == ["inner only"]


def test_record_options_are_validated(trace_dir: Path) -> None:
    """record() refuses an empty name, a missing name, reuse, and decorating a non-function."""
    with pytest.raises(RecordingError, match="non-empty run name"):
        with mattrace.record("", dir=trace_dir):
            pass
    with pytest.raises(RecordingError, match="needs a run name"):
        with mattrace.record(dir=trace_dir):
            pass
    block = mattrace.record("once", dir=trace_dir)
    with block:
        pass
    with pytest.raises(RecordingError, match="already active"):
        with block:
            pass
    with pytest.raises(RecordingError, match="exactly one function"):
        mattrace.record("x")(1, 2)
    assert mattrace.active_recorder() is None


# -- agents ------------------------------------------------------------------------------------


def test_agent_blocks_attribute_steps_and_nest(trace_dir: Path) -> None:
    """Steps outside agent blocks are 'main'; the innermost agent block wins and unwinds."""
    @mattrace.tool
    def act() -> str:
        return "done"

    with mattrace.record("agents", dir=trace_dir) as rec:
        act()
        with mattrace.agent("planner"):
            act()
            with mattrace.agent("researcher"):
                act()
                mattrace.message(None, "found it")
                rec.append("governance", content="checked")
            act()
        mattrace.message(None, "back to main")
        mattrace.delegate(None, "planner", "plan the trip")
    steps = _saved(rec).steps
    assert [(s.kind, s.agent) for s in steps] == [
        ("tool", "main"), ("tool", "planner"), ("tool", "researcher"), ("message", "researcher"),
        ("governance", "researcher"), ("tool", "planner"), ("message", "main"), ("delegate", "main"),
        ("end", "main")]
    assert steps[3].sources == (Source(kind="agent", ref="researcher"),)
    assert (steps[7].target, steps[7].content) == ("planner", "plan the trip")


def test_agent_name_must_be_non_empty() -> None:
    """agent('') raises RecordingError rather than attributing steps to nobody."""
    with pytest.raises(RecordingError, match="agent name"):
        with mattrace.agent(""):
            pass


def test_message_sources_default_to_the_speaker(trace_dir: Path) -> None:
    """A user message is sourced from the user; explicit sources, claims and reads are kept."""
    with mattrace.record("msg", dir=trace_dir) as rec:
        mattrace.message("user", "please refund order 7", to="support")
        web = Source(kind="retrieval", ref="http://x", trusted=False)
        mattrace.message("support", "ok", sources=[web], reads=[0],
                         claims=[{"text": "refunds ok", "cites": ["d1"]}])
    first, second = _saved(rec).steps[:2]
    assert (first.target, first.sources) == ("support", (Source(kind="user", ref="user"),))
    assert second.sources == (web,) and second.untrusted
    assert second.reads == (0,)
    assert second.attrs["claims"] == [{"text": "refunds ok", "cites": ["d1"]}]


# -- outside a recording -----------------------------------------------------------------------


def test_wrappers_are_transparent_outside_record() -> None:
    """Outside record(), tools, retrievers, Memory and message run normally and write no file."""
    @mattrace.tool
    def add(a: int, b: int) -> int:
        return a + b

    @mattrace.tool
    def fail() -> None:
        raise LookupError("x")

    @mattrace.retriever
    def find(q: str) -> list[str]:
        return [q.upper()]

    memory = Memory()
    assert add(2, b=3) == 5
    with pytest.raises(LookupError):
        fail()
    assert find("q") == ["Q"]
    memory["k"] = 1
    assert memory["k"] == 1 and "k" in memory and len(memory) == 1
    del memory["k"]
    assert mattrace.message("a", "hi") is None
    assert mattrace.delegate("a", "b", "task") is None
    assert mattrace.active_recorder() is None
    assert not Path(".mattrace").exists()
    assert list(Path.cwd().iterdir()) == []


def test_message_content_must_be_text() -> None:
    """message() with non-text content raises RecordingError, even outside a recording."""
    with pytest.raises(RecordingError, match="text"):
        mattrace.message("a", 42)  # type: ignore[arg-type]


# -- memory ------------------------------------------------------------------------------------


def test_memory_read_reads_the_last_write_of_its_key(trace_dir: Path) -> None:
    """A memory read records its value and a reads edge to the step that last wrote its key."""
    memory = Memory("notes", initial={"seeded": "x"})
    with mattrace.record("memory", dir=trace_dir) as rec:
        memory["k"] = "v1"
        memory["other"] = "o"
        memory["k"] = "v2"
        assert memory["k"] == "v2"
        assert memory["seeded"] == "x"
        del memory["k"]
    steps = _saved(rec).steps
    assert [(s.kind, s.target) for s in steps[:6]] == [
        ("memory_write", "k"), ("memory_write", "other"), ("memory_write", "k"),
        ("memory_read", "k"), ("memory_read", "seeded"), ("memory_write", "k")]
    read = steps[3]
    assert (read.result, read.reads) == ("v2", (2,))
    assert read.sources == (Source(kind="memory", ref="notes:k"),)
    assert steps[4].reads == ()  # never written in this run
    assert steps[2].args == {"key": "k", "value": "v2"}
    assert steps[5].args == {"key": "k"} and steps[5].attrs["op"] == "delete"


def test_memory_miss_is_recorded_with_key_error(trace_dir: Path) -> None:
    """Reading a missing key records a memory_read with a KeyError and raises KeyError."""
    memory = Memory()
    with mattrace.record("miss", dir=trace_dir) as rec:
        with pytest.raises(KeyError):
            memory["absent"]
        assert memory.get("absent", "dflt") == "dflt"
    steps = _saved(rec).steps
    for step in steps[:2]:
        assert (step.kind, step.target, step.result, step.sources) == ("memory_read", "absent", None, ())
        assert step.error is not None and step.error.type == "KeyError"


# -- redaction ---------------------------------------------------------------------------------


def test_secrets_in_tool_args_are_redacted_but_the_tool_gets_them(trace_dir: Path) -> None:
    """api_key/password/Authorization/bearer/sk- values are '[REDACTED]' on disk; token counts are kept."""
    received: dict[str, Any] = {}
    bearer = "Bearer abcdefghij0123456789"
    sk = "sk-" + "A1b2C3d4E5f6G7h8I9j0"

    @mattrace.tool
    def call_api(url: str, api_key: str, password: str, headers: dict[str, str], note: str,
                 max_tokens: int, prompt_tokens: int, items: list[str]) -> str:
        received.update(api_key=api_key, password=password, headers=headers, note=note)
        return "ok"

    with mattrace.record("secrets", dir=trace_dir) as rec:
        call_api("https://api.example.com", api_key="key-123-abc", password="hunter2",
                 headers={"Authorization": bearer, "X-Api-Key": "xyz", "Accept": "json"},
                 note=f"use {bearer} or {sk} please", max_tokens=512, prompt_tokens=77,
                 items=[sk, "fine"])
    assert received == {"api_key": "key-123-abc", "password": "hunter2",
                        "headers": {"Authorization": bearer, "X-Api-Key": "xyz", "Accept": "json"},
                        "note": f"use {bearer} or {sk} please"}
    args = _saved(rec).steps[0].args
    assert args == {
        "url": "https://api.example.com", "api_key": REDACTED, "password": REDACTED,
        "headers": {"Authorization": REDACTED, "X-Api-Key": REDACTED, "Accept": "json"},
        "note": f"use {REDACTED} or {REDACTED} please", "max_tokens": 512, "prompt_tokens": 77,
        "items": [REDACTED, "fine"],
    }
    on_disk = rec.path.read_text()
    for secret in ("key-123-abc", "hunter2", "abcdefghij0123456789", sk):
        assert secret not in on_disk


def test_secrets_in_results_and_message_text_are_redacted_but_callers_get_them(trace_dir: Path) -> None:
    """Secret keys in a tool's result and secret-shaped values in message text are redacted on disk only."""
    sk = "sk-" + "Z9y8X7w6V5u4T3s2R1q0"

    @mattrace.tool
    def create_key(user: str) -> dict[str, str]:
        return {"user": user, "api_key": sk}

    with mattrace.record("result secrets", dir=trace_dir) as rec:
        assert create_key("ann") == {"user": "ann", "api_key": sk}
        mattrace.message("agent", f"your new key is {sk}, keep it safe")
    tool_step, message_step = _saved(rec).steps[:2]
    assert tool_step.result == {"user": "ann", "api_key": REDACTED}
    assert message_step.content == f"your new key is {REDACTED}, keep it safe"
    assert sk not in rec.path.read_text()


def test_custom_redactor_adds_keys(trace_dir: Path) -> None:
    """Redactor().extend(keys=['ssn']) redacts ssn fields on top of the defaults."""
    @mattrace.tool
    def file_claim(ssn: str, customer_ssn: str, token: str, name: str) -> bool:
        return True

    with mattrace.record("ssn", dir=trace_dir, redact=Redactor().extend(keys=["ssn"])) as rec:
        file_claim("123-45-6789", "987-65-4321", "t0k3n", "Ann")
    assert _saved(rec).steps[0].args == {
        "ssn": REDACTED, "customer_ssn": REDACTED, "token": REDACTED, "name": "Ann"}
    assert "123-45-6789" not in rec.path.read_text()


def test_redaction_covers_attrs_and_can_be_disabled(trace_dir: Path) -> None:
    """Secrets in a step's attrs are redacted too, and Redactor(enabled=False) records verbatim."""
    with mattrace.record("attrs", dir=trace_dir) as rec:
        mattrace.message("a", "hi", attrs={"api_key": "k-1", "total_tokens": 9})
    assert _saved(rec).steps[0].attrs == {"api_key": REDACTED, "total_tokens": 9}
    with mattrace.record("off", dir=trace_dir, redact=Redactor(enabled=False)) as rec2:
        mattrace.message("a", "hi", attrs={"api_key": "k-1"})
    assert _saved(rec2).steps[0].attrs == {"api_key": "k-1"}


# -- interceptors ------------------------------------------------------------------------------


class Spy:
    """A configurable interceptor that logs what it saw."""

    def __init__(self, name: str, order: int, log: list[str], *, answer: Any = None,
                 rewrite: dict[str, Any] | None = None, replace: Any = None,
                 refuse: BaseException | None = None) -> None:
        self.name, self.order, self.log = name, order, log
        self.answer, self.rewrite, self.replace, self.refuse = answer, rewrite, replace, refuse

    def before(self, call: Call) -> Answer | None:
        self.log.append(f"before {self.name} {call.target}")
        if self.refuse is not None:
            raise self.refuse
        if self.rewrite:
            call.args.update(self.rewrite)
        return Answer(result=self.answer) if self.answer is not None else None

    def after(self, call: Call, outcome: CallOutcome) -> CallOutcome:
        self.log.append(f"after {self.name} {call.target}")
        return CallOutcome(result=self.replace) if self.replace is not None else outcome


def _counting_tool(log: list[str]) -> Any:
    @mattrace.tool(side_effect=True)
    def pay(amount: int, to: str) -> str:
        log.append(f"paid {amount} to {to}")
        return f"paid {amount}"
    return pay


def test_interceptor_can_answer_a_call_without_running_it(trace_dir: Path) -> None:
    """An interceptor's Answer is returned and recorded, and the real function is not run."""
    log: list[str] = []
    pay = _counting_tool(log)
    with mattrace.record("answer", dir=trace_dir, governor=Spy("cache", 300, log, answer="cached")) as rec:
        assert pay(5, "bob") == "cached"
    assert "paid 5 to bob" not in log
    assert _saved(rec).steps[0].result == "cached"


def test_interceptor_can_rewrite_args(trace_dir: Path) -> None:
    """Rewritten args reach the function and the step, with attrs['original_args'] kept."""
    log: list[str] = []
    pay = _counting_tool(log)
    with mattrace.record("rewrite", dir=trace_dir) as rec:
        rec.add_interceptor(Spy("cap", 100, log, rewrite={"amount": 10}))
        assert pay(5000, "bob") == "paid 10"
        assert pay(to="ann", amount=10) == "paid 10"
    assert "paid 10 to bob" in log
    first, second = _saved(rec).steps[:2]
    assert first.args == {"amount": 10, "to": "bob"}
    assert first.attrs["original_args"] == {"amount": 5000, "to": "bob"}
    assert "original_args" not in second.attrs  # nothing changed


def test_interceptor_can_replace_a_result_after_the_call(trace_dir: Path) -> None:
    """after() may replace the result: the caller and the step both see the replacement."""
    log: list[str] = []
    pay = _counting_tool(log)
    with mattrace.record("replace", dir=trace_dir) as rec:
        rec.add_interceptor(Spy("fault", 200, log, replace="gateway timeout"))
        assert pay(1, "bob") == "gateway timeout"
    assert "paid 1 to bob" in log
    assert _saved(rec).steps[0].result == "gateway timeout"


def test_interceptor_that_raises_in_before_blocks_the_call(trace_dir: Path) -> None:
    """A before() that raises refuses the call (fail-closed): not run, error recorded and raised."""
    log: list[str] = []
    pay = _counting_tool(log)
    refusal = PermissionError("payments are not allowed")
    memory = Memory()
    with mattrace.record("block", dir=trace_dir) as rec:
        rec.add_interceptor(Spy("gov", 100, log, refuse=refusal))
        with pytest.raises(PermissionError) as exc:
            pay(1, "mallory")
        assert exc.value is refusal
        with pytest.raises(PermissionError):
            memory["k"] = "v"
    assert not any(entry.startswith("paid") for entry in log)
    assert "k" not in memory
    steps = _saved(rec).steps
    for step in steps[:2]:
        assert step.error == StepError(type="PermissionError", message="payments are not allowed")
        assert step.result is None
    assert steps[0].side_effect


def test_interceptors_run_in_order_and_unwind_in_reverse(trace_dir: Path) -> None:
    """before() runs by ascending order whatever the registration order; after() in reverse."""
    log: list[str] = []
    pay = _counting_tool(log)
    with mattrace.record("order", dir=trace_dir, cassette=False) as rec:
        for name, order in [("replay", 300), ("gov", 100), ("faults", 200)]:
            rec.add_interceptor(Spy(name, order, log))
        assert [i.name for i in rec.interceptors] == ["gov", "faults", "replay"]
        assert rec.chain == tuple(rec.interceptors)
        rec.interceptors.clear()   # a copy: the run's chain is not changed through it
        assert [i.name for i in rec.chain] == ["gov", "faults", "replay"]
        pay(1, "x")
    assert log == ["before gov pay", "before faults pay", "before replay pay", "paid 1 to x",
                   "after replay pay", "after faults pay", "after gov pay"]


def test_a_method_tool_records_its_arguments_without_self(trace_dir: Path) -> None:
    """``self`` is the object, not an argument anyone chose: steps and original_args leave it out."""
    log: list[str] = []

    class Desk:
        @mattrace.tool
        def pay(self, amount: int, to: str) -> str:
            return f"paid {amount} to {to}"

    with mattrace.record("method", dir=trace_dir, cassette=False) as rec:
        assert Desk().pay(5, "bob") == "paid 5 to bob"
        rec.add_interceptor(Spy("cap", 100, log, rewrite={"amount": 1}))
        assert Desk().pay(5, "ann") == "paid 1 to ann"
    first, second = _saved(rec).steps[:2]
    assert first.args == {"amount": 5, "to": "bob"} and "original_args" not in first.attrs
    assert second.args == {"amount": 1, "to": "ann"}
    assert second.attrs["original_args"] == {"amount": 5, "to": "ann"}


def test_add_interceptor_rejects_objects_that_are_not_interceptors(trace_dir: Path) -> None:
    """add_interceptor() with an object lacking name/order/before/after raises RecordingError."""
    with mattrace.record("bad", dir=trace_dir) as rec:
        with pytest.raises(RecordingError, match="not an Interceptor"):
            rec.add_interceptor(object())  # type: ignore[arg-type]


# -- misuse ------------------------------------------------------------------------------------


def test_reads_must_point_at_earlier_steps(trace_dir: Path) -> None:
    """reads naming the step itself, a later step or a negative index raise RecordingError."""
    with mattrace.record("reads", dir=trace_dir) as rec:
        mattrace.message("a", "first")
        for bad in ([1], [5], [-1], [0, 3]):
            with pytest.raises(RecordingError, match="not earlier steps"):
                mattrace.message("a", "second", reads=bad)
        mattrace.message("a", "second", reads=[0])
    steps = _saved(rec).steps
    assert [s.index for s in steps] == [0, 1, 2]
    assert steps[1].reads == (0,)


@pytest.mark.parametrize("misuse", [
    pytest.param(lambda rec: rec.append("no-such-kind"), id="unknown kind"),
    pytest.param(lambda rec: mattrace.message(42, "text"), id="agent not a string"),
    pytest.param(lambda rec: mattrace.message("a", "text", to=5), id="to not a string"),
    pytest.param(lambda rec: mattrace.message("a", "text", reads=["0"]), id="reads not ints"),
    pytest.param(lambda rec: mattrace.delegate("a", "b", 5), id="task not a string"),
])
def test_bad_arguments_raise_recording_error(trace_dir: Path, misuse: Any) -> None:
    """Bad arguments to the recording API raise RecordingError (errors.py: 'bad argument'), not internals' errors."""
    with mattrace.record("bad args", dir=trace_dir) as rec:
        with pytest.raises(RecordingError):
            misuse(rec)
    assert [s.kind for s in _saved(rec).steps] == ["end"]


def test_step_after_the_run_ended_raises(trace_dir: Path) -> None:
    """Recording into a recorder whose block has ended raises RecordingError; the file stays sealed."""
    with mattrace.record("done", dir=trace_dir) as rec:
        pass
    with pytest.raises(RecordingError, match="after the run ended"):
        rec.append("message", content="late")
    assert rec.close() == rec.trace  # idempotent
    assert [s.kind for s in _saved(rec).steps] == ["end"]


def test_recorder_abandon_leaves_an_unsealed_file(trace_dir: Path) -> None:
    """abandon() closes the file without an end step, so it loads as an interrupted run."""
    rec = Recorder("abandoned", dir=trace_dir)
    rec.append("message", content="only step")
    rec.abandon()
    assert rec.closed
    with pytest.warns(mattrace.TornTailWarning):
        trace = mattrace.load(rec.path)
    assert [s.content for s in trace.steps] == ["only step"]
    assert trace.outcome is None


def test_tool_returning_undecodable_text_still_returns_under_recording(trace_dir: Path) -> None:
    """A tool result with a lone surrogate (an undecodable file name) is returned and recorded, not a crash."""
    name = b"report-\xff.txt".decode("utf-8", "surrogateescape")  # what os.listdir() yields

    @mattrace.tool
    def list_files() -> list[str]:
        return [name]

    assert list_files() == [name]  # unrecorded, it works
    with mattrace.record("surrogates", dir=trace_dir) as rec:
        assert list_files() == [name]
    steps = _saved(rec).steps
    assert [s.kind for s in steps] == ["tool", "end"]
    assert steps[0].result is not None


def test_an_llm_calls_offered_tools_are_not_text_it_read(tmp_path: Path) -> None:
    """A tool named like an earlier step's output (``write_memory``) must not link the two: only
    what the model was given to read makes a ``reads`` edge."""
    with mattrace.record("offered-tools", dir=tmp_path, cassette=False) as rec:
        asked = rec.append(StepKind.LLM, agent="analyst", target="m", args={"model": "m", "messages": []},
                           result={"role": "assistant", "tool_calls": [{"name": "write_memory", "arguments": {}}]})
        offered = rec.append(StepKind.LLM, agent="writer", target="m", args={
            "model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": ["write_memory"]})
        quoted = rec.append(StepKind.LLM, agent="writer", target="m", args={
            "model": "m", "messages": [{"role": "user", "content": "you called write_memory before"}]})
    flow = context_reads(rec.trace.steps)
    assert asked.index not in flow[offered.index].reads
    assert asked.index in flow[quoted.index].reads          # the same text in a message is read


def test_an_answer_requesting_the_same_tool_twice_links_both_calls(tmp_path: Path) -> None:
    """Each requested call of one tool is linked to the LLM step that asked for it (not only the first)."""
    with mattrace.record("twice", dir=tmp_path) as rec:
        rec.append("llm", agent="a", content="calling", attrs={"tool_calls_requested": ["lookup", "lookup"]})
        rec.append("tool", agent="a", target="lookup", args={"id": 1})
        rec.append("tool", agent="a", target="lookup", args={"id": 2})
        rec.append("tool", agent="a", target="lookup", args={"id": 3})
    steps = rec.trace.steps
    assert 0 in steps[1].reads and 0 in steps[2].reads, "both requested calls read the answer"
    assert 0 not in steps[3].reads, "a third call nobody requested links to nothing"
