"""OpenAI SDK calls are llm steps through the interceptor chain: recorded, replayed, faulted, governed, linked.

The real SDK talks to a fake API behind ``httpx.MockTransport`` (tests/llm_fakes.py); a
replayed call is one the fake never saw.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import mattrace
from mattrace.errors import EscapedCall
from mattrace.faults import ConnectionFailed, ContentFiltered, RateLimited, ServiceError, Timeout
from mattrace.integrations import openai as openai_recording
from mattrace.recording.interceptors import Answer, Call, CallOutcome
from mattrace.trace import StepKind
from tests.llm_fakes import FakeOpenAI

ASK = [{"role": "user", "content": "please write to Ana about order 42"}]
TOOLS = [{"type": "function", "function": {"name": "send_email", "parameters": {"type": "object", "properties": {
    "to": {"type": "string"}}}}}]


@mattrace.tool(side_effect=True)
def send_email(to: str) -> str:
    return f"sent to {to}"


def test_chat_completion_is_an_llm_step_linked_to_the_tool_call_it_requests() -> None:
    """A tool-calling completion records model, messages, tool names, usage and the call ids; the tool step reads it."""
    fake = FakeOpenAI(tool="send_email")
    with mattrace.record("openai-chat") as rec, mattrace.agent("writer"):
        answer = fake.client().chat.completions.create(model="gpt-4o", messages=ASK, tools=TOOLS, temperature=0)
        call = answer.choices[0].message.tool_calls[0]
        send_email(**json.loads(call.function.arguments))
    llm, tool = rec.trace.steps[:2]
    assert llm.kind is StepKind.LLM and llm.agent == "writer" and llm.target == "gpt-4o"
    assert llm.args == {"model": "gpt-4o", "messages": ASK, "tools": ["send_email"], "temperature": 0}
    assert llm.attrs["tool_calls_requested"] == ["send_email"] and llm.attrs["tool_call_ids"] == ["call_42"]
    assert llm.result["tool_calls"] == [{"id": "call_42", "name": "send_email",
                                         "arguments": {"to": "ana@example.com"}}]
    assert llm.attrs["tokens"] == {"prompt": 5, "completion": 7, "total": 12}
    assert llm.attrs["api"] == "openai.chat.completions"
    assert tool.kind is StepKind.TOOL and tool.reads == (0,)


def _each_api(client: openai.OpenAI, async_client: openai.AsyncOpenAI) -> list[str]:
    """One call of each intercepted form: chat and responses, sync and async, whole, streamed and the stream()
    helpers."""
    texts = [client.chat.completions.create(model="gpt-4o", messages=ASK).choices[0].message.content or ""]
    stream = client.chat.completions.create(model="gpt-4o", messages=ASK, stream=True)
    texts.append("".join(chunk.choices[0].delta.content or "" for chunk in stream))
    with client.chat.completions.stream(model="gpt-4o", messages=ASK) as helper:
        texts.append(helper.get_final_completion().choices[0].message.content or "")
    texts.append(client.responses.create(model="gpt-4o", input="hello").output_text)
    events = client.responses.create(model="gpt-4o", input="hello", stream=True)
    texts.append("".join(getattr(e, "delta", "") for e in events if e.type == "response.output_text.delta"))
    with client.responses.stream(model="gpt-4o", input="hello") as responses_helper:
        texts.append(responses_helper.get_final_response().output_text)

    async def more() -> list[str]:
        chat = await async_client.chat.completions.create(model="gpt-4o", messages=ASK)
        chunks = await async_client.chat.completions.create(model="gpt-4o", messages=ASK, stream=True)
        joined = "".join([c.choices[0].delta.content or "" async for c in chunks])
        response = await async_client.responses.create(model="gpt-4o", input="hello")
        return [chat.choices[0].message.content or "", joined, response.output_text]

    return texts + asyncio.run(more())


def test_every_form_is_recorded_and_replayed_without_calling_the_api(tmp_path: Path) -> None:
    """Chat and responses, sync and async, whole and streamed: recorded once, replayed in mode none with no request."""
    live, replayed = FakeOpenAI(text="Hello Ana"), FakeOpenAI(text="something else")
    cassette = str(tmp_path / "openai.cassette")
    with mattrace.record("every-form", cassette=cassette) as first:
        recorded = _each_api(live.client(), live.async_client())
    with mattrace.record("every-form", cassette=cassette, record_mode="none") as second:
        again = _each_api(replayed.client(), replayed.async_client())
    assert recorded == again == ["Hello Ana"] * 9
    assert len(live.requests) == 9 and replayed.requests == []
    assert [s.content for s in second.trace.steps] == [s.content for s in first.trace.steps]
    assert first.trace.fingerprint() == second.trace.fingerprint()


@pytest.mark.parametrize(("fault", "error", "status"), [
    (Timeout("llm:*"), openai.APITimeoutError, None),
    (ConnectionFailed("llm:*"), openai.APIConnectionError, None),
    (RateLimited("llm:*", retry_after=2), openai.RateLimitError, 429),
    (ServiceError("llm:*", 503), openai.InternalServerError, 503),
    (ServiceError("llm:*", 400), openai.BadRequestError, 400),
])
def test_faults_raise_the_sdks_own_exceptions(fault: Any, error: type[Exception], status: int | None) -> None:
    """An injected fault raises the SDK's exception type, built around an HTTP request (and response)."""
    fake = FakeOpenAI()
    with pytest.raises(error) as caught, mattrace.record("faulted", faults=[fault]) as rec:
        fake.client().chat.completions.create(model="gpt-4o", messages=ASK)
    assert fake.requests == []
    assert isinstance(caught.value.request, httpx.Request)
    assert str(caught.value.request.url) == "https://api.openai.com/v1/chat/completions"
    if status is not None:
        assert isinstance(caught.value, openai.APIStatusError) and caught.value.status_code == status
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "2"
    fault_step, llm_step = rec.trace.steps[:2]
    assert fault_step.kind is StepKind.FAULT and llm_step.kind is StepKind.LLM
    assert llm_step.error is not None and llm_step.error.type == error.__name__ and llm_step.reads == (0,)


def test_content_filtered_answers_with_the_sdks_own_response_types() -> None:
    """ContentFiltered answers a chat call with a ChatCompletion (a stream with chunks) that the model declined."""
    fake = FakeOpenAI()
    with mattrace.record("filtered", faults=[ContentFiltered("llm:*")]):
        answer = fake.client().chat.completions.create(model="gpt-4o", messages=ASK)
        chunks = list(fake.client().chat.completions.create(model="gpt-4o", messages=ASK, stream=True))
        response = fake.client().responses.create(model="gpt-4o", input="hello")
    assert answer.choices[0].finish_reason == "content_filter" and answer.choices[0].message.content is None
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert response.output[0].content[0].type == "refusal"
    assert fake.requests == []


class Gatekeeper:
    """A governance-order interceptor that answers LLM calls itself, as a governor refusing them would."""

    name, order = "gatekeeper", 100

    def __init__(self) -> None:
        self.seen: list[Call] = []

    def before(self, call: Call) -> Answer | None:
        self.seen.append(call)
        return Answer(error=PermissionError(f"{call.target} refused"))

    def after(self, call: Call, outcome: CallOutcome) -> CallOutcome:
        return outcome


def test_governance_sees_every_call_before_the_api_does() -> None:
    """The chain's first interceptor judges the call, with the SDK named on it, before any request is sent."""
    fake, gate = FakeOpenAI(), Gatekeeper()
    with mattrace.record("governed", governor=gate), pytest.raises(PermissionError):
        fake.client().responses.create(model="gpt-4o", input="hello")
    assert fake.requests == [] and [c.attrs["api"] for c in gate.seen] == ["openai.responses"]
    assert gate.seen[0].client is not None and gate.seen[0].client.name == "openai"


def test_responses_function_calls_are_recorded_with_their_call_ids() -> None:
    """A responses function_call is recorded by name and call_id, like a chat tool call."""
    fake = FakeOpenAI(tool="send_email")
    with mattrace.record("responses-tools") as rec:
        fake.client().responses.create(model="gpt-4o", input="write to Ana",
                                       tools=[{"type": "function", "name": "send_email", "parameters": {}}])
    step = rec.trace.steps[0]
    assert step.args["tools"] == ["send_email"] and step.content == "Hello there"
    assert step.attrs["tool_calls_requested"] == ["send_email"] and step.attrs["tool_call_ids"] == ["call_7"]


def test_calls_that_bypass_the_chain_are_refused_when_the_run_needs_them(tmp_path: Path) -> None:
    """parse() and with_raw_response post on their own: refused in replay-only mode, before any request."""
    fake = FakeOpenAI()
    cassette = str(tmp_path / "c.cassette")
    with mattrace.record("live", cassette=cassette):
        fake.client().chat.completions.create(model="gpt-4o", messages=ASK)
    with mattrace.record("replay", cassette=cassette, record_mode="none"):
        with pytest.raises(EscapedCall, match="parse is not intercepted"):
            fake.client().chat.completions.parse(model="gpt-4o", messages=ASK)
        with pytest.raises(EscapedCall, match="with_raw_response is not intercepted"):
            fake.client().chat.completions.with_raw_response.create(model="gpt-4o", messages=ASK)
    assert len(fake.requests) == 1


def test_record_instruments_the_sdk_and_uninstrument_restores_it() -> None:
    """record() instruments an imported openai; uninstrument() puts the SDK's methods back."""
    openai_recording.uninstrument()
    create = openai.resources.chat.Completions.create
    with mattrace.record("auto"):
        assert openai_recording.is_instrumented()
        assert openai.resources.chat.Completions.create is not create
        assert openai.resources.chat.Completions.create.__wrapped__ is create
    openai_recording.uninstrument()
    assert openai.resources.chat.Completions.create is create
    openai_recording.instrument()


def test_calls_outside_a_recording_go_straight_to_the_sdk() -> None:
    """Outside record() the wrapper calls the SDK as is (its own Stream type included)."""
    openai_recording.instrument()
    fake = FakeOpenAI()
    stream = fake.client().chat.completions.create(model="gpt-4o", messages=ASK, stream=True)
    assert isinstance(stream, openai.Stream) and len(fake.requests) == 1


def test_a_litellm_call_made_through_the_openai_sdk_is_one_step() -> None:
    """litellm's OpenAI provider calls the SDK: the call is litellm's step, not recorded twice."""
    import litellm

    fake = FakeOpenAI(text="via litellm")
    with mattrace.record("litellm-over-openai", cassette=False) as rec:
        answer = litellm.completion(model="openai/gpt-4o", messages=ASK, client=fake.client(), api_key="sk-test")
    assert answer.choices[0].message.content == "via litellm" and len(fake.requests) == 1
    assert [(s.kind, s.target) for s in rec.trace.steps] == [(StepKind.LLM, "openai/gpt-4o"), (StepKind.END, None)]
    assert "api" not in rec.trace.steps[0].attrs


def _agents_sdk_model() -> Any:
    """A function in a module of the OpenAI Agents SDK's package (``agents``) that calls the OpenAI SDK."""
    module: dict[str, Any] = {"__name__": "agents.models.fake_openai_model"}
    exec("def respond(client, messages):\n"
         "    return client.chat.completions.create(model='gpt-4o', messages=messages)\n", module)
    return module["respond"]


def test_calls_the_agents_sdk_makes_are_left_to_its_integration_and_judged(tmp_path: Path) -> None:
    """The Agents SDK's model calls are recorded from its spans: not a second step, and refused in replay-only mode."""
    respond, fake = _agents_sdk_model(), FakeOpenAI()
    with mattrace.record("observed", cassette=False) as rec:
        respond(fake.client(), ASK)
    assert [s.kind for s in rec.trace.steps] == [StepKind.END] and len(fake.requests) == 1
    cassette = str(tmp_path / "c.cassette")
    with mattrace.record("live", cassette=cassette):
        fake.client().chat.completions.create(model="gpt-4o", messages=ASK)
    with mattrace.record("replay", cassette=cassette, record_mode="none"), \
            pytest.raises(EscapedCall, match="called by the OpenAI Agents SDK"):
        respond(fake.client(), ASK)
    assert len(fake.requests) == 2
