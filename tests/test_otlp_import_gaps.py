"""`mattrace import otlp` says which spans it had to guess at, and exits 1 for them (0 when all map)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mattrace
from mattrace.cli import main
from mattrace.errors import ImportGapWarning
from mattrace.io import describe_gaps, import_otlp, otlp_gaps

TRACE_ID = "5b8efff798038103d269b633813fc60c"


def _attrs(**values: Any) -> list[dict[str, Any]]:
    return [{"key": k.replace("__", "."), "value": {"stringValue": v}} for k, v in values.items()]


def _span(n: int, name: str, start: int, parent: int | None = 1, **attrs: Any) -> dict[str, Any]:
    span: dict[str, Any] = {"traceId": TRACE_ID, "spanId": f"{n:016x}", "name": name,
                            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 1),
                            "attributes": _attrs(**attrs)}
    if parent is not None:
        span["parentSpanId"] = f"{parent:016x}"
    return span


def _dump(path: Path, spans: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}))
    return path


def _guessing_spans() -> list[dict[str, Any]]:
    return [
        _span(1, "invoke_agent helper", 1, parent=None, gen_ai__operation__name="invoke_agent",
              gen_ai__agent__name="helper"),
        _span(2, "HTTP GET", 2, http__method="GET"),                                     # no known kind
        _span(3, "execute_tool lookup", 4, gen_ai__operation__name="execute_tool"),    # tool named after the span
        _span(4, "chat m", 6, gen_ai__operation__name="chat", gen_ai__request__model="m"),
    ]


def test_import_otlp_names_spans_of_no_known_kind_and_spans_read_with_a_guess(tmp_path: Path) -> None:
    """A span of no known kind and a tool span without a tool name are steps all the same, listed by step."""
    dump = _dump(tmp_path / "spans.json", _guessing_spans())
    with pytest.warns(ImportGapWarning, match="spans.json"):
        (trace,) = import_otlp(dump)
    assert [(s.kind.value, s.target) for s in trace.steps[:4]] == [
        ("delegate", "helper"), ("message", "HTTP GET"), ("tool", "lookup"), ("llm", "m")]
    gaps = otlp_gaps(trace)
    assert [(g.kind, g.positions) for g in gaps] == [("unknown_span", (1,)), ("span_warning", (2,))]
    assert describe_gaps(gaps) == ("1 span of no known kind imported as a message step (step 1); "
                                   "1 span read with a guess, said in the step's mattrace_warning (step 2)")


def test_cli_import_otlp_exits_1_with_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = _dump(tmp_path / "spans.json", _guessing_spans())
    assert main(["import", "otlp", str(dump), "--out", str(tmp_path / "out")]) == 1
    out, err = capsys.readouterr()
    trace = mattrace.load(out.split()[0])
    assert len(trace.steps) == 5
    assert err.splitlines() == [
        f"mattrace: warning: {dump}: 1 span of no known kind imported as a message step (step 1); "
        "1 span read with a guess, said in the step's mattrace_warning (step 2)",
        "mattrace: 1 of 1 run imported with guesses (see above); exit status 1"]


def test_cli_import_otlp_of_known_spans_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spans = [_guessing_spans()[0], _span(3, "execute_tool lookup", 4, gen_ai__operation__name="execute_tool",
                                         gen_ai__tool__name="lookup")]
    dump = _dump(tmp_path / "spans.json", spans)
    assert main(["import", "otlp", str(dump), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == ""
