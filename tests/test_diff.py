"""Tests of trace diff: the first divergence, its field paths, the overview, and `mattrace diff`."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from mattrace.cli import main
from mattrace.io.openai_chat import write_trace
from mattrace.replay._diff import MISSING, STEP_FIELDS, Divergence, diff_summary, first_divergence
from mattrace.report.diff import render_diff
from mattrace.testing import doc, llm, message, retrieval, tool_call, trace, user
from mattrace.trace import Outcome, Step, Trace, canonical_json
from tests.strategies import json_objects, outcomes, steps, texts, traces

HEAVY = ("litellm", "duckdb", "opentelemetry", "hypothesis")


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a CI's FORCE_COLOR from putting escape codes into the captured output."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


def _run(to: str = "a@x.example", *, body: str = "Your refund is on its way", sent: Any = "sent",
         seed: int = 3, extra: bool = False) -> Trace:
    """A refund run: user, delegation, retrieval, an LLM asking for an e-mail, the e-mail, a reply."""
    parts = [user("refund order 42?", to="triage"),
             message("triage", "researcher, look it up", to="researcher"),
             retrieval("refund policy", [doc("kb-1", "Refunds within 30 days")], agent="researcher"),
             llm("writer", tool_calls=[("send_email", {"to": to, "body": body})]),
             tool_call("send_email", {"to": to, "body": body}, sent, agent="writer", side_effect=True, reads=[3]),
             message("writer", "Done: refund sent", to="user")]
    if extra:
        parts.append(message("writer", "one more thing", to="user"))
    return trace(*parts, name="refund-flow", config={"model": "scripted", "seed": seed})


def _replace(t: Trace, index: int, **update: Any) -> Trace:
    """``t`` with step ``index`` changed (validated, as a recorded step would be)."""
    changed = list(t.steps)
    changed[index] = Step.model_validate(t.steps[index].model_dump() | update)
    return t.model_copy(update={"steps": changed})


# -- first_divergence --------------------------------------------------------------------------

def test_identical_runs_with_other_ids_times_and_volatile_attrs_do_not_diverge() -> None:
    """Another trace id, other wall-clock times, volatile attrs and session label are no divergence."""
    a = _run()
    moved = [s.model_copy(update={"t_start": (s.t_start or 0) + 10**9, "t_end": (s.t_end or 0) + 2 * 10**9,
                                  "attrs": s.attrs | {"latency_ms": 12.5, "response_id": f"r-{s.index}"}})
             for s in a.steps]
    b = a.model_copy(update={"trace_id": "another-id", "steps": moved, "labels": {"mattrace.run": "session-2"}})
    assert a.fingerprint() == b.fingerprint()
    assert first_divergence(a, b) is None
    assert diff_summary(a, b) == []


def test_changed_tool_argument_names_step_path_and_values() -> None:
    """A changed e-mail address is reported at the first step carrying it, with its deepest path."""
    d = first_divergence(_run("a@x.example"), _run("b@y.example"))
    assert d is not None
    assert (d.index, d.field, d.old, d.new) == (3, "result.tool_calls[0].arguments.to", "a@x.example", "b@y.example")
    assert d.reason == ('step 3 (llm scripted by writer): result.tool_calls[0].arguments.to differs: '
                        '"a@x.example" → "b@y.example"')
    assert d.old_step is not None and d.new_step is not None and d.old_step.index == d.new_step.index == 3


def test_changed_args_of_a_tool_step() -> None:
    """Only the tool step's argument changed: `args.to` at that step, with the step described."""
    a = _run()
    b = _replace(a, 4, args={"to": "b@y.example", "body": "Your refund is on its way"})
    d = first_divergence(a, b)
    assert d is not None
    assert (d.index, d.field, d.old, d.new) == (4, "args.to", "a@x.example", "b@y.example")
    assert d.reason.startswith("step 4 (tool send_email by writer): args.to differs")


def test_changed_content_is_reported_as_content() -> None:
    """A message with other text diverges at `content`."""
    a = _run()
    d = first_divergence(a, _replace(a, 1, content="researcher, check it"))
    assert d is not None and (d.index, d.field) == (1, "content")
    assert (d.old, d.new) == ("researcher, look it up", "researcher, check it")


def test_changed_result_leaf_reports_the_deepest_path() -> None:
    """A retrieved document's text changing is `result[0].text`, not the whole result."""
    a = _run()
    docs = [dict(a.steps[2].result[0], text="Refunds within 14 days")]
    d = first_divergence(a, _replace(a, 2, result=docs))
    assert d is not None
    assert (d.index, d.field, d.old, d.new) == (2, "result[0].text", "Refunds within 30 days",
                                                 "Refunds within 14 days")


def test_error_difference_is_reported_at_error() -> None:
    """A call that failed with another message diverges at `error.message`; a new failure at `error`."""
    a = trace(tool_call("lookup", {"order": 1}, error=KeyError("no such order")))
    b = trace(tool_call("lookup", {"order": 1}, error=KeyError("order gone")))
    d = first_divergence(a, b)
    assert d is not None and (d.index, d.field) == (0, "error.message")
    assert "no such order" in str(d.old) and "order gone" in str(d.new)
    ok = trace(tool_call("lookup", {"order": 1}, None))
    failed = first_divergence(ok, a)
    assert failed is not None and (failed.field, failed.old) == ("error", None)
    assert failed.new == {"type": "KeyError", "message": "'no such order'"}


def test_extra_step_in_new_trace_is_a_steps_divergence() -> None:
    """When the new trace goes on after the old one ends, the first extra step is reported as `steps`."""
    full = _run()
    short = full.model_copy(update={"steps": full.steps[:5]})
    d = first_divergence(short, full)
    assert d is not None
    assert (d.index, d.field, d.old) == (5, "steps", MISSING)
    assert d.new["content"] == "Done: refund sent" and d.old_step is None and d.new_step is full.steps[5]
    assert "only in the new trace (and 1 more after it): old has 5 steps, new has 7" in d.reason


def test_missing_step_in_new_trace_is_a_steps_divergence() -> None:
    """When the new trace stops early, the first step only the old one has is reported, new side missing."""
    full = _run()
    d = first_divergence(full, full.model_copy(update={"steps": full.steps[:6]}))
    assert d is not None
    assert (d.index, d.field, d.new, d.new_step) == (6, "steps", MISSING, None)
    assert d.old["kind"] == "end" and "only in the old trace: old has 7 steps, new has 6" in d.reason
    assert "new" not in d.to_json_dict() and d.to_json_dict()["old"]["kind"] == "end"


def test_inserted_step_shows_as_first_shifted_position() -> None:
    """Steps are compared by position: an inserted message diverges where it was inserted."""
    d = first_divergence(_run(), _run(extra=True))
    assert d is not None and (d.index, d.field, d.old, d.new) == (6, "kind", "end", "message")


def test_outcome_difference_has_no_step_index() -> None:
    """The same steps with another outcome diverge at `outcome.status`, with index None."""
    a = _run()
    b = a.model_copy(update={"outcome": Outcome(status="failure")})
    d = first_divergence(a, b)
    assert d is not None
    assert (d.index, d.field, d.old, d.new) == (None, "outcome.status", "success", "failure")
    assert d.reason == 'outcome.status differs: "success" → "failure"'
    gone = first_divergence(a, a.model_copy(update={"outcome": None}))
    assert gone is not None and (gone.field, gone.new) == ("outcome", None)


def test_config_name_and_label_differences_and_compare_metadata() -> None:
    """Metadata diverges at `config.seed`, `name` or a bracketed label path; compare_metadata=False ignores it."""
    d = first_divergence(_run(seed=3), _run(seed=4))
    assert d is not None and (d.index, d.field, d.old, d.new) == (None, "config.seed", 3, 4)
    assert first_divergence(_run(seed=3), _run(seed=4), compare_metadata=False) is None
    a = _run()
    renamed = first_divergence(a, a.model_copy(update={"name": "other"}))
    assert renamed is not None and (renamed.field, renamed.old, renamed.new) == ("name", "refund-flow", "other")
    labelled = first_divergence(a, a.model_copy(update={"labels": {"mattrace.test": "t::x"}}))
    assert labelled is not None
    assert (labelled.field, labelled.old, labelled.new) == ('labels["mattrace.test"]', MISSING, "t::x")
    assert "<missing>" in labelled.reason


def test_step_difference_wins_over_outcome_and_metadata() -> None:
    """A trace that differs in a step, the outcome and the config reports the step first."""
    a = _run(seed=3)
    b = _replace(_run(seed=4), 1, content="changed").model_copy(update={"outcome": Outcome(status="error")})
    d = first_divergence(a, b)
    assert d is not None and (d.index, d.field) == (1, "content")
    assert [x.field for x in diff_summary(a, b)] == ["content", "outcome.status", "config.seed"]


def test_volatile_attrs_are_ignored_but_other_attrs_are_not() -> None:
    """latency_ms changing is no divergence; the model changing is `attrs.model`."""
    a = _run()
    slow = _replace(a, 3, attrs=a.steps[3].attrs | {"latency_ms": 999.0, "litellm_call_id": "x"})
    assert first_divergence(a, slow) is None
    d = first_divergence(a, _replace(a, 3, attrs=a.steps[3].attrs | {"model": "gpt-x"}))
    assert d is not None and (d.index, d.field, d.old, d.new) == (3, "attrs.model", "scripted", "gpt-x")


def test_field_order_kind_before_args() -> None:
    """A step whose kind and arguments both changed is reported as a kind change (STEP_FIELDS order)."""
    a = _run()
    d = first_divergence(a, _replace(a, 4, kind="retrieval", args={"query": "x"}))
    assert STEP_FIELDS[0] == "kind"
    assert d is not None and (d.field, d.old, d.new) == ("kind", "tool", "retrieval")


def test_side_effect_and_defaults_compare_against_real_values() -> None:
    """A field at its default on one side is compared with that default, not reported missing."""
    a = _run()
    d = first_divergence(a, _replace(a, 4, side_effect=False))
    assert d is not None and (d.field, d.old, d.new) == ("side_effect", True, False)
    d = first_divergence(a, _replace(a, 1, target=None))
    assert d is not None and (d.field, d.old, d.new) == ("target", "researcher", None)


@pytest.mark.parametrize(("old", "new"), [(1, 1.0), (1, True), (0.0, -0.0), ("1", 1), ([1], (1, 2))])
def test_values_python_calls_equal_but_json_does_not_diverge(old: Any, new: Any) -> None:
    """1 vs 1.0 vs true and 0.0 vs -0.0 differ, as they do in the fingerprint."""
    a, b = _run(sent=old), _run(sent=new)
    assert a.fingerprint() != b.fingerprint()
    d = first_divergence(a, b)
    assert d is not None and d.index == 4 and d.field.startswith("result")


def test_nested_paths_sorted_keys_and_list_lengths() -> None:
    """Keys are walked in sorted order, a shorter list reports its first missing element, odd keys are quoted."""
    d = first_divergence(_run(sent={"b": 1, "a": 1}), _run(sent={"b": 2, "a": 2}))
    assert d is not None and (d.field, d.old, d.new) == ("result.a", 1, 2)
    d = first_divergence(_run(sent=[1, 2, 3]), _run(sent=[1, 2]))
    assert d is not None and (d.field, d.old, d.new) == ("result[2]", 3, MISSING)
    d = first_divergence(_run(sent={"gen_ai.system": "x"}), _run(sent={"gen_ai.system": "y"}))
    assert d is not None and d.field == 'result["gen_ai.system"]'
    d = first_divergence(_run(sent={"a": [1]}), _run(sent={"a": {"0": 1}}))
    assert d is not None and (d.field, d.old, d.new) == ("result.a", [1], {"0": 1})


def test_traces_without_a_fingerprint_still_compare() -> None:
    """A trace holding NaN has no fingerprint, yet diff compares it (NaN equals NaN) and renders it."""
    nan = Trace(trace_id="a", name="n", steps=[Step(index=0, kind="tool", result={"x": math.nan})])
    one = Trace(trace_id="b", name="n", steps=[Step(index=0, kind="tool", result={"x": 1.0})])
    with pytest.raises(ValueError):
        nan.fingerprint()
    assert first_divergence(nan, nan.model_copy(update={"trace_id": "c"})) is None
    d = first_divergence(nan, one)
    assert d is not None and d.field == "result.x" and d.reason.endswith("result.x differs: NaN → 1.0")
    console = Console(width=80, record=True, color_system=None)
    console.print(render_diff(nan, nan, None), render_diff(nan, one, d))
    text = console.export_text()
    assert "identical (fingerprint none (the trace holds NaN or Infinity)): 1 step\n" in text
    assert "result.x" in text


def test_reason_shows_where_long_values_differ() -> None:
    """Two long texts differing near their end are shown around the difference, not as equal prefixes."""
    d = first_divergence(_run(body="x" * 300 + "END"), _run(body="x" * 300 + "FIN"))
    assert d is not None
    shown = d.reason.split("differs: ")[1]
    old, new = shown.split(" → ")
    assert old != new and "END" in old and "FIN" in new and old.startswith("…")
    assert len(d.reason) < 300


def test_diff_summary_lists_each_differing_step_once_up_to_limit() -> None:
    """The overview has one entry per differing step, starts with the first divergence and honours limit."""
    a, b = _run("a@x.example", seed=3), _run("b@y.example", seed=4)
    summary = diff_summary(a, b)
    assert [(d.index, d.field) for d in summary] == [(3, "result.tool_calls[0].arguments.to"),
                                                     (4, "args.to"), (None, "config.seed")]
    assert summary[0] == first_divergence(a, b)
    assert diff_summary(a, b, limit=1) == summary[:1]
    assert diff_summary(a, b, limit=None) == summary
    with pytest.raises(ValueError, match="limit"):
        diff_summary(a, b, limit=-1)


def test_to_json_dict_is_json_and_leaves_out_missing_sides() -> None:
    """to_json_dict is JSON-able, keeps both values, and carries both steps."""
    d = first_divergence(_run("a@x.example"), _run("b@y.example"))
    assert d is not None
    data = json.loads(json.dumps(d.to_json_dict()))
    assert data["index"] == 3 and data["old"] == "a@x.example" and data["new"] == "b@y.example"
    assert data["old_step"]["kind"] == "llm" and data["new_step"]["index"] == 3 and data["reason"] == str(d)


# -- the fingerprint property ------------------------------------------------------------------

_TOKEN = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')
_STEP_DEFAULTS = Step(index=0, kind="end").model_dump(mode="json")


def _at(root: Any, path: str) -> Any:
    """The value at a divergence path in plain JSON data, or MISSING."""
    pos, value = 0, root
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        assert m is not None, f"unparseable path {path!r} at {pos}"
        pos = m.end()
        key: Any = m.group(1) if m.group(1) is not None else (
            int(m.group(2)) if m.group(2) is not None else json.loads(m.group(3)))
        if isinstance(key, int):
            if not isinstance(value, list) or key >= len(value):
                return MISSING
        elif not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


def _root(t: Trace, d: Divergence) -> Any:
    """What a divergence's path is relative to: the step (with its defaults) or the run."""
    plain = json.loads(canonical_json({
        "outcome": t.outcome.model_dump(mode="json") if t.outcome else None,
        "name": t.name, "config": t.config,
        "labels": {k: v for k, v in t.labels.items() if k != "mattrace.run"}}))
    if d.index is None:
        return plain
    if d.index >= len(t.steps):
        return {"steps": MISSING}
    step = json.loads(canonical_json(t.steps[d.index].deterministic_dict()))
    return {"steps": step} if d.field == "steps" else _STEP_DEFAULTS | step


def _same(x: Any, y: Any) -> bool:
    return x is y if MISSING in (x, y) else canonical_json(x) == canonical_json(y)


@st.composite
def _pairs(draw: st.DrawFn) -> tuple[Trace, Trace]:
    """Two traces that are often equivalent and otherwise differ in one place (or everywhere)."""
    a = draw(traces(max_steps=4))
    how = draw(st.sampled_from(["step", "metadata", "outcome", "count", "other", "volatile", "same"]))
    b = a.model_copy(update={"trace_id": a.trace_id + "0"})
    if how == "volatile":
        b = b.model_copy(update={"labels": a.labels | {"mattrace.run": "x"}, "steps": [
            s.model_copy(update={"t_start": 1, "attrs": s.attrs | {"span_id": draw(texts)}}) for s in a.steps]})
    elif how == "step" and a.steps:
        i = draw(st.integers(0, len(a.steps) - 1))
        other = draw(steps(index=i))
        field = draw(st.sampled_from(STEP_FIELDS))
        changed = list(a.steps)
        changed[i] = a.steps[i].model_copy(update={field: getattr(other, field)})
        b = b.model_copy(update={"steps": changed})
    elif how in ("step", "count"):
        extra = [draw(steps(index=len(a.steps)))]
        b = b.model_copy(update={"steps": a.steps[:-1] if a.steps and draw(st.booleans()) else a.steps + extra})
    elif how == "outcome":
        b = b.model_copy(update={"outcome": draw(st.none() | outcomes)})
    elif how == "metadata":
        field, values = draw(st.sampled_from([("name", texts), ("config", json_objects),
                                              ("labels", st.dictionaries(texts, texts, max_size=2))]))
        b = b.model_copy(update={field: draw(values)})
    elif how == "other":
        b = draw(traces(max_steps=4))
    return a, b


@settings(max_examples=80)
@given(pair=_pairs())
def test_first_divergence_is_none_exactly_when_fingerprints_match(pair: tuple[Trace, Trace]) -> None:
    """No divergence iff equal fingerprints; otherwise the earlier steps agree and the path holds old and new."""
    a, b = pair
    d = first_divergence(a, b)
    assert (d is None) == (a.fingerprint() == b.fingerprint())
    summary = diff_summary(a, b, limit=None)
    assert (summary[0] if summary else None) == d
    if d is None:
        return
    for x, y in zip(a.steps[:d.index or 0], b.steps[:d.index or 0], strict=False):
        assert canonical_json(x.deterministic_dict()) == canonical_json(y.deterministic_dict())
    assert _same(_at(_root(a, d), d.field), d.old), (d.field, d.old)
    assert _same(_at(_root(b, d), d.field), d.new), (d.field, d.new)
    assert not _same(d.old, d.new)
    assert d.reason and "\n" not in d.reason


# -- rendering and the CLI ---------------------------------------------------------------------

def _files(tmp_path: Path, *runs: Trace) -> list[str]:
    paths = []
    for i, t in enumerate(runs):
        path = tmp_path / f"run{i}.jsonl"
        write_trace(t.model_copy(update={"trace_id": f"{i:08d}"}), tmp_path / "out").rename(path)
        paths.append(str(path))
    return paths


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_identical_traces_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two recordings of the same run (other ids) are `identical` with their fingerprint, exit 0."""
    old, new = _files(tmp_path, _run(), _run())
    code, out, err = _cli(capsys, "diff", old, new)
    assert (code, err) == (0, "")
    assert out.startswith(f"identical (fingerprint {_run().fingerprint()[:16]}): 7 steps")


def test_cli_differing_traces_show_reason_steps_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The output names the step and field, marks both sides of the step and shows shared context once."""
    monkeypatch.setenv("COLUMNS", "80")   # a log is drawn wide; an 80-column terminal must still fit
    old, new = _files(tmp_path, _run("a@x.example"), _run("b@y.example"))
    code, out, err = _cli(capsys, "diff", old, new, "--around", "1")
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert "step 3 (llm scripted by writer): result.tool_calls[0].arguments.to" in " ".join(lines[:2])
    rows = [line for line in lines if re.match(r"^[▶ ] (both|old|new) +\d", line)]
    assert [row[2:6].strip() + row[6:11].strip() for row in rows] == ["both2", "old3", "new3", "old4", "new4"]
    assert rows[1].startswith("▶ old") and rows[2].startswith("▶ new") and "retrieval" in rows[0]
    detail = out[out.index("  result.tool_calls[0].arguments.to\n"):]
    assert '"a@x.example"' in detail and '"b@y.example"' in detail
    assert f"mattrace show {old} --step 3" in out and f"mattrace show {new} --step 3" in out
    assert "\x1b[" not in out and max(len(line) for line in lines if "mattrace show" not in line) <= 80


def test_cli_all_lists_every_difference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--all adds a table of every differing step, the extra step included."""
    old, new = _files(tmp_path, _run("a@x.example"), _run("b@y.example", extra=True))
    code, out, _ = _cli(capsys, "diff", old, new, "--all")
    assert code == 1
    overview = out[out.index("difference(s)"):]
    assert "4 difference(s)" in out
    assert "args.to" in overview and "only in the new trace" in overview
    assert "(the old trace ends: 7 steps)" not in out  # --around 2 stops at step 5


def test_cli_json_reports_first_and_differences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints identical, the first divergence and the overview; identical runs print null and []."""
    old, new = _files(tmp_path, _run("a@x.example"), _run("b@y.example", seed=4))
    code, out, _ = _cli(capsys, "diff", old, new, "--json")
    data = json.loads(out)
    assert code == 1 and data["identical"] is False
    assert (data["first"]["index"], data["first"]["field"]) == (3, "result.tool_calls[0].arguments.to")
    assert (data["first"]["old"], data["first"]["new"]) == ("a@x.example", "b@y.example")
    assert [(d["index"], d["field"]) for d in data["differences"]] == [
        (3, "result.tool_calls[0].arguments.to"), (4, "args.to"), (None, "config.seed")]
    code, out, _ = _cli(capsys, "diff", old, old, "--json")
    assert code == 0 and json.loads(out) == {"identical": True, "first": None, "differences": []}


def test_cli_corrupt_file_is_one_line_error_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tampered trace file is `mattrace: error: FILE:LINE: reason` on one line and exit 2."""
    old, new = _files(tmp_path, _run(), _run())
    Path(new).write_bytes(Path(new).read_bytes().replace(b"refund order 42?", b"refund order 43?", 1))
    code, out, err = _cli(capsys, "diff", old, new)
    assert (code, out) == (2, "")
    assert err.startswith(f"mattrace: error: {new}:2: ") and err.count("\n") == 1
    code, _, err = _cli(capsys, "diff", old, str(tmp_path / "nope.jsonl"))
    assert code == 2 and "nope.jsonl" in err and err.count("\n") == 1


def test_cli_unsealed_file_compares_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unsealed (crashed) file is compared as far as it goes, after a printed warning."""
    old, new = _files(tmp_path, _run(), _run())
    lines = Path(new).read_bytes().splitlines(keepends=True)
    Path(new).write_bytes(b"".join(lines[:5]))  # header and 4 steps, no seal
    code, out, err = _cli(capsys, "diff", old, new)
    assert code == 1 and err.startswith("mattrace: warning: ") and new in err
    assert "step 4 (tool send_email by writer) is only in the old trace" in " ".join(out.split())
    assert "(the new trace ends: 4 steps)" in out


def test_render_diff_of_run_metadata_has_no_step_table() -> None:
    """A config-only difference renders the reason and both values, and no step rows or show commands."""
    console = Console(width=100, record=True, color_system=None)
    a, b = _run(seed=3), _run(seed=4)
    console.print(render_diff(a, b, first_divergence(a, b), old_path="a.jsonl", new_path="b.jsonl"))
    text = console.export_text()
    assert "config.seed differs: 3 → 4" in text and "both" not in text and "mattrace show" not in text
    assert re.search(r"old +3\n", text) and re.search(r"new +4\n", text)


@pytest.mark.slow
def test_cli_diff_does_not_import_heavy_dependencies(tmp_path: Path) -> None:
    """`mattrace diff` runs without importing litellm, duckdb, OTel or hypothesis."""
    old, new = _files(tmp_path, _run("a@x.example"), _run("b@y.example"))
    code = f"""
import contextlib, io, json, sys
from mattrace.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    codes = [main(["diff", {old!r}, {new!r}, "--all"]), main(["diff", {old!r}, {old!r}, "--json"])]
print(json.dumps({{"codes": codes, "heavy": sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"codes": [1, 0], "heavy": []}
