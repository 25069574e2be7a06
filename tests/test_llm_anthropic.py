"""Anthropic SDK calls are llm steps through the interceptor chain: recorded, replayed, faulted, governed, linked.

The real SDK talks to a fake API behind its HTTP library's ``MockTransport`` (tests/llm_fakes.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anthropic
import pytest

import mattrace
from mattrace.errors import EscapedCall, EscapedCallWarning
from mattrace.faults import ContentFiltered, RateLimited, ServiceError, Timeout
from mattrace.integrations import anthropic as anthropic_recording
from mattrace.trace import StepKind
from tests.llm_fakes import FakeAnthropic, anthropic_http
from tests.test_llm_openai import Gatekeeper

ASK = [{"role": "user", "content": "please write to Ana about order 42"}]
TOOLS = [{"name": "send_email", "description": "send", "input_schema": {"type": "object"}}]


@mattrace.tool(side_effect=True)
def send_email(to: str) -> str:
    return f"sent to {to}"


def test_tool_use_is_an_llm_step_linked_to_the_tool_call_it_requests() -> None:
    """A tool_use answer records text, tool names, ids and usage; the tool step that follows reads it."""
    fake = FakeAnthropic(tool="send_email")
    with mattrace.record("anthropic-tools") as rec, mattrace.agent("writer"):
        message = fake.client().messages.create(model="claude-x", max_tokens=100, system="be brief",
                                                messages=ASK, tools=TOOLS)
        use = next(block for block in message.content if block.type == "tool_use")
        send_email(**use.input)
    llm, tool = rec.trace.steps[:2]
    assert llm.kind is StepKind.LLM and llm.agent == "writer" and llm.content == "Hi there"
    assert llm.args == {"model": "claude-x", "messages": ASK, "system": "be brief", "tools": ["send_email"],
                        "max_tokens": 100}
    assert llm.attrs["tool_calls_requested"] == ["send_email"] and llm.attrs["tool_call_ids"] == ["toolu_9"]
    assert llm.result["tool_calls"] == [{"id": "toolu_9", "name": "send_email", "arguments": {"to": "ana@example.com"}}]
    assert llm.attrs["tokens"] == {"prompt": 3, "completion": 4, "total": 7}
    assert tool.kind is StepKind.TOOL and tool.reads == (0,)


def _each_form(client: anthropic.Anthropic, async_client: anthropic.AsyncAnthropic) -> list[Any]:
    """messages.create sync and async, whole and streamed (text, and the streamed tool call's id)."""
    whole = client.messages.create(model="claude-x", max_tokens=50, messages=ASK)
    events = list(client.messages.create(model="claude-x", max_tokens=50, messages=ASK, stream=True))
    streamed = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")

    async def more() -> list[Any]:
        message = await async_client.messages.create(model="claude-x", max_tokens=50, messages=ASK)
        stream = await async_client.messages.create(model="claude-x", max_tokens=50, messages=ASK, stream=True)
        async with stream:
            kinds = [event.type async for event in stream]
        return [message.content[0].text, kinds[-1]]

    return [whole.content[0].text, streamed, *asyncio.run(more())]


def test_every_form_is_recorded_and_replayed_without_calling_the_api(tmp_path: Path) -> None:
    """Sync and async, whole and streamed: recorded once, then replayed in mode none without a request."""
    live, replayed = FakeAnthropic(text="Dear Ana", tool="send_email"), FakeAnthropic(text="other")
    cassette = str(tmp_path / "anthropic.cassette")
    with mattrace.record("every-form", cassette=cassette) as first:
        recorded = _each_form(live.client(), live.async_client())
    with mattrace.record("every-form", cassette=cassette, record_mode="none") as second:
        again = _each_form(replayed.client(), replayed.async_client())
    assert recorded == again == ["Dear Ana", "Dear Ana", "Dear Ana", "message_stop"]
    assert len(live.requests) == 4 and replayed.requests == []
    streamed = second.trace.steps[1]
    assert streamed.content == "Dear Ana" and streamed.attrs["tool_call_ids"] == ["toolu_9"]
    assert first.trace.fingerprint() == second.trace.fingerprint()


@pytest.mark.parametrize(("fault", "error", "status"), [
    (Timeout("llm:*"), anthropic.APITimeoutError, None),
    (RateLimited("llm:*", retry_after=3), anthropic.RateLimitError, 429),
    (ServiceError("llm:*", 529), anthropic.InternalServerError, 529),
    (ServiceError("llm:*", 500), anthropic.InternalServerError, 500),
])
def test_faults_raise_the_sdks_own_exceptions(fault: Any, error: type[Exception], status: int | None) -> None:
    """An injected fault raises the SDK's exception type, around a request of the SDK's own HTTP library."""
    fake = FakeAnthropic()
    with pytest.raises(error) as caught, mattrace.record("faulted", faults=[fault]) as rec:
        fake.client().messages.create(model="claude-x", max_tokens=10, messages=ASK)
    assert fake.requests == []
    assert isinstance(caught.value.request, anthropic_http().Request)
    assert str(caught.value.request.url) == "https://api.anthropic.com/v1/messages"
    if status is not None:
        assert isinstance(caught.value, anthropic.APIStatusError) and caught.value.status_code == status
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "3"
    assert [s.kind for s in rec.trace.steps][:2] == [StepKind.FAULT, StepKind.LLM]


def test_content_filtered_is_a_refusal_message() -> None:
    """ContentFiltered answers with a Message (or stream events) whose stop_reason is refusal."""
    fake = FakeAnthropic()
    with mattrace.record("filtered", faults=[ContentFiltered("llm:*")]) as rec:
        message = fake.client().messages.create(model="claude-x", max_tokens=10, messages=ASK)
        events = list(fake.client().messages.create(model="claude-x", max_tokens=10, messages=ASK, stream=True))
    assert message.stop_reason == "refusal" and message.content == []
    assert [e.type for e in events] == ["message_start", "message_delta", "message_stop"]
    assert [s.result["stop_reason"] for s in rec.trace.steps if s.kind is StepKind.LLM] == ["refusal", "refusal"]
    assert fake.requests == []


def test_governance_sees_every_call_before_the_api_does() -> None:
    """The chain's first interceptor judges the call, with the SDK named on it, before any request is sent."""
    fake, gate = FakeAnthropic(), Gatekeeper()
    with mattrace.record("governed", governor=gate), pytest.raises(PermissionError):
        asyncio.run(fake.async_client().messages.create(model="claude-x", max_tokens=10, messages=ASK))
    assert fake.requests == [] and [c.attrs["api"] for c in gate.seen] == ["anthropic.messages"]


def test_the_stream_helper_is_refused_when_the_run_needs_it_and_warned_otherwise() -> None:
    """messages.stream() posts on its own: refused under faults, made with a warning in an observe-only run."""
    fake = FakeAnthropic()
    with mattrace.record("faulted", cassette=False, faults=[Timeout("llm:*")]), \
            pytest.raises(EscapedCall, match=r"messages.stream\(\) is not intercepted"):
        fake.client().messages.stream(model="claude-x", max_tokens=10, messages=ASK)
    with mattrace.record("observed", cassette=False), pytest.warns(EscapedCallWarning, match="not recorded"):
        with fake.client().messages.stream(model="claude-x", max_tokens=10, messages=ASK) as stream:
            assert stream.get_final_text() == "Hi there"
    assert len(fake.requests) == 1


def test_uninstrument_restores_the_sdk() -> None:
    """instrument() twice wraps once; uninstrument() puts the SDK's own methods back."""
    anthropic_recording.uninstrument()
    create = anthropic.resources.messages.Messages.create
    anthropic_recording.instrument()
    wrapped = anthropic.resources.messages.Messages.create
    anthropic_recording.instrument()
    assert anthropic.resources.messages.Messages.create is wrapped is not create
    anthropic_recording.uninstrument()
    assert anthropic.resources.messages.Messages.create is create
    anthropic_recording.instrument()
