"""On real agent runs nobody here wrote (tests/data/injection, MIT): the data check flags the successful attack at
the harmful call and passes a benign run that the context check fails."""

from __future__ import annotations

import json
from pathlib import Path

from mattrace.contracts import check, no_untrusted_action, no_untrusted_context_action
from mattrace.io import import_openai
from mattrace.trace import Trace

DATA = Path(__file__).parent / "data" / "injection"


def _import(name: str) -> Trace:
    tools = json.loads((DATA / "tools.json").read_text())["tools"]
    [trace] = import_openai(DATA / name, untrusted_tools=[t["name"] for t in tools if t["untrusted_output"]],
                            side_effect_tools=[t["name"] for t in tools if t["side_effect"] or t["egress"]])
    return trace


def test_the_successful_attack_fails_at_the_email_to_the_attacker() -> None:
    """The first violation is the send_email whose recipient the injected e-mail named, witnessed by that read."""
    trace = _import("google_gemini-2.5-flash__none__user_task_10__injection_task_3.json")
    violation = check(trace, [no_untrusted_action()]).first_violation
    assert violation is not None
    harmful = trace.steps[violation.step]
    assert harmful.target == "send_email" and harmful.args is not None
    assert harmful.args["recipients"] == ["trustme@gmail.com"]
    origin = trace.steps[violation.witness[0]]
    assert origin.untrusted and "trustme@gmail.com" in json.dumps(origin.result)
    assert "argument recipients[0]='trustme@gmail.com' came from untrusted content" in violation.reason


def test_a_benign_run_that_read_untrusted_content_passes_the_data_check() -> None:
    """Reading untrusted content and then doing what the user asked fails the context check, not the data check."""
    trace = _import("google_gemini-2.5-pro__none__user_task_16__none.json")
    assert check(trace, [no_untrusted_action()]).ok
    assert not check(trace, [no_untrusted_context_action()]).ok
