"""Matching calls with recorded ones: what a mismatch says, and matching that ignores volatile input."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import mattrace
from mattrace.errors import RecordingError, ReplayMismatch, UnrecordedCall
from mattrace.replay import Matcher, RecordMode


@mattrace.tool
def plan(prompt: str, meta: dict[str, Any] | None = None) -> str:
    return f"planned {len(prompt)}"


def _record(tmp_path: Path, mode: str, *calls: tuple[str, dict[str, Any] | None],
            match: Matcher | None = None) -> list[str]:
    with mattrace.record("trip", dir=tmp_path / "t", cassette=tmp_path / "trip.cassette",
                         record_mode=RecordMode(mode), match=match):
        return [plan(prompt, meta) for prompt, meta in calls]


def test_a_mismatch_shows_the_values_around_where_they_differ(tmp_path: Path) -> None:
    """A long prompt that changed at its end shows both ends, not the same 120-character prefix twice."""
    head = "Plan a trip for the family, " * 20
    _record(tmp_path, "once", (head + "to Paris", None))
    with pytest.raises(UnrecordedCall) as caught:
        _record(tmp_path, "none", (head + "to Rome", None))
    error = caught.value
    assert (error.step, error.call) == (0, "tool plan by main")
    assert error.cassette == str(tmp_path / "trip.cassette")
    (field, recorded, now), = error.differences
    assert field == "prompt" and recorded.endswith("to Paris'") and now.endswith("to Rome'")
    assert recorded.startswith("…") and len(recorded) <= 121
    assert "expected …" in str(error) and "to Rome'" in str(error)


def test_no_cassette_in_mode_none_is_an_unrecorded_call(tmp_path: Path) -> None:
    """Replaying without a cassette is the same kind of error as a call the cassette lacks: record first."""
    with pytest.raises(UnrecordedCall, match="no cassette to replay from") as caught:
        _record(tmp_path, "none", ("x", None))
    assert caught.value.call is None and isinstance(caught.value, ReplayMismatch)


def test_patterns_mask_volatile_text_in_every_argument(tmp_path: Path) -> None:
    """A date in the prompt: without a matcher the replay misses, with an ignore pattern it is served."""
    _record(tmp_path, "once", ("Today is 2024-01-01. Plan a trip.", None))
    with pytest.raises(UnrecordedCall):
        _record(tmp_path, "none", ("Today is 2025-03-09. Plan a trip.", None))
    dates = Matcher.of(ignore=["re:\\d{4}-\\d{2}-\\d{2}"])
    assert _record(tmp_path, "none", ("Today is 2025-03-09. Plan a trip.", None), match=dates) == ["planned 33"]
    compiled = Matcher.of(ignore=[re.compile(r"\d{4}-\d{2}-\d{2}")])
    assert _record(tmp_path, "none", ("Today is 1999-12-31. Plan a trip.", None), match=compiled) == ["planned 33"]
    with pytest.raises(UnrecordedCall, match=r"prompt: expected 'Today is <ignored>\. Plan a trip\.', got "
                                             r"'Today is <ignored>\. Plan a bike ride\.'"):
        _record(tmp_path, "none", ("Today is 2025-03-09. Plan a bike ride.", None), match=dates)


def test_ignored_paths_leave_fields_out_and_wildcards_match_any_key_or_element(tmp_path: Path) -> None:
    """``meta.request_id`` and ``meta.tags[*]`` are left out; a difference elsewhere still misses."""
    _record(tmp_path, "once", ("hi", {"request_id": "r-1", "tags": ["a", "b"], "user": "ana"}))
    loose = Matcher.of(ignore=["meta.request_id", "meta.tags[*]"])
    served = _record(tmp_path, "none", ("hi", {"request_id": "r-2", "tags": ["c", "d"], "user": "ana"}), match=loose)
    assert served == ["planned 2"]
    with pytest.raises(UnrecordedCall, match=r"meta\.user: expected 'ana', got 'bo'"):
        _record(tmp_path, "none", ("hi", {"request_id": "r-3", "tags": [], "user": "bo"}), match=loose)


def test_match_on_without_args_serves_answers_in_call_order(tmp_path: Path) -> None:
    """As vcrpy's match_on=['method', 'uri']: the n-th call to a target gets the n-th recorded answer."""
    assert _record(tmp_path, "once", ("a", None), ("bbb", None)) == ["planned 1", "planned 3"]
    by_order = Matcher.of(match_on=["kind", "target"])
    assert _record(tmp_path, "none", ("xyz", None), ("q", None), match=by_order) == ["planned 1", "planned 3"]
    with pytest.raises(UnrecordedCall, match="already served"):
        _record(tmp_path, "none", ("1", None), ("2", None), ("3", None), match=by_order)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"match_on": ["target", "args"]}, "must include 'kind'"),
    ({"match_on": ["kind", "body"]}, "unknown field 'body'"),
    ({"match_on": "kind"}, "take lists"),
    ({"ignore": ["re:("]}, "not a regex"),
    ({"ignore": ["a..b"]}, "is not a path"),
    ({"ignore": ["messages[x]"]}, "is not a path"),
    ({"ignore": [3]}, "argument paths"),
])
def test_a_matcher_refuses_what_it_cannot_mean(kwargs: dict[str, Any], message: str) -> None:
    """Every mistake in a matcher is a RecordingError saying what is wrong."""
    with pytest.raises(RecordingError, match=re.escape(message)):
        Matcher.of(**kwargs)


def test_record_refuses_a_match_that_is_not_a_matcher(tmp_path: Path) -> None:
    """``match=`` takes a Matcher; anything else is refused before the run starts."""
    with pytest.raises(RecordingError, match=r"takes a mattrace\.replay\.Matcher"):
        with mattrace.record("x", dir=tmp_path, match={"ignore": ["a"]}):  # type: ignore[call-overload]
            pass
