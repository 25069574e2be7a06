"""Tests of importing OpenAI chat-format logs (``mattrace.io.openai_chat``, ``mattrace import``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import mattrace
from mattrace.cli import main
from mattrace.contracts import check, no_untrusted_action
from mattrace.errors import ImportGapWarning, TraceFormatError
from mattrace.io import chat_gaps, describe_gaps, import_openai
from mattrace.io.openai_chat import trace_from_messages, write_trace
from mattrace.trace import Source, Step, StepKind, Trace

TAUBENCH = Path(__file__).parent / "data" / "taubench"
WRITE_TOOLS = ["book_reservation", "cancel_reservation", "send_certificate", "update_reservation_baggages",
               "update_reservation_flights", "update_reservation_passengers"]
USER = (Source(kind="user", ref="user"),)
ASSISTANT = (Source(kind="agent", ref="assistant"),)
SYSTEM = (Source(kind="agent", ref="system"),)


def _call(call_id: str | None, name: str, arguments: Any) -> dict[str, Any]:
    call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if call_id is not None:
        call["id"] = call_id
    return call


def _tool(call_id: str | None, name: str, content: Any) -> dict[str, Any]:
    msg = {"role": "tool", "name": name, "content": content}
    if call_id is not None:
        msg["tool_call_id"] = call_id
    return msg


def _steps(messages: list[Any], **options: Any) -> list[Step]:
    return trace_from_messages(messages, name="t", **options).steps


def _write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _error(path: Path) -> TraceFormatError:
    with pytest.raises(TraceFormatError) as info:
        import_openai(path)
    return info.value


# -- mapping of small hand-written logs --------------------------------------------------------

def test_text_turns_map_to_message_steps_with_conversation_reads() -> None:
    """System, user and assistant text become message steps with the documented agents, targets, sources and reads."""
    steps = _steps([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye."},
    ])
    assert [(s.index, s.kind, s.agent, s.target, s.content, s.reads, s.sources, s.attrs) for s in steps] == [
        (0, StepKind.MESSAGE, "system", None, "Be brief.", (), SYSTEM, {"source_index": 0}),
        (1, StepKind.MESSAGE, "user", "assistant", "Hi", (), USER, {"source_index": 1}),
        (2, StepKind.MESSAGE, "assistant", "user", "Hello!", (0, 1), ASSISTANT, {"source_index": 2}),
        (3, StepKind.MESSAGE, "user", "assistant", "Bye", (2,), USER, {"source_index": 3}),
        (4, StepKind.MESSAGE, "assistant", "user", "Goodbye.", (2, 3), ASSISTANT, {"source_index": 4}),
    ]
    assert all(s.args is None and s.result is None and not s.side_effect for s in steps)


def test_tool_call_joins_its_result_and_later_steps_read_it() -> None:
    """A tool call becomes one tool step holding the parsed args and the parsed result of its tool message."""
    steps = _steps([
        {"role": "user", "content": "Where is order 7?"},
        {"role": "assistant", "content": None, "tool_calls": [_call("c1", "lookup", '{"order": 7}')]},
        _tool("c1", "lookup", '{"status": "shipped"}'),
        {"role": "assistant", "content": "It has shipped."},
    ])
    assert len(steps) == 3
    call = steps[1]
    assert (call.kind, call.agent, call.target, call.args, call.result, call.reads, call.content) == (
        StepKind.TOOL, "assistant", "lookup", {"order": 7}, {"status": "shipped"}, (0,), None)
    assert call.attrs == {"source_index": 1, "tool_call_id": "c1", "result_source_index": 2}
    assert call.sources == (Source(kind="tool", ref="lookup", trusted=True),)
    assert not call.side_effect
    assert (steps[2].content, steps[2].reads, steps[2].attrs) == ("It has shipped.", (1,), {"source_index": 3})


def test_tool_result_that_is_not_json_stays_text() -> None:
    """A tool result that is not JSON is kept as the string; a JSON number becomes the number."""
    steps = _steps([
        {"role": "assistant", "content": None,
         "tool_calls": [_call("a", "think", '{"thought": "hm"}'), _call("b", "calculate", '{"expression": "2*3"}')]},
        _tool("a", "think", "Error: not now"),
        _tool("b", "calculate", "6.0"),
    ])
    assert [s.result for s in steps] == ["Error: not now", 6.0]


def test_parallel_tool_calls_read_the_same_set_not_each_other() -> None:
    """Parallel calls (and the text) of one assistant message share reads; the next turn reads every returned result."""
    steps = _steps([
        {"role": "system", "content": "policy"},
        {"role": "user", "content": "Compare A and B"},
        {"role": "assistant", "content": "Looking both up.",
         "tool_calls": [_call("ca", "get", '{"id": "A"}'), _call("cb", "get", '{"id": "B"}')]},
        _tool("cb", "get", '{"id": "B", "price": 2}'),
        _tool("ca", "get", '{"id": "A", "price": 1}'),
        {"role": "assistant", "content": "A is cheaper."},
        {"role": "user", "content": "thanks"},
    ])
    assert [(s.kind, s.target, s.reads) for s in steps] == [
        (StepKind.MESSAGE, None, ()),
        (StepKind.MESSAGE, "assistant", ()),
        (StepKind.MESSAGE, "user", (0, 1)),
        (StepKind.TOOL, "get", (0, 1)),
        (StepKind.TOOL, "get", (0, 1)),
        (StepKind.MESSAGE, "user", (3, 4)),
        (StepKind.MESSAGE, "assistant", (5,)),
    ]
    assert [(s.args, s.result, s.attrs.get("result_source_index")) for s in steps[3:5]] == [
        ({"id": "A"}, {"id": "A", "price": 1}, 4), ({"id": "B"}, {"id": "B", "price": 2}, 3)]
    assert [s.attrs["source_index"] for s in steps] == [0, 1, 2, 2, 2, 5, 6]


def test_user_message_reads_every_step_of_the_assistant_message_before_it() -> None:
    """A user message after an assistant message with text and a call reads both of its steps."""
    steps = _steps([
        {"role": "user", "content": "cancel it"},
        {"role": "assistant", "content": "Transferring you.", "tool_calls": [_call("t", "transfer", "{}")]},
        _tool("t", "transfer", "Transfer successful"),
        {"role": "user", "content": "ok?"},
    ])
    assert [s.reads for s in steps] == [(), (0,), (0,), (1, 2)]


def test_content_part_lists_are_joined_text() -> None:
    """Content as a list of parts is its text parts joined by newlines; other part types are named in attrs."""
    steps = _steps([
        {"role": "user", "content": [{"type": "text", "text": "What is in"}, {"type": "text", "text": "this image?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
        {"role": "assistant", "content": None, "tool_calls": [_call("x", "f", "{}")]},
        _tool("x", "f", [{"type": "text", "text": '{"ok":'}, {"type": "text", "text": "true}"}]),
    ])
    assert steps[0].content == "What is in\nthis image?"
    assert steps[0].attrs == {"source_index": 0, "non_text_parts": ["image_url"]}
    assert steps[1].content == "A cat."
    assert steps[2].result == {"ok": True}  # the joined text is JSON


def test_orphan_tool_result_becomes_its_own_tool_step() -> None:
    """A tool message answering no call is kept as a tool step marked orphan_result, reading nothing."""
    gap = r"1 tool result answering no call imported as its own step \(message 1\)"
    with pytest.warns(ImportGapWarning, match=gap):
        steps = _steps([
            {"role": "user", "content": "hi"},
            _tool("ghost", "search", '["r1"]'),
            {"role": "assistant", "content": "Found r1."},
        ], untrusted_tools=["search"])
    orphan = steps[1]
    assert (orphan.kind, orphan.agent, orphan.target, orphan.args, orphan.result, orphan.reads) == (
        StepKind.TOOL, "assistant", "search", None, ["r1"], ())
    assert orphan.attrs == {"source_index": 1, "orphan_result": True, "result_source_index": 1,
                            "tool_call_id": "ghost"}
    assert orphan.untrusted
    assert steps[2].reads == (0, 1)


def test_call_without_result_is_marked_no_result() -> None:
    """A call no tool message answers keeps result None, no tool source, and attrs no_result."""
    steps = _steps([
        {"role": "user", "content": "book it"},
        {"role": "assistant", "content": None, "tool_calls": [_call("b1", "book", '{"seat": "1A"}')]},
    ], untrusted_tools=["*"])
    (call,) = steps[1:]
    assert (call.result, call.sources, call.args) == (None, (), {"seat": "1A"})
    assert call.attrs == {"source_index": 1, "tool_call_id": "b1", "no_result": True}


def test_invalid_arguments_are_kept_raw_with_the_parse_error() -> None:
    """Arguments that are not JSON, or JSON that is not an object, are kept as _raw with attrs args_error."""
    steps = _steps([
        {"role": "assistant", "content": None, "tool_calls": [
            _call("1", "f", '{"a": 1'), _call("2", "g", "[1, 2]"), _call("3", "h", {"already": "parsed"})]},
        _tool("1", "f", "x"), _tool("2", "g", "y"), _tool("3", "h", "z"),
    ])
    assert [s.args for s in steps] == [{"_raw": '{"a": 1'}, {"_raw": "[1, 2]"}, {"already": "parsed"}]
    assert "not valid JSON" in steps[0].attrs["args_error"]
    assert steps[1].attrs["args_error"] == "arguments are a JSON array, not an object"
    assert "args_error" not in steps[2].attrs
    assert [s.result for s in steps] == ["x", "y", "z"]


def test_results_join_by_name_and_order_when_ids_are_missing() -> None:
    """Without tool_call_id (and for legacy function_call/function messages) results join by name, in order."""
    steps = _steps([
        {"role": "assistant", "content": None,
         "tool_calls": [_call(None, "get", '{"n": 1}'), _call(None, "get", '{"n": 2}')]},
        _tool(None, "get", "1"), _tool(None, "get", "2"),
        {"role": "assistant", "content": None, "function_call": {"name": "legacy", "arguments": '{"q": "x"}'}},
        {"role": "function", "name": "legacy", "content": '"done"'},
    ])
    assert [(s.target, s.args, s.result, s.attrs.get("result_source_index")) for s in steps] == [
        ("get", {"n": 1}, 1, 1), ("get", {"n": 2}, 2, 2), ("legacy", {"q": "x"}, "done", 4)]
    assert steps[2].reads == (0, 1)


def test_untrusted_and_side_effect_tools() -> None:
    """untrusted_tools and side_effect_tools mark the named tools; '*' marks every tool."""
    messages = [
        {"role": "assistant", "content": None,
         "tool_calls": [_call("1", "search", "{}"), _call("2", "send", "{}")]},
        _tool("1", "search", "a"), _tool("2", "send", "b"),
    ]
    named = _steps(messages, untrusted_tools=["search"], side_effect_tools=["send"])
    assert [(s.untrusted, s.side_effect) for s in named] == [(True, False), (False, True)]
    everything = _steps(messages, untrusted_tools=["*"], side_effect_tools=["*"])
    assert [(s.untrusted, s.side_effect) for s in everything] == [(True, True), (True, True)]
    assert [(s.untrusted, s.side_effect) for s in _steps(messages)] == [(False, False), (False, False)]


def test_developer_role_extra_fields_and_empty_assistant_message_are_kept() -> None:
    """A developer message is a system step (role=developer); unknown fields stay in attrs; nothing is dropped."""
    steps = _steps([
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": "hi", "name": "alice", "ts": 17},
        {"role": "assistant", "content": None},
    ])
    assert (steps[0].agent, steps[0].attrs) == ("system", {"source_index": 0, "role": "developer"})
    assert steps[1].agent == "alice"   # a named participant is the agent (see the group-chat test)
    assert steps[1].attrs == {"source_index": 1, "message_fields": {"ts": 17}}
    assert (steps[2].kind, steps[2].content, steps[2].reads) == (StepKind.MESSAGE, None, (0, 1))


def test_no_end_step_and_no_outcome() -> None:
    """An imported trace invents neither an end step nor an outcome."""
    trace = trace_from_messages([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
                                name="n", labels={"k": "v"})
    assert trace.outcome is None and StepKind.END not in {s.kind for s in trace.steps}
    assert (trace.name, trace.labels) == ("n", {"k": "v"})


# -- input shapes ------------------------------------------------------------------------------

def test_json_list_of_messages(tmp_path: Path) -> None:
    """A JSON list of messages is one trace named after the file stem, without labels."""
    path = _write(tmp_path / "run-1.json", [{"role": "user", "content": "hi"}])
    (trace,) = import_openai(path)
    assert (trace.name, trace.labels, len(trace.steps)) == ("run-1", {}, 1)
    assert trace.config == {"import": {"format": "openai", "file": "run-1.json"}}
    assert import_openai(path, name="custom")[0].name == "custom"


def test_object_with_messages_gives_labels_and_model(tmp_path: Path) -> None:
    """An object's other keys become text labels (non-text as canonical JSON) and model also goes to config."""
    path = _write(tmp_path / "run.json", {"model": "gpt-4o", "reward": 1.0, "task_id": 3, "ok": True,
                                          "info": {"b": 1, "a": [None]}, "messages": []})
    (trace,) = import_openai(path)
    assert trace.labels == {"model": "gpt-4o", "reward": "1.0", "task_id": "3", "ok": "true",
                            "info": '{"a":[null],"b":1}'}
    assert trace.config["model"] == "gpt-4o"
    assert trace.steps == []


def test_jsonl_one_trace_per_line_with_labels_and_line(tmp_path: Path) -> None:
    """JSONL gives one trace per non-blank line, named <stem>#<line>, with the line in config and step attrs."""
    lines = [json.dumps({"id": "a", "messages": [{"role": "user", "content": "one"}]}), "",
             json.dumps([{"role": "user", "content": "two"}, {"role": "assistant", "content": "2"}])]
    path = _write(tmp_path / "runs.jsonl", "\n".join(lines) + "\n")
    first, second = import_openai(path)
    assert (first.name, first.labels, first.config["import"]) == (
        "runs#1", {"id": "a"}, {"format": "openai", "file": "runs.jsonl", "line": 1})
    assert (second.name, second.labels, len(second.steps)) == ("runs#3", {}, 2)
    assert [s.attrs for s in second.steps] == [{"source_index": 0, "source_line": 3},
                                               {"source_index": 1, "source_line": 3}]
    assert first.trace_id != second.trace_id


def test_jsonl_is_detected_without_the_suffix(tmp_path: Path) -> None:
    """A .json file holding one JSON value per line is read as JSONL."""
    path = _write(tmp_path / "runs.json", '[{"role": "user", "content": "a"}]\n[{"role": "user", "content": "b"}]\n')
    assert [t.name for t in import_openai(path)] == ["runs#1", "runs#2"]


def test_nan_in_python_written_json_stays_text(tmp_path: Path) -> None:
    """NaN (which Python writes into JSON) becomes the text 'NaN', so the trace can be written."""
    path = _write(tmp_path / "nan.json", '{"score": NaN, "messages": [{"role": "assistant", "content": null, '
                  '"tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, '
                  '{"role": "tool", "tool_call_id": "1", "content": "[NaN]"}]}')
    (trace,) = import_openai(path)
    assert trace.labels == {"score": "NaN"} and trace.steps[0].result == ["NaN"]
    assert mattrace.load(write_trace(trace, tmp_path / "out")).steps == trace.steps


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "line", "reason"), [
    ("", None, "file is empty"),
    ("  \n\n", None, "file is empty"),
    ('[{"role": "user"', 1, "not valid JSON"),
    ('\n\n{"messages": [}', 3, "not valid JSON"),
    ('"hello"', None, "not a JSON list of messages nor an object with a 'messages' list"),
    ('{"messages": "hi"}', None, "not a JSON list of messages nor an object with a 'messages' list"),
    ('[{"role": "user", "content": "a"}, 7]', None, "message 1: not a JSON object (got number)"),
    ('[{"content": "a"}]', None, "message 0: has no 'role'"),
    ('[{"messages": []}]', None, "message 0: has no 'role' (it looks like a whole run"),
    ('[{"role": "robot", "content": "beep"}]', None, "message 0: role 'robot' is not a chat role"),
    ('[{"role": "user", "content": 5}]', None, "message 0: content is number, not text"),
    ('[{"role": "user", "content": [5]}]', None, "message 0: content part 0 is not a JSON object"),
    ('[{"role": "assistant", "tool_calls": [{"id": "1", "function": {"arguments": "{}"}}]}]', None,
     "message 0: tool call 0 has no function name"),
    ('[{"role": "assistant", "tool_calls": {"id": "1"}}]', None, "message 0: 'tool_calls' is not a list"),
])
def test_bad_json_file_raises_typed_error_naming_file(tmp_path: Path, text: str, line: int | None,
                                                      reason: str) -> None:
    """Each kind of bad input raises TraceFormatError naming the file, the line when known, and the problem."""
    path = _write(tmp_path / "bad.json", text)
    err = _error(path)
    assert (err.path, err.line) == (str(path), line)
    assert err.reason.startswith(reason), err.reason
    assert str(err).startswith(f"{path}:{line}: " if line else f"{path}: ")


@pytest.mark.parametrize(("lines", "line", "reason"), [
    (['[{"role": "user", "content": "a"}]', "{oops"], 2, "line is not valid JSON"),
    (['[{"role": "user", "content": "a"}]', "", '{"no": "messages"}'], 3, "not a JSON list of messages"),
    (['[{"role": "user", "content": "a"}]', '[{"role": "user"}, {"role": 1}]'], 2,
     "message 1: role 1 is not a chat role"),
    (["", "  "], None, "file is empty"),
])
def test_bad_jsonl_line_raises_error_naming_the_line(tmp_path: Path, lines: list[str], line: int | None,
                                                     reason: str) -> None:
    """A bad JSONL line raises TraceFormatError with the file and that line number."""
    path = _write(tmp_path / "bad.jsonl", "\n".join(lines) + "\n")
    err = _error(path)
    assert (err.path, err.line) == (str(path), line)
    assert err.reason.startswith(reason), err.reason


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    """A missing file and a file that is not UTF-8 raise TraceFormatError, not OSError/UnicodeError."""
    assert "cannot read file" in _error(tmp_path / "nope.json").reason
    path = tmp_path / "latin1.json"
    path.write_bytes(b'[{"role": "user", "content": "caf\xe9"}]')
    assert "not UTF-8" in _error(path).reason


def test_trace_from_messages_refuses_a_non_list() -> None:
    """trace_from_messages on something that is not a message list raises TraceFormatError naming the origin."""
    with pytest.raises(TraceFormatError, match=r"^run\.log:4: not a JSON list"):
        trace_from_messages("hello", name="x", origin="run.log", line=4)  # type: ignore[arg-type]


# -- real data: tau-bench ----------------------------------------------------------------------

def _taubench_files() -> list[Path]:
    files = sorted(TAUBENCH.glob("airline-*.json"))
    assert len(files) == 60, f"expected the 60 tau-bench trajectories in {TAUBENCH}"
    return files


def _content_value(content: Any) -> Any:
    """What the importer should make of a tool message's content: its JSON value, or the text."""
    try:
        return json.loads(content, parse_constant=str)
    except json.JSONDecodeError:
        return content


def test_all_taubench_trajectories_import_faithfully() -> None:
    """All 60 tau-bench runs import; steps match the messages one for one and results match their tool messages."""
    files = _taubench_files()
    assert len(files) == 60
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        messages = data["messages"]
        (trace,) = import_openai(path, untrusted_tools=["*"], side_effect_tools=WRITE_TOOLS)
        steps = trace.steps
        n_calls = sum(len(m.get("tool_calls") or []) for m in messages)
        answered = {c["id"] for m in messages for c in m.get("tool_calls") or []}
        orphans = sum(1 for m in messages if m["role"] == "tool" and m.get("tool_call_id") not in answered)
        textless_callers = sum(1 for m in messages if m["role"] == "assistant" and m.get("tool_calls")
                               and not m.get("content"))
        non_tool = sum(1 for m in messages if m["role"] != "tool")
        assert len(steps) == non_tool - textless_callers + n_calls + orphans, path.name
        assert [s.index for s in steps] == list(range(len(steps)))
        # every message is accounted for: its own step, or the tool step its result joined
        covered = {s.attrs["source_index"] for s in steps} | {s.attrs.get("result_source_index") for s in steps}
        assert covered - {None} == set(range(len(messages))), path.name
        for step in steps:
            source = messages[step.attrs["source_index"]]
            assert 0 <= step.attrs["source_index"] < len(messages)
            assert all(r < step.index for r in step.reads), (path.name, step.index)
            if step.kind is StepKind.TOOL:
                result_msg = messages[step.attrs["result_source_index"]]
                assert result_msg["role"] == "tool" and result_msg["name"] == step.target
                assert step.result == _content_value(result_msg["content"]), (path.name, step.index)
                assert step.side_effect == (step.target in WRITE_TOOLS) and step.untrusted
                call = next(c for c in source.get("tool_calls") or [] if c["id"] == step.attrs["tool_call_id"])
                assert step.args == json.loads(call["function"]["arguments"])
            else:
                assert step.content == source["content"] and source["role"] != "tool"
        assert trace.labels["task_id"] == str(data["task_id"]) and trace.config["model"] == data["model"]
        assert trace.outcome is None and not any(s.kind is StepKind.END for s in steps)


def test_taubench_write_then_load_round_trips(tmp_path: Path) -> None:
    """An imported tau-bench trace written with write_trace loads back identical and verifies as sealed."""
    path = _taubench_files()[0]
    (trace,) = import_openai(path, untrusted_tools=["get_reservation_details"])
    written = write_trace(trace, tmp_path / "out")
    loaded = mattrace.load(written)
    assert isinstance(loaded, Trace) and loaded.fingerprint() == trace.fingerprint()
    assert loaded.trace_id == trace.trace_id and mattrace.verify(written).ok


# -- the CLI -----------------------------------------------------------------------------------

def test_cli_import_writes_sealed_loadable_traces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`mattrace import openai` on two tau-bench files writes two sealed files, one output line each."""
    files = _taubench_files()[:2]
    out_dir = tmp_path / "imported"
    code = main(["import", "openai", *map(str, files), "--out", str(out_dir),
                 "--untrusted-tools", "get_user_details, get_reservation_details",
                 "--side-effect-tools", "cancel_reservation", "--side-effect-tools", "book_reservation"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 2
    written = sorted(out_dir.iterdir())
    assert len(written) == 2 and {line.split()[0] for line in lines} == {str(p) for p in written}
    for path in written:
        assert mattrace.verify(path).ok
        trace = mattrace.load(path)
        source = next(f for f in files if trace.name == f.stem)
        expected = import_openai(source, untrusted_tools=["get_user_details", "get_reservation_details"],
                                 side_effect_tools=["cancel_reservation", "book_reservation"])[0]
        assert trace.fingerprint() == expected.fingerprint()
        assert f"({len(trace.steps)} steps from {source})" in out


def test_cli_import_default_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --out the traces go to .mattrace/traces in the current directory."""
    path = _write(tmp_path / "chat.jsonl", '[{"role": "user", "content": "hi"}]\n[{"role": "user", "content": "yo"}]\n')
    assert main(["import", "openai", str(path)]) == 0
    out = capsys.readouterr().out
    written = sorted((tmp_path / ".mattrace" / "traces").iterdir())
    assert [p.name.rsplit("-", 1)[0] for p in written] == ["chat-1", "chat-2"]
    assert f"from {path}:1)" in out and f"from {path}:2)" in out


def test_cli_import_bad_file_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad input file exits 2 with one error line naming it, and no trace file is written for any input."""
    good = _write(tmp_path / "good.json", [{"role": "user", "content": "hi"}])
    bad = _write(tmp_path / "bad.json", [{"role": "user", "content": "hi"}, {"role": "robot"}])
    out_dir = tmp_path / "out"
    code = main(["import", "openai", str(good), str(bad), "--out", str(out_dir)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == f"mattrace: error: {bad}: message 1: role 'robot' is not a chat role " \
                  "(expected one of: system, developer, user, assistant, tool, function)\n"
    assert not out_dir.exists()


def test_cli_import_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown format or no file is a one-line usage error with exit 2."""
    for argv in (["import", "xml", "a.json"], ["import", "openai"]):
        code, (out, err) = main(argv), capsys.readouterr()
        assert code == 2 and out == "" and err.startswith("mattrace: error: ") and err.count("\n") == 1, argv


@pytest.mark.slow
def test_cli_import_does_not_import_heavy_dependencies(tmp_path: Path) -> None:
    """`mattrace import` runs without importing litellm, duckdb, OpenTelemetry or hypothesis."""
    path = _write(tmp_path / "c.json", [{"role": "user", "content": "hi"}])
    code = f"""
import contextlib, io, json, sys
from mattrace.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    codes = [main(["import", "--help"]), main(["import", "openai", {str(path)!r}, "--out", {str(tmp_path)!r}])]
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"litellm", "duckdb", "opentelemetry", "hypothesis"}})
print(json.dumps({{"codes": codes, "heavy": heavy}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"codes": [0, 0], "heavy": []}


# -- what a log leaves out: content shapes, tool results without id or name, named speakers -----

INJECTION = Path(__file__).parent / "data" / "injection"
ATTACK_RUN = INJECTION / "google_gemini-2.5-flash__none__user_task_10__injection_task_3.json"
PARALLEL_RUN = INJECTION / "gpt-4o-mini-2024-07-18__none__user_task_12__injection_task_7.json"


def _injection_flags() -> dict[str, list[str]]:
    tools = json.loads((INJECTION / "tools.json").read_text(encoding="utf-8"))["tools"]
    return {"untrusted_tools": [t["name"] for t in tools if t["untrusted_output"]],
            "side_effect_tools": [t["name"] for t in tools if t["side_effect"] or t["egress"]]}


def _agentdojo_shape(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI chat messages written back in AgentDojo's own message shape: content as
    ``{"type": "text", "content": ...}`` parts, calls as ``{"function": name, "args": {...}, "id"}``
    and results naming their call in ``tool_call`` (no ``name``)."""
    out: list[dict[str, Any]] = []
    calls: dict[str, dict[str, Any]] = {}
    for m in messages:
        content = None if m["content"] is None else [{"type": "text", "content": m["content"]}]
        if m["role"] == "assistant":
            adojo = [{"function": c["function"]["name"], "args": json.loads(c["function"]["arguments"]),
                      "id": c["id"]} for c in m.get("tool_calls") or []]
            calls.update((c["id"], c) for c in adojo)
            out.append({"role": "assistant", "content": content, "tool_calls": adojo or None})
        elif m["role"] == "tool":
            out.append({"role": "tool", "content": content, "tool_call_id": m["tool_call_id"],
                        "tool_call": calls[m["tool_call_id"]], "error": None})
        else:
            out.append({"role": m["role"], "content": content})
    return out


def _anonymous_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with every tool result's ``tool_call_id`` and ``name`` (and every call's id) removed."""
    out = []
    for m in messages:
        m = {k: v for k, v in m.items() if not (m["role"] == "tool" and k in ("tool_call_id", "name"))}
        if m.get("tool_calls"):
            m["tool_calls"] = [{k: v for k, v in c.items() if k != "id"} for c in m["tool_calls"]]
        out.append(m)
    return out


def _essence(trace: Trace) -> list[tuple[Any, ...]]:
    """What a step says, without the attrs that record how it was found."""
    return [(s.kind, s.agent, s.target, s.content, s.args, s.result, s.sources, s.reads, s.side_effect)
            for s in trace.steps]


def test_agentdojo_content_parts_are_text_like_openai_parts() -> None:
    """A text part may hold its text in 'text' (OpenAI) or 'content' (AgentDojo); both are the message's text."""
    steps = _steps([
        {"role": "system", "content": [{"type": "text", "content": "You help Emma."}]},
        {"role": "user", "content": [{"type": "text", "content": "Find"}, {"type": "text", "text": "my mail."}]},
        {"role": "assistant", "content": [{"type": "text", "content": "Looking."}],
         "tool_calls": [_call("m", "get_mail", "{}")]},
        _tool("m", "get_mail", [{"type": "text", "content": '{"n": 2}'}]),
        {"role": "assistant", "content": [{"type": "thinking", "content": "two mails"},
                                          {"type": "text", "content": "You have 2 mails."}]},
    ])
    assert [s.content for s in steps if s.kind is StepKind.MESSAGE] == [
        "You help Emma.", "Find\nmy mail.", "Looking.", "You have 2 mails."]
    assert steps[3].result == {"n": 2}
    assert steps[4].attrs["non_text_parts"] == ["thinking"]
    assert all("non_text_parts" not in s.attrs for s in steps[:4])


def test_a_text_part_without_text_is_an_error_not_an_empty_message() -> None:
    """A text part with neither 'text' nor 'content' is reported by message and part, never imported as ''."""
    with pytest.raises(TraceFormatError, match=r"message 1: content part 1 of type 'text' has no text"):
        _steps([{"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "value": "b"}]}])


def test_a_real_run_in_agentdojo_shape_imports_as_its_openai_shape() -> None:
    """A real AgentDyn run written in AgentDojo's message shape gives the same steps as the OpenAI-shape file."""
    data = json.loads(ATTACK_RUN.read_text(encoding="utf-8"))
    flags = _injection_flags()
    (expected,) = import_openai(ATTACK_RUN, **flags)
    adojo = trace_from_messages(_agentdojo_shape(data["messages"]), name="adojo", **flags)
    assert _essence(adojo) == _essence(expected)
    assert sum(1 for s in adojo.steps if s.kind is StepKind.TOOL) == 3
    violation = check(adojo, [no_untrusted_action()]).first_violation
    assert violation is not None and violation == check(expected, [no_untrusted_action()]).first_violation


def test_results_without_id_or_name_answer_the_calls_in_order() -> None:
    """Tool results with no id and no name answer the last assistant message's calls in order, each once."""
    messages = [
        {"role": "user", "content": "Compare A and B"},
        {"role": "assistant", "content": None,
         "tool_calls": [_call(None, "web_search", '{"q": "A"}'), _call(None, "get_price", '{"id": "B"}')]},
        {"role": "tool", "content": "A is great"},
        {"role": "tool", "content": "2"},
        {"role": "assistant", "content": "B costs 2."},
    ]
    with pytest.warns(ImportGapWarning, match=r"t: 2 tool results matched by position \(messages 2, 3\)"):
        steps = _steps(messages, untrusted_tools=["web_search"])
    assert [(s.target, s.args, s.result, s.untrusted) for s in steps[1:3]] == [
        ("web_search", {"q": "A"}, "A is great", True), ("get_price", {"id": "B"}, 2, False)]
    assert [s.attrs.get("result_matched_by") for s in steps[1:3]] == ["position", "position"]
    assert [s.attrs["result_source_index"] for s in steps[1:3]] == [2, 3]
    assert not any(s.attrs.get("orphan_result") for s in steps)
    assert steps[3].reads == (1, 2)


def test_a_result_without_id_or_name_that_answers_no_call_is_untrusted_and_named_in_a_warning() -> None:
    """With no open call to answer, a result without id and name is its own untrusted step, never a trusted one."""
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [_call(None, "lookup", "{}")]},
        {"role": "tool", "content": "first"},
        {"role": "tool", "content": "one too many"},                     # the only call is answered
        {"role": "assistant", "content": "Done."},
        {"role": "tool", "content": "after a text-only turn"},            # no call of that turn to answer
        {"role": "tool", "tool_call_id": "gone", "content": "an id that matches no call"},
    ]
    with pytest.warns(ImportGapWarning) as caught:
        steps = _steps(messages)
    assert str(caught[0].message) == (
        "t: 1 tool result matched by position (message 2); "
        "3 tool results imported as untrusted with no tool name (messages 3, 5, 6)")
    orphans = [s for s in steps if s.attrs.get("orphan_result")]
    assert [(o.attrs["source_index"], o.target, o.result) for o in orphans] == [
        (3, None, "one too many"), (5, None, "after a text-only turn"), (6, None, "an id that matches no call")]
    assert all(o.untrusted and o.attrs["no_tool_name"] for o in orphans)
    assert all(o.sources == (Source(kind="tool", ref=None, trusted=False),) for o in orphans)


def test_import_gaps_are_listed_per_trace_and_empty_for_a_clean_log() -> None:
    """chat_gaps names each kind of gap with its message positions; a log that maps exactly has none."""
    with pytest.warns(ImportGapWarning):
        trace = trace_from_messages([
            {"role": "assistant", "content": None, "tool_calls": [_call(None, "a", "{}"), _call(None, "b", "{}")]},
            {"role": "tool", "content": "1"}, {"role": "tool", "content": "2"},
            _tool(None, "c", "3"),                                         # named, but no call of that name
            {"role": "tool", "content": "4"},
        ], name="t")
    gaps = chat_gaps(trace)
    assert [(g.kind, g.positions) for g in gaps] == [("by_position", (1, 2)), ("no_call", (3,)), ("no_tool_name", (4,))]
    assert describe_gaps(gaps) == ("2 tool results matched by position (messages 1, 2); "
                                   "1 tool result answering no call imported as its own step (message 3); "
                                   "1 tool result imported as untrusted with no tool name (message 4)")
    (clean,) = import_openai(_taubench_files()[0])
    assert chat_gaps(clean) == ()


def test_a_real_run_whose_results_lost_ids_and_names_still_catches_the_attack() -> None:
    """The real attack run with every result's id and name removed: matched by position, the untrusted mail
    stays untrusted and the e-mail to the attacker still fails no_untrusted_action at the same step."""
    data = json.loads(ATTACK_RUN.read_text(encoding="utf-8"))
    flags = _injection_flags()
    (expected,) = import_openai(ATTACK_RUN, **flags)
    with pytest.warns(ImportGapWarning, match=r"3 tool results matched by position \(messages 3, 5, 7\)"):
        stripped = trace_from_messages(_anonymous_results(data["messages"]), name="stripped", **flags)
    assert _essence(stripped) == _essence(expected)
    violation = check(stripped, [no_untrusted_action()]).first_violation
    assert violation is not None and violation == check(expected, [no_untrusted_action()]).first_violation


def test_a_real_run_with_parallel_calls_matches_results_by_position() -> None:
    """A real run whose assistant made two parallel calls: results without ids or names join them in order."""
    data = json.loads(PARALLEL_RUN.read_text(encoding="utf-8"))
    flags = _injection_flags()
    (expected,) = import_openai(PARALLEL_RUN, **flags)
    with pytest.warns(ImportGapWarning, match=r"2 tool results matched by position \(messages 3, 4\)"):
        stripped = trace_from_messages(_anonymous_results(data["messages"]), name="parallel", **flags)
    assert _essence(stripped) == _essence(expected)
    tools = [s for s in stripped.steps if s.kind is StepKind.TOOL]
    assert [(s.target, s.args["product_name"], s.untrusted) for s in tools] == [
        ("search_product", "laptop", True), ("search_product", "mouse", True)]


def test_named_speakers_of_a_group_chat_are_the_agents() -> None:
    """AG2/AutoGen group chats and Magentic-One name each speaker; the name is the step's agent, for its calls too."""
    steps = _steps([
        {"role": "system", "content": "You are in a team.", "name": "chat_manager"},
        {"role": "user", "content": "Plan a trip to Rome.", "name": "user"},
        {"role": "user", "content": "1. Find flights. 2. Book a hotel.", "name": "Planner"},
        {"role": "assistant", "content": "Searching.", "name": "WebSurfer",
         "tool_calls": [_call("s", "web_search", '{"q": "flights Rome"}')]},
        _tool("s", "web_search", "FCO 120 EUR"),
        {"role": "assistant", "content": "A flight costs 120 EUR.", "name": "WebSurfer"},
        {"role": "assistant", "content": "Booked."},
    ], untrusted_tools=["web_search"])
    assert [(s.kind.value, s.agent, s.target) for s in steps] == [
        ("message", "system", None), ("message", "user", None), ("message", "Planner", None),
        ("message", "WebSurfer", None), ("tool", "WebSurfer", "web_search"), ("message", "WebSurfer", None),
        ("message", "assistant", "user")]
    assert steps[1].sources == USER
    assert steps[2].sources == (Source(kind="agent", ref="Planner"),)
    assert steps[3].sources == (Source(kind="agent", ref="WebSurfer"),)
    assert "message_fields" not in steps[2].attrs and "message_fields" not in steps[3].attrs
    assert steps[0].attrs["message_fields"] == {"name": "chat_manager"}


def test_a_name_that_is_not_text_is_an_error() -> None:
    """A participant name that is not text is reported with its message position."""
    with pytest.raises(TraceFormatError, match=r"message 0: 'name' is not text \(7\)"):
        _steps([{"role": "assistant", "content": "x", "name": 7}])


def test_cli_import_summarises_what_it_could_not_map_and_exits_1(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Runs that needed guesses are still written; stderr says what and where per run, and the exit status is 1."""
    guessed = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [_call(None, "a", "{}"), _call(None, "b", "{}")]},
        {"role": "tool", "content": "1"}, {"role": "tool", "content": "2"}, {"role": "tool", "content": "3"},
    ]
    clean = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    path = _write(tmp_path / "runs.jsonl", json.dumps(clean) + "\n" + json.dumps(guessed) + "\n")
    out_dir = tmp_path / "out"
    code = main(["import", "openai", str(path), "--out", str(out_dir)])
    out, err = capsys.readouterr()
    assert code == 1
    assert len(out.splitlines()) == 2 and len(list(out_dir.iterdir())) == 2
    assert err.splitlines() == [
        f"mattrace: warning: {path}:2: 2 tool results matched by position (messages 2, 3); "
        "1 tool result imported as untrusted with no tool name (message 4)",
        "mattrace: 1 of 2 runs imported with guesses (see above); exit status 1"]
    written = {mattrace.load(p).name: mattrace.load(p) for p in out_dir.iterdir()}
    assert [s.untrusted for s in written["runs#2"].steps if s.kind is StepKind.TOOL] == [False, False, True]


def test_cli_import_of_logs_that_map_exactly_exits_0_with_nothing_on_stderr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real injection runs (ids and names on every result) import with exit 0 and no summary."""
    code = main(["import", "openai", str(ATTACK_RUN), str(PARALLEL_RUN), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert (code, err, len(out.splitlines())) == (0, "", 2)
