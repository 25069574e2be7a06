"""Property tests of the trace model: file round trips, canonical JSON, fingerprints, schema."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mattrace
from mattrace.trace import VOLATILE_ATTRS, Step, Trace, canonical_json, trace_json_schema
from mattrace.tracefile import TraceWriter
from tests.strategies import json_values, traces

_names = itertools.count()


def _write(directory: Path, trace: Trace) -> Path:
    path = directory / f"t{next(_names)}.jsonl"
    writer = TraceWriter(path, trace.model_copy(update={"steps": [], "outcome": None}))
    for step in trace.steps:
        writer.write_step(step)
    writer.seal(trace.outcome)
    return path


@settings(max_examples=30, deadline=None)
@given(trace=traces())
def test_written_trace_loads_back_identical(trace: Trace, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A trace written with TraceWriter and read with mattrace.load has equal steps and fingerprint."""
    path = _write(tmp_path_factory.getbasetemp(), trace)
    loaded = mattrace.load(path)
    assert loaded.steps == trace.steps
    assert loaded.fingerprint() == trace.fingerprint()
    assert loaded.outcome == trace.outcome
    assert loaded == trace
    assert mattrace.verify(path).ok


def _shuffled(value: Any, rnd: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: _shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


@settings(max_examples=100)
@given(value=json_values, rnd=st.randoms(use_true_random=False))
def test_canonical_json_ignores_key_order_and_round_trips(value: Any, rnd: random.Random) -> None:
    """canonical_json gives one string whatever the dict key order, and json.loads inverts it."""
    text = canonical_json(value)
    assert canonical_json(_shuffled(value, rnd)) == text
    assert json.loads(text) == value
    assert canonical_json(json.loads(text)) == text


@settings(max_examples=20)
@given(trace=traces(min_steps=1, max_steps=3), data=st.data())
def test_fingerprint_ignores_times_ids_and_volatile_attrs(trace: Trace, data: st.DataObject) -> None:
    """Wall-clock times, the trace id, VOLATILE_ATTRS and the session label do not change the fingerprint."""
    volatile = data.draw(st.dictionaries(st.sampled_from(sorted(VOLATILE_ATTRS)), json_values,
                                         min_size=1))
    times = st.none() | st.integers(min_value=0, max_value=2**63)
    changed = [
        s.model_copy(update={"t_start": data.draw(times), "t_end": data.draw(times),
                             "attrs": s.attrs | volatile})
        for s in trace.steps
    ]
    other = trace.model_copy(update={"steps": changed, "trace_id": trace.trace_id + "f",
                                     "labels": trace.labels | {"mattrace.run": "another-session"}})
    assert other.fingerprint() == trace.fingerprint()
    relabelled = trace.model_copy(update={"labels": trace.labels | {"mattrace.test": "another"}})
    assert relabelled.fingerprint() != trace.fingerprint(), "other labels are part of the run"


@settings(max_examples=20)
@given(trace=traces(min_steps=1, max_steps=3), data=st.data())
def test_fingerprint_changes_with_content_args_result_and_attrs(trace: Trace, data: st.DataObject) -> None:
    """Changing a step's content, args, result or a non-volatile attr changes the fingerprint."""
    i = data.draw(st.integers(0, len(trace.steps) - 1))
    step = trace.steps[i]
    updates = [
        {"content": (step.content or "") + "!"},
        {"args": {"changed": step.args}},
        {"result": [step.result]},
        {"attrs": step.attrs | {"model": [step.attrs.get("model")]}},
    ]
    for update in updates:
        edited = list(trace.steps)
        edited[i] = step.model_copy(update=update)
        other = trace.model_copy(update={"steps": edited})
        assert other.fingerprint() != trace.fingerprint(), update


@settings(max_examples=40)
@given(value=json_values, bad=st.sampled_from([math.nan, math.inf, -math.inf]),
       nest=st.integers(0, 3))
def test_canonical_json_refuses_nan_and_infinity(value: Any, bad: float, nest: int) -> None:
    """NaN and ±Infinity have no JSON form, so canonical_json raises wherever they hide."""
    poisoned: Any = bad
    for level in range(nest):
        poisoned = [value, poisoned] if level % 2 else {"ok": value, "bad": poisoned}
    with pytest.raises(ValueError):
        canonical_json(poisoned)


@settings(max_examples=20)
@given(value=json_values, bad=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_fingerprint_does_not_turn_nan_into_null(value: Any, bad: float) -> None:
    """A step holding NaN/inf is refused or fingerprinted apart from one holding null, never silently equal."""
    def fingerprint_or_refused(result: Any) -> str:
        trace = Trace(trace_id="t", name="n", steps=[Step(index=0, kind="tool", result=result)])
        try:
            return trace.fingerprint()
        except ValueError:
            return "refused"

    assert fingerprint_or_refused([value, bad]) != fingerprint_or_refused([value, None])


# -- JSON schema ----------------------------------------------------------------------------


def _schema_errors(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str = "$") -> list[str]:
    """Errors of ``value`` against the subset of JSON Schema pydantic emits for Trace."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return _schema_errors(value, root["$defs"][name], root, where)
    if "anyOf" in schema:
        options = [_schema_errors(value, s, root, where) for s in schema["anyOf"]]
        return [] if any(not o for o in options) else [f"{where}: matches no anyOf branch"]
    errors: list[str] = []
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    expected = schema.get("type")
    if expected == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{where}: {value!r} is not an integer"]
    elif expected == "number":
        if not isinstance(value, int | float) or isinstance(value, bool):
            return [f"{where}: {value!r} is not a number"]
    elif expected is not None and not isinstance(value, kinds[expected]):
        return [f"{where}: {value!r} is not of type {expected}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where}: {value!r} < {schema['minimum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errors += [f"{where}: missing required {k!r}" for k in schema.get("required", [])
                   if k not in value]
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                errors += _schema_errors(item, props[key], root, f"{where}.{key}")
            elif extra is False:
                errors.append(f"{where}: unexpected property {key!r}")
            elif isinstance(extra, dict):
                errors += _schema_errors(item, extra, root, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            errors += _schema_errors(item, schema["items"], root, f"{where}[{n}]")
    return errors


@settings(max_examples=30)
@given(trace=traces())
def test_dumped_trace_validates_against_trace_json_schema(trace: Trace) -> None:
    """A trace dumped as JSON (full, and in the compact per-line form) satisfies trace_json_schema()."""
    schema = trace_json_schema()
    full = json.loads(canonical_json(trace.model_dump(mode="json")))
    assert _schema_errors(full, schema, schema) == []
    compact = trace.header_dict() | {"steps": [s.to_json_dict() for s in trace.steps]}
    if trace.outcome is not None:
        compact["outcome"] = trace.outcome.model_dump(mode="json")
    assert _schema_errors(json.loads(canonical_json(compact)), schema, schema) == []


@settings(max_examples=10)
@given(trace=traces(min_steps=1, max_steps=2), kind=st.text(min_size=1).filter(
    lambda k: k not in {s.value for s in mattrace.StepKind}))
def test_trace_json_schema_rejects_unknown_step_kind(trace: Trace, kind: str) -> None:
    """The schema check is not vacuous: a step with an unknown kind, or no index, is rejected."""
    schema = trace_json_schema()
    data = json.loads(canonical_json(trace.model_dump(mode="json")))
    data["steps"][0]["kind"] = kind
    assert _schema_errors(data, schema, schema)
    del data["steps"][0]["index"]
    data["steps"][0]["kind"] = "tool"
    assert any("index" in e for e in _schema_errors(data, schema, schema))


def _json_reference(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


_any_float = st.floats(allow_nan=False, allow_infinity=False)
_small_float = st.floats(min_value=-1e-3, max_value=1e-3, allow_nan=False)
_scalar = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-2**70, max_value=2**70)
           | _any_float | _small_float | st.text() | st.text(alphabet=st.characters(max_codepoint=0x40)))
_values = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=20)


@settings(max_examples=400)
@given(value=_values)
def test_canonical_bytes_equal_json(value: Any) -> None:
    """The C-encoded canonical form is byte for byte the json.dumps one (floats of every size,
    integers beyond 64 bits, control characters, unicode): files and fingerprints keep their form."""
    from mattrace.trace import canonical_bytes
    assert canonical_bytes(value) == _json_reference(value)
    assert canonical_json(value) == _json_reference(value).decode("utf-8")


_float_free_scalar = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-2**70, max_value=2**70)
                      | st.text() | st.text(alphabet=st.characters(max_codepoint=0x40)))
_float_free_values = st.recursive(_float_free_scalar, lambda inner: st.lists(inner, max_size=4)
                                  | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=4),
                                  max_leaves=20)


@settings(max_examples=400)
@given(value=_float_free_values)
def test_float_free_canonical_bytes_are_the_json_form_or_none(value: Any) -> None:
    """Without floats, the C encoder's bytes unchecked are the canonical form; what it cannot
    write (big integers, lone surrogates, int keys) is None, never other bytes."""
    from mattrace.trace import float_free_canonical_bytes
    out = float_free_canonical_bytes(value)
    if out is not None:
        assert out == _json_reference(value)


def test_float_free_canonical_bytes_refuse_what_orjson_cannot_write() -> None:
    from mattrace.trace import float_free_canonical_bytes
    assert float_free_canonical_bytes({"n": 2**64}) is None
    assert float_free_canonical_bytes({1: "int key"}) is None
    assert float_free_canonical_bytes({"name": "bad-\udcff"}) is None
    assert float_free_canonical_bytes({"b": [None, True, "é"], "a": -2**63}) == _json_reference(
        {"b": [None, True, "é"], "a": -2**63})


@pytest.mark.parametrize("value", [1e-05, -4.944089182612731e-06, 1e-07, 5e-324, 1e16, 2**64, -2**63 - 1,
                                   {"b": [1e-9, None]}, {1: "int key"}, "\x00\x1f\x7f\u2028"])
def test_canonical_bytes_where_the_c_encoder_would_differ(value: Any) -> None:
    from mattrace.trace import canonical_bytes
    assert canonical_bytes(value) == _json_reference(value)


def test_canonical_json_of_text_with_lone_surrogates_is_still_the_json_form() -> None:
    """Text UTF-8 cannot encode (file names from os.listdir) keeps its str form; only the bytes refuse it."""
    from mattrace.trace import canonical_bytes
    value = {"name": "bad-\udcff-name"}
    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    with pytest.raises(UnicodeEncodeError):
        canonical_bytes(value)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_canonical_bytes_refuses_non_finite_floats(bad: float) -> None:
    """orjson writes NaN as null; the canonical form refuses it, as json.dumps does."""
    from mattrace.trace import canonical_bytes
    with pytest.raises(ValueError):
        canonical_bytes({"x": [1, bad]})
