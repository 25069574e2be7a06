"""LLM calls through litellm become ordered ``llm`` steps; the scripted provider answers offline."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import litellm
import pytest

import mattrace
from mattrace.integrations import litellm as llm_recording
from mattrace.provenance import context_reads
from mattrace.recording.interceptors import Answer, Call, CallOutcome
from mattrace.testing import Rule, Script, ToolCall, register_script, use_script
from mattrace.trace import StepKind

SEND_SPEC = [{"type": "function", "function": {
    "name": "send_email", "parameters": {"type": "object", "properties": {
        "to": {"type": "string"}, "body": {"type": "string"}}}}}]

register_script("test_llm", Script(rules=[
    Rule(agent="^writer$", after_tool="send_email", reply="Done: {tool_result}"),
    Rule(agent="^writer$", last=r"order (?P<order>\d+)", tool_calls=[
        ToolCall(name="send_email", arguments={"to": "ana@example.com", "body": "About order {order}"})]),
    Rule(last="^explode$", reply="{never filled}"),
]))


@mattrace.tool(side_effect=True)
def send_email(to: str, body: str) -> str:
    return f"sent to {to}"


def _conversation(response: Any, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    call = response.choices[0].message.tool_calls[0]
    result = send_email(**json.loads(call.function.arguments))
    return [*messages,
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call.id, "type": "function",
                 "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "name": "send_email", "content": result}]


def test_completion_is_recorded_before_the_tool_call_it_causes() -> None:
    """A scripted tool-calling turn records llm, tool, llm in call order, with usage and links."""
    messages = [{"role": "user", "content": "please handle order 42"}]
    with mattrace.record("llm-order") as rec, mattrace.agent("writer"):
        first = litellm.completion(model="mattrace/test_llm", messages=messages, tools=SEND_SPEC)
        messages = _conversation(first, messages)
        final = litellm.completion(model="mattrace/test_llm", messages=messages)
    assert final.choices[0].message.content == "Done: sent to ana@example.com"
    kinds = [s.kind for s in rec.trace.steps]
    assert kinds == [StepKind.LLM, StepKind.TOOL, StepKind.LLM, StepKind.END]
    llm_step, tool_step, second = rec.trace.steps[:3]
    assert llm_step.agent == "writer" and llm_step.target == "mattrace/test_llm"
    assert llm_step.attrs["tool_calls_requested"] == ["send_email"]
    assert llm_step.result["tool_calls"][0]["arguments"] == {"to": "ana@example.com",
                                                            "body": "About order 42"}
    assert llm_step.attrs["tokens"]["total"] > 0 and llm_step.attrs["cost_usd"] == 0.0
    assert llm_step.args["tools"] == ["send_email"]
    assert tool_step.reads == (0,), "the tool call reads the LLM step that requested it"
    assert second.content == "Done: sent to ana@example.com" and second.reads == ()
    assert context_reads(rec.trace.steps)[2].inferred == (0, 1), "its prompt holds the request and the result"


def test_async_completion_is_recorded_in_order() -> None:
    """acompletion is recorded before the caller's next step, inside the caller's agent."""
    async def run() -> mattrace.Trace:
        async with mattrace.record("llm-async") as rec:
            with mattrace.agent("writer"):
                response = await litellm.acompletion(
                    model="mattrace/test_llm", messages=[{"role": "user", "content": "order 7 please"}],
                    tools=SEND_SPEC)
                call = response.choices[0].message.tool_calls[0]
                send_email(**json.loads(call.function.arguments))
        return rec.trace

    trace = asyncio.run(run())
    assert [s.kind for s in trace.steps] == [StepKind.LLM, StepKind.TOOL, StepKind.END]
    assert trace.steps[0].agent == "writer"


def test_failed_completion_is_recorded_with_its_error_and_reraised() -> None:
    """A call no script rule answers is a recorded error step, and the caller sees litellm's error."""
    with mattrace.record("llm-error") as rec:
        with pytest.raises(litellm.exceptions.BadRequestError, match="no rule matches"):
            litellm.completion(model="mattrace/test_llm", messages=[{"role": "user", "content": "hm"}],
                               metadata={"agent": "nobody"})
    step = rec.trace.steps[0]
    assert step.kind is StepKind.LLM and step.agent == "nobody"
    assert step.error is not None and step.error.type == "BadRequestError"
    assert "no rule matches" in step.error.message


def test_mock_response_calls_are_recorded_without_network() -> None:
    """litellm's own mock_response path is recorded like any other call."""
    with mattrace.record("llm-mock") as rec:
        response = litellm.completion(model="gpt-4o-mini", mock_response="hello there",
                                      messages=[{"role": "user", "content": "hi"}])
    assert response.choices[0].message.content == "hello there"
    step = rec.trace.steps[0]
    assert step.content == "hello there" and step.args["model"] == "gpt-4o-mini"


def test_explicit_reads_from_metadata_are_added() -> None:
    """metadata={'mattrace_reads': [...]} adds reads edges the text alone would not show."""
    with mattrace.record("llm-reads") as rec:
        mattrace.message("user", "short")
        litellm.completion(model="gpt-4o-mini", mock_response="ok",
                           messages=[{"role": "user", "content": "unrelated"}],
                           metadata={"mattrace_reads": [0]})
    assert rec.trace.steps[1].reads == (0,)


def test_calls_outside_a_recording_are_not_recorded(tmp_path: Any) -> None:
    """Outside record() the wrapper calls straight through and writes nothing."""
    response = litellm.completion(model="gpt-4o-mini", mock_response="plain",
                                  messages=[{"role": "user", "content": "hi"}])
    assert response.choices[0].message.content == "plain"
    assert not (tmp_path / ".mattrace").exists()


def test_calls_bypassing_the_wrapper_are_recorded_by_the_callback() -> None:
    """In an observe-only run, a reference to litellm's unwrapped function is still recorded, through the callback."""
    llm_recording.instrument()
    unwrapped = litellm.completion.__wrapped__
    with mattrace.record("llm-callback", cassette=False) as rec:
        unwrapped(model="gpt-4o-mini", mock_response="via callback",
                  messages=[{"role": "user", "content": "hi"}])
        deadline = time.monotonic() + 5
        while not rec.steps and time.monotonic() < deadline:
            time.sleep(0.01)
    step = rec.trace.steps[0]
    assert step.kind is StepKind.LLM and step.content == "via callback"
    assert step.attrs["recorded_via"] == "callback"
    assert sum(s.kind is StepKind.LLM for s in rec.trace.steps) == 1


class CannedAnswer:
    """An interceptor that answers every LLM call itself, as replay will."""

    name, order = "canned", 300

    def before(self, call: Call) -> Answer | None:
        if call.kind is StepKind.LLM:
            return Answer(result=litellm.ModelResponse(
                choices=[{"message": {"role": "assistant", "content": "canned"}}], model="canned"))
        return None

    def after(self, call: Call, outcome: CallOutcome) -> CallOutcome:
        return outcome


def test_interceptors_can_answer_llm_calls_without_calling_the_model() -> None:
    """An interceptor answering before the call means no provider is asked (replay's mechanism)."""
    with mattrace.record("llm-canned", governor=CannedAnswer()) as rec:
        response = litellm.completion(model="mattrace/test_llm",
                                      messages=[{"role": "user", "content": "no rule for this"}])
    assert response.choices[0].message.content == "canned"
    assert rec.trace.steps[0].content == "canned" and rec.trace.steps[0].error is None


def test_use_script_serves_mattrace_scripted_in_its_context_only() -> None:
    """model='mattrace/scripted' answers from the script set by use_script, and fails outside it."""
    script = Script(rules=[], default="from the default")
    with use_script(script):
        response = litellm.completion(model="mattrace/scripted", messages=[{"role": "user", "content": "x"}])
    assert response.choices[0].message.content == "from the default"
    with pytest.raises(litellm.exceptions.BadRequestError, match="no script is registered"):
        litellm.completion(model="mattrace/scripted", messages=[{"role": "user", "content": "x"}])


def test_uninstrument_restores_litellm_and_instrument_is_idempotent() -> None:
    """instrument() twice wraps once; uninstrument() restores the original functions."""
    llm_recording.instrument()
    wrapped = litellm.completion
    llm_recording.instrument()
    assert litellm.completion is wrapped
    llm_recording.uninstrument()
    try:
        assert not llm_recording.is_instrumented()
        assert litellm.completion is wrapped.__wrapped__
    finally:
        llm_recording.instrument()
    assert llm_recording.is_instrumented()


def test_streamed_completion_is_recorded_once_consumed() -> None:
    """A stream is read whole inside the chain: one llm step with the joined text, and every chunk passed on."""
    with mattrace.record("llm-stream") as rec:
        stream = litellm.completion(model="gpt-4o-mini", mock_response="streamed answer here",
                                    messages=[{"role": "user", "content": "hi"}], stream=True)
        assert [s.content for s in rec.steps] == ["streamed answer here"], "recorded before the caller reads on"
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "streamed answer here"
    llm_steps = [s for s in rec.trace.steps if s.kind is StepKind.LLM]
    assert len(llm_steps) == 1 and llm_steps[0].content == "streamed answer here"


def test_async_streamed_completion_is_recorded_once_consumed() -> None:
    """An async stream is read whole and recorded the same way."""
    async def run() -> tuple[str, mattrace.Trace]:
        async with mattrace.record("llm-astream") as rec:
            stream = await litellm.acompletion(model="gpt-4o-mini", mock_response="async stream",
                                               messages=[{"role": "user", "content": "hi"}], stream=True)
            parts = [chunk.choices[0].delta.content or "" async for chunk in stream]
        return "".join(parts), rec.trace

    text, trace = asyncio.run(run())
    assert text == "async stream"
    assert [s.content for s in trace.steps if s.kind is StepKind.LLM] == ["async stream"]


def test_a_fresh_copy_of_the_llm_module_does_not_wrap_litellm_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-importing the integration (as pytester's module restore does) still records one step per call."""
    import importlib
    import sys

    llm_recording.instrument()
    monkeypatch.delitem(sys.modules, "mattrace.integrations.litellm")
    fresh = importlib.import_module("mattrace.integrations.litellm")
    assert fresh is not llm_recording
    fresh.instrument()
    assert fresh.is_instrumented() and llm_recording.is_instrumented()
    with mattrace.record("twice") as rec:
        litellm.completion(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], mock_response="hello")
    assert [s.kind for s in rec.trace.steps] == [StepKind.LLM, StepKind.END]
