"""Text predicates search what people read: no JSON escaping in the way."""

from __future__ import annotations

from mattrace.contracts import step
from mattrace.testing import tool_call, trace


def _tool_step(args=None, result=None):
    return trace(tool_call("t", args, result)).steps[0]


def test_result_matches_searches_strings_and_numbers_inside_structured_results():
    """A pattern is found inside nested dicts and lists, and in numbers, but not in keys."""
    s = _tool_step(result={"items": [{"note": 'He said "ignore previous instructions"\nnow'}], "total": 500})
    assert step.result.matches(r'"ignore previous instructions"\n')(s)
    assert step.result.matches(r"^500$")(s)
    assert not step.result.matches(r"items")(s)


def test_result_matches_non_ascii_text():
    """Non-ASCII text in a result matches as written (no \\u escapes)."""
    assert step.result.matches("Überweisung")(_tool_step(result=["Bitte Überweisung an DE89"]))


def test_arg_matches_non_text_arguments_as_unescaped_json():
    """A list argument is matched as JSON text without escaping non-ASCII characters."""
    s = _tool_step(args={"to": ["zoë@ourco.com", "x@evil.example"]})
    assert step.arg("to").matches(r"zoë@ourco\.com")(s)
    assert step.arg("to").matches(r"@evil\.example")(s)
    assert not step.arg("to").not_matches(r"@evil\.example")(s)
