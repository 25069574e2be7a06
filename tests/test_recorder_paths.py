"""The recorder's two paths (plain values encoded once; anything else converted and redacted
field by field) write the same bytes, and a long run's steps leave memory for the file."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mattrace
from mattrace.recording import recorder as recorder_module
from mattrace.recording.recorder import Recorder
from mattrace.recording.redact import Redactor
from mattrace.trace import Source, Step, StepKind
from tests.strategies import json_objects, json_values, texts


def _step_lines(path: Path) -> list[bytes]:
    """Each step line's bytes without its hash (which chains from the header, holding the trace id)."""
    lines = [line[:line.rindex(b',"h":"')] for line in path.read_bytes().split(b"\n") if line]
    return [line for line in lines if line.endswith(b'"type":"step"')]


class _AlwaysLook(Redactor):
    """The default redactor with the quick scan always saying "look closer": every step takes
    the general path, field by field, as all steps did before the plain path existed."""

    def may_hold_secret(self, data: bytes | str) -> bool:
        return True


_kinds = st.sampled_from([StepKind.MESSAGE, StepKind.TOOL, StepKind.LLM, StepKind.MEMORY_WRITE])
_values = st.one_of(json_values, st.tuples(json_values, json_values), st.just(math.nan),
                    st.just(1e-07), st.just(2**70), st.just({3: "int key"}), st.just({"a", "b"}))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=_kinds, agent=texts.filter(bool), target=st.none() | texts, content=st.none() | texts,
       args=st.none() | json_objects, result=_values, attrs=st.none() | json_objects,
       side_effect=st.booleans(), trusted=st.booleans())
def test_the_plain_path_writes_what_the_general_path_writes(
        tmp_path_factory: pytest.TempPathFactory, kind: StepKind, agent: str, target: str | None,
        content: str | None, args: dict[str, Any] | None, result: Any, attrs: dict[str, Any] | None,
        side_effect: bool, trusted: bool) -> None:
    """Same inputs, same line (times aside), same step in memory, whichever path recorded it:
    NaN, tuples, sets, int keys, tiny floats and secrets included."""
    tmp = tmp_path_factory.mktemp("paths")
    recorded = []
    for redactor in (Redactor.default(), _AlwaysLook()):
        rec = Recorder("paths", dir=tmp, redact=redactor, cassette=False)
        step = rec.append(kind, agent=agent, target=target, content=content, args=args, result=result,
                          attrs=attrs, side_effect=side_effect, t_start=1, t_end=2,
                          sources=[Source(kind="tool", ref=target, trusted=trusted)])
        rec.close()
        line = _step_lines(rec.path)[0]
        assert Step.model_validate(json.loads(line + b"}")["step"]) == step
        recorded.append((line, step))
    (plain_line, plain_step), (general_line, general_step) = recorded
    assert plain_line == general_line
    assert plain_step == general_step


@pytest.mark.parametrize(("args", "result", "attrs"), [
    ({"x": 1e-07, "n": 1}, None, None), ({"x": 1e-05}, "text", {"k": "v"}), ({"n": 1}, 1e-07, None),
    ({"n": 1}, [1e-05, 2], None), ({"n": 1}, None, {"f": 1e-06}), ({"big": 2**70}, None, None),
    ({"nan": math.nan}, None, None), ({"n": 1}, {"inf": math.inf}, None), ({"n": None, "b": True}, [None], {"s": "é"}),
])
def test_flat_values_with_and_without_floats_write_what_the_general_path_writes(
        tmp_path: Path, args: dict[str, Any], result: Any, attrs: dict[str, Any] | None) -> None:
    """Flat values with no float are encoded without the float checks; a flat value with a
    tiny float, NaN or a big integer still gets them (or the general path)."""
    lines = []
    for n, redactor in enumerate((Redactor.default(), _AlwaysLook())):
        rec = Recorder(f"flat{n}", dir=tmp_path, redact=redactor, cassette=False)
        rec.append(StepKind.TOOL, target="t", args=args, result=result, attrs=attrs, t_start=1, t_end=2)
        rec.close()
        lines.append(_step_lines(rec.path)[0])
    assert lines[0] == lines[1]


def test_a_secret_sends_the_step_down_the_general_path(tmp_path: Path) -> None:
    with mattrace.record("secret", dir=tmp_path) as rec:
        step = rec.append(StepKind.TOOL, target="deploy", args={"apiKey": "abc123def456"},
                          content="curl -H 'Authorization: Bearer sk-abcdefghijklmnopqrstuvwx12'")
    assert step.args == {"apiKey": "[REDACTED]"}
    assert "sk-abcdefghijklmnopqrstuvwx12" not in rec.path.read_text(encoding="utf-8")
    assert "abc123def456" not in rec.path.read_text(encoding="utf-8")


def test_a_value_changed_after_it_was_recorded_does_not_change_the_step(tmp_path: Path) -> None:
    """The step in memory is the parse of the line written, not the caller's objects."""
    args: dict[str, Any] = {"items": [1, 2], "note": {"k": "v"}}
    with mattrace.record("mutate", dir=tmp_path) as rec:
        step = rec.append(StepKind.TOOL, target="cart", args=args, result=args["items"])
        args["items"].append(3)
        args["note"]["k"] = "changed"
    assert step.args == {"items": [1, 2], "note": {"k": "v"}}
    assert step.result == [1, 2]
    assert rec.steps[0] == mattrace.load(rec.path).steps[0]


def test_flat_values_changed_after_they_were_recorded_do_not_change_the_step(tmp_path: Path) -> None:
    args: dict[str, Any] = {"order": 7, "region": "eu"}
    result = ["shipped", 3]
    attrs: dict[str, Any] = {"tries": 1}
    with mattrace.record("mutate-flat", dir=tmp_path) as rec:
        step = rec.append(StepKind.TOOL, target="lookup", args=args, result=result, attrs=attrs)
        args["order"], result[0], attrs["tries"] = 8, "lost", 2
    assert (step.args, step.result, step.attrs) == ({"order": 7, "region": "eu"}, ["shipped", 3], {"tries": 1})
    assert step == mattrace.load(rec.path).steps[0]


def test_a_long_run_keeps_a_bounded_window_in_memory_and_reads_the_rest_back(tmp_path: Path) -> None:
    keep = recorder_module._KEEP
    n = 5 * keep + 7
    with mattrace.record("long", dir=tmp_path) as rec:
        for i in range(n):
            mattrace.message("writer", f"turn {i}")
        assert len(rec._steps) <= keep + recorder_module._DROP   # memory stays flat: the file holds the rest
        assert rec.next_index == n
        assert [s.content for s in rec.steps_since(n - 3)] == [f"turn {i}" for i in range(n - 3, n)]
        early = rec.steps_since(2)
        assert [s.index for s in early] == list(range(2, n))
        assert early[0].content == "turn 2"
    trace = rec.trace
    assert trace.incomplete is None
    assert trace.steps == mattrace.load(rec.path).steps
    assert [s.index for s in trace.steps] == list(range(n + 1))


def test_a_run_kept_in_memory_keeps_every_step(tmp_path: Path) -> None:
    rec = Recorder("memory", persist=False)
    for i in range(3 * recorder_module._KEEP):
        rec.append(StepKind.MESSAGE, content=f"m{i}")
    assert len(rec.steps) == 3 * recorder_module._KEEP
    assert rec.steps[0].content == "m0"


def test_after_the_file_fails_the_steps_before_and_after_are_all_there(tmp_path: Path) -> None:
    """Steps dropped from memory are read back from the part of the file that was written;
    those after the failure stay in memory."""
    keep = recorder_module._KEEP
    rec = Recorder("fails", dir=tmp_path, cassette=False)
    for i in range(3 * keep):
        rec.append(StepKind.MESSAGE, content=f"m{i}")
    assert rec._base > 0

    def broken(index: int, body: bytes) -> None:
        raise OSError(28, "No space left on device")
    rec._writer.write_step_record = broken  # type: ignore[method-assign]
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        for i in range(3 * keep, 4 * keep):
            rec.append(StepKind.MESSAGE, content=f"m{i}")
    assert rec.write_error is not None
    assert [s.content for s in rec.steps] == [f"m{i}" for i in range(4 * keep)]


def _sample(a, b=2, c="x"):  # type: ignore[no-untyped-def]
    return (a, b, c)


def _keyword_only(a, *, b=2):  # type: ignore[no-untyped-def]
    return (a, b)


@pytest.mark.parametrize("fn", [_sample, _keyword_only])
@pytest.mark.parametrize(("args", "kwargs"), [
    ((1,), {}), ((1, 5), {}), ((1,), {"c": "y"}), ((), {"a": 1, "c": "z", "b": 3}), ((1, 2, 3), {}),
    ((1, 2, 3, 4), {}), ((), {}), ((1,), {"a": 2}), ((1,), {"d": 4}), ((1,), {"b": 9})])
def test_the_quick_binder_binds_as_signature_bind_does(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Same arguments in the same order, or the same TypeError, as inspect.Signature.bind."""
    import inspect

    from mattrace.recording.boundaries import _bind, _binder
    sig = inspect.signature(fn)
    try:
        expected: Any = _bind(sig, args, kwargs)
    except TypeError as exc:
        with pytest.raises(TypeError, match=str(exc)):
            _binder(sig)(args, kwargs)
    else:
        got = _binder(sig)(args, kwargs)
        assert list(got.items()) == list(expected.items())


def test_a_tool_result_holding_a_secret_is_redacted_in_the_cassette(tmp_path: Path) -> None:
    @mattrace.tool
    def fetch_config(name: str) -> dict[str, str]:
        return {"name": name, "note": "token=ghp_abcdefghijklmnopqrstuvwxyz0123456789"}

    with mattrace.record("cassette-secret", dir=tmp_path) as rec:
        fetch_config("prod")
    cassette = next(tmp_path.glob("*.cassette")).read_text(encoding="utf-8")
    assert "ghp_abcdefghijklmnopqrstuvwxyz0123456789" not in cassette
    assert "ghp_abcdefghijklmnopqrstuvwxyz0123456789" not in rec.path.read_text(encoding="utf-8")
    assert '"prod"' in cassette


def test_a_consumer_a_little_behind_gets_exactly_the_steps_it_missed(tmp_path: Path) -> None:
    keep = recorder_module._KEEP
    with mattrace.record("behind", dir=tmp_path) as rec:
        for i in range(3 * keep):
            mattrace.message("writer", f"turn {i}")
        start = rec._base - 5        # five steps before the first one still in memory
        got = rec.steps_since(start)
        assert [s.index for s in got] == list(range(start, 3 * keep))
        assert [s.content for s in got[:6]] == [f"turn {i}" for i in range(start, start + 6)]


def test_a_file_changed_under_a_running_recorder_is_refused_when_read_back(tmp_path: Path) -> None:
    keep = recorder_module._KEEP
    rec = Recorder("tampered", dir=tmp_path, cassette=False)
    for i in range(3 * keep):
        rec.append(StepKind.MESSAGE, content=f"m{i}")
    data = rec.path.read_bytes()
    rec.path.write_bytes(data.replace(b'"content":"m3"', b'"content":"XX"', 1).replace(
        b'"index":4,', b'"index":9,', 1))
    with pytest.raises(mattrace.errors.RecordingError, match="does not read back"):
        rec.steps_since(0)
    rec.abandon()


def test_an_argument_an_interceptor_adds_that_the_tool_does_not_take_is_left_out(tmp_path: Path) -> None:
    """As inspect.BoundArguments did: the call goes ahead with the parameters the tool has."""
    from mattrace.recording.interceptors import Answer, Call, CallOutcome

    class AddsOne:
        name, order = "adds-one", 10

        def before(self, call: Call) -> Answer | None:
            call.args["extra"] = 1
            return None

        def after(self, call: Call, outcome: CallOutcome) -> CallOutcome:
            return outcome

        def close(self) -> None:
            pass

    @mattrace.tool
    def double(x: int) -> int:
        return 2 * x

    with mattrace.record("extra-arg", dir=tmp_path) as rec:
        rec.add_interceptor(AddsOne())
        assert double(4) == 8


_flat_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts)


@settings(max_examples=200)
@given(value=st.dictionaries(st.one_of(texts, st.just("$mt")), _flat_scalars, max_size=6))
def test_a_flat_dict_is_encoded_for_the_cassette_as_the_walk_encodes_it(value: dict[str, Any]) -> None:
    """The quick encoding of a dict of plain scalars (sorted or not, NaN or the marker key
    included) equals the walk's (a disabled redactor takes the walk and changes nothing)."""
    from mattrace.replay._codec import encode_value
    assert encode_value(value) == encode_value(value, Redactor(enabled=False))
