"""Every litellm call goes through the interceptor chain whatever the import style, or fails loudly.

``from litellm import completion`` in a module imported before mattrace wrapped litellm, the
async and streamed forms, and the Router are replayed from the cassette without calling the
model; a reference mattrace cannot reach is refused before it calls the model whenever the
run replays, injects LLM faults or is governed.
"""

from __future__ import annotations

import asyncio
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litellm
import pytest

import mattrace
from mattrace.errors import EscapedCall, EscapedCallWarning
from mattrace.faults import Timeout
from mattrace.governance import Governor
from mattrace.integrations import litellm as llm_recording
from mattrace.testing import Script, use_script
from mattrace.trace import StepKind

ASK = [{"role": "user", "content": "which order?"}]
SCRIPT = Script(rules=[], default="order 42")


@pytest.fixture
def unwrapped() -> Iterator[None]:
    """litellm as a program finds it before mattrace wrapped it (wrapped again afterwards)."""
    llm_recording.uninstrument()
    try:
        yield
    finally:
        llm_recording.instrument()


def _module_importing(monkeypatch: pytest.MonkeyPatch, names: str) -> types.ModuleType:
    """A module that ran ``from litellm import <names>`` (while litellm was not yet wrapped)."""
    module = types.ModuleType("app_using_litellm")
    exec(f"from litellm import {names}", module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def _record_then_replay(tmp_path: Path, run: Any) -> tuple[Any, Any, mattrace.Trace]:
    """``run()`` recorded with the scripted model, then replayed in mode none with no script at all:
    a call that reached the model would fail with "no script is registered"."""
    cassette = tmp_path / "run.cassette"
    with use_script(SCRIPT), mattrace.record("live", cassette=str(cassette)):
        first = run()
    with mattrace.record("replayed", cassette=str(cassette), record_mode="none") as rec:
        again = run()
    return first, again, rec.trace


def test_completion_imported_by_name_before_mattrace_is_replayed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unwrapped: None) -> None:
    """`from litellm import completion` bound before instrumentation replays from the cassette in mode none."""
    app = _module_importing(monkeypatch, "completion")
    first, again, trace = _record_then_replay(
        tmp_path, lambda: app.completion(model="mattrace/scripted", messages=ASK))
    assert first.choices[0].message.content == again.choices[0].message.content == "order 42"
    assert app.completion is litellm.completion, "the module's name was rebound to the wrapper"
    assert trace.steps[0].kind is StepKind.LLM and "recorded_via" not in trace.steps[0].attrs


def test_acompletion_and_streams_imported_by_name_are_replayed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unwrapped: None) -> None:
    """`from litellm import acompletion` and streamed calls record their chunks and replay them in mode none.

    litellm's mock answers carry a fresh id on every real call: a replayed answer has the recorded one.
    """
    app = _module_importing(monkeypatch, "acompletion, completion")

    async def ask() -> tuple[str, set[str]]:
        stream = await app.acompletion(model="gpt-4o-mini", messages=ASK, stream=True, mock_response="order 42")
        chunks = [chunk async for chunk in stream]
        return "".join(c.choices[0].delta.content or "" for c in chunks), {c.id for c in chunks}

    def run() -> tuple[Any, ...]:
        sync = list(app.completion(model="gpt-4o-mini", messages=ASK, stream=True, mock_response="order 7"))
        plain = asyncio.run(app.acompletion(model="gpt-4o-mini", messages=ASK, mock_response="order 9"))
        return (*asyncio.run(ask()), "".join(c.choices[0].delta.content or "" for c in sync), {c.id for c in sync},
                plain.choices[0].message.content, plain.id)

    first, again, trace = _record_then_replay(tmp_path, run)
    assert first == again
    assert first[0] == "order 42" and first[2] == "order 7" and first[4] == "order 9"
    assert [s.content for s in trace.steps if s.kind is StepKind.LLM] == ["order 7", "order 9", "order 42"]


def test_router_calls_are_replayed(tmp_path: Path) -> None:
    """A litellm Router's calls are keyed without its per-run details (trace ids, retries, clients) and replay."""
    router = litellm.Router(model_list=[{"model_name": "support", "litellm_params": {"model": "mattrace/scripted"}}])
    first, again, trace = _record_then_replay(
        tmp_path, lambda: router.completion(model="support", messages=ASK).choices[0].message.content)
    assert first == again == "order 42"
    assert [s.kind for s in trace.steps] == [StepKind.LLM, StepKind.END]


@pytest.fixture
def kept_reference(unwrapped: None) -> dict[str, Any]:
    """A reference to litellm's function kept where no rebinding can reach it (a dict, an object)."""
    return {"completion": litellm.completion}


def test_a_reference_mattrace_cannot_reach_is_refused_in_replay_only_mode(
        tmp_path: Path, kept_reference: dict[str, Any]) -> None:
    """Replay-only mode refuses an escaped call before it reaches the model, naming the call site and the fix."""
    llm_recording.instrument()
    cassette = tmp_path / "run.cassette"
    with mattrace.record("live", cassette=str(cassette)):
        litellm.completion(model="mattrace/scripted", messages=ASK, mock_response="fine")
    with pytest.raises(EscapedCall) as caught, mattrace.record("replayed", cassette=str(cassette),
                                                               record_mode="none"):
        kept_reference["completion"](model="mattrace/scripted", messages=ASK)   # no script: the model would fail
    message = str(caught.value)
    assert f"{__file__}:" in message and "replays from the cassette" in message
    assert "It was not made" in message and "instrument()" in message


def test_a_reference_mattrace_cannot_reach_is_refused_when_a_fault_targets_llm_calls(
        kept_reference: dict[str, Any]) -> None:
    """Timeout("llm:*") could not be injected into an escaped call, so the call is refused instead of made."""
    with pytest.raises(EscapedCall, match="fault plan targets it"), \
            mattrace.record("faulted", cassette=False, faults=[Timeout("llm:*")]):
        kept_reference["completion"](model="gpt-4o-mini", messages=ASK, mock_response="made anyway")


def test_a_reference_mattrace_cannot_reach_is_refused_in_a_governed_run(kept_reference: dict[str, Any]) -> None:
    """A governed run refuses an LLM call its governor would see out of order."""
    with pytest.raises(EscapedCall, match="governed"), \
            mattrace.record("governed", cassette=False, governor=Governor()):
        kept_reference["completion"](model="gpt-4o-mini", messages=ASK, mock_response="made anyway")


def test_an_escaped_call_while_recording_a_cassette_is_made_recorded_and_warned(
        kept_reference: dict[str, Any]) -> None:
    """Recording, an escaped call is made and recorded by the callback, with a warning that the cassette lacks it."""
    with pytest.warns(EscapedCallWarning, match="not in the cassette"), mattrace.record("recording") as rec:
        kept_reference["completion"](model="gpt-4o-mini", messages=ASK, mock_response="made")
        deadline = time.monotonic() + 5
        while not rec.steps and time.monotonic() < deadline:
            time.sleep(0.01)
    assert rec.trace.steps[0].content == "made" and rec.trace.steps[0].attrs["recorded_via"] == "callback"


def test_faults_reach_completion_imported_by_name(monkeypatch: pytest.MonkeyPatch, unwrapped: None) -> None:
    """Timeout("llm:*") is injected into a call through `from litellm import completion` (a litellm Timeout)."""
    app = _module_importing(monkeypatch, "completion")
    with pytest.raises(litellm.Timeout), mattrace.record("faulted", cassette=False, faults=[Timeout("llm:*")]) as rec:
        app.completion(model="gpt-4o-mini", messages=ASK, mock_response="never")
    assert [s.kind for s in rec.trace.steps][:2] == [StepKind.FAULT, StepKind.LLM]


def test_uninstrument_puts_rebound_names_back(monkeypatch: pytest.MonkeyPatch, unwrapped: None) -> None:
    """uninstrument() restores the names instrument() rebound, so the module sees litellm's own function again."""
    original = litellm.completion
    app = _module_importing(monkeypatch, "completion")
    llm_recording.instrument()
    assert app.completion is litellm.completion is not original
    llm_recording.uninstrument()
    assert app.completion is original is litellm.completion


@pytest.mark.parametrize("how", ["thread", "pool"])
def test_a_call_from_a_thread_without_the_runs_context_is_refused_when_an_open_run_needs_it(
        tmp_path: Path, how: str) -> None:
    """A replay-only run whose code hands the model call to a thread (no copied context) would call the model:
    the call belongs to no run, but an open run needs it, so it is refused, naming the run and the fix. With the
    context carried into the thread, the same call is answered from the cassette."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    cassette = tmp_path / "run.cassette"
    with use_script(SCRIPT), mattrace.record("live", cassette=str(cassette)):
        litellm.completion(model="mattrace/scripted", messages=ASK)
    errors: list[BaseException] = []

    def ask() -> Any:
        try:
            return litellm.completion(model="mattrace/scripted", messages=ASK)
        except BaseException as exc:   # the thread reports what it raised
            errors.append(exc)
            return None

    with mattrace.record("replayed", cassette=str(cassette), record_mode="none") as rec:
        if how == "thread":
            worker = threading.Thread(target=ask)
            worker.start()
            worker.join()
        else:
            with ThreadPoolExecutor(1) as pool:
                pool.submit(ask).result()
        with ThreadPoolExecutor(1) as pool:   # the documented fix: carry the context
            import contextvars
            answer = pool.submit(contextvars.copy_context().run, ask).result()
    [error] = errors
    assert isinstance(error, EscapedCall)
    assert "no run's context reaches" in str(error) and "run 'replayed'" in str(error) and "copy_context" in str(error)
    assert answer is not None and answer.choices[0].message.content == "order 42"
    assert [s.kind for s in rec.trace.steps[:-1]] == [StepKind.LLM]


def test_a_call_from_a_thread_runs_when_no_open_run_needs_it(tmp_path: Path) -> None:
    """An observe-only run (no cassette, faults or governor) does not make other threads' calls fail."""
    import threading

    answers: list[Any] = []
    with mattrace.record("observe", cassette=False):
        worker = threading.Thread(target=lambda: answers.append(
            litellm.completion(model="gpt-4o", messages=ASK, mock_response="order 42")))
        worker.start()
        worker.join()
    assert answers and answers[0].choices[0].message.content == "order 42"
