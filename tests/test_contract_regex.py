"""Patterns given as text run in linear time: a crafted page cannot hang a check or a guard."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

import mattrace
from mattrace.contracts import confirmed_before, load_contracts, never, step
from mattrace.contracts._regex import compile_linear
from mattrace.errors import ContractError
from mattrace.testing import message, tool_call, trace, user

EVIL = "(a+)+$"
PAGE = "a" * 40_000 + "!"


def _within(seconds: float, fn: object) -> bool:
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(fn()), daemon=True)   # type: ignore[operator]
    worker.start()
    worker.join(timeout=seconds)
    return bool(done)


def test_a_catastrophic_pattern_over_attacker_text_finishes_at_once() -> None:
    """``(a+)+$`` over 40,000 a's and a '!' takes exponential time in a backtracking engine (``re`` never
    finishes); the contract's own engine answers in milliseconds, from Python and from a contract file."""
    t = trace(user("summarise"), tool_call("fetch", {"url": "x"}, PAGE, trusted=False),
              tool_call("send_email", {"to": "a@b.example", "body": PAGE}, side_effect=True))
    contract = never(step.tool("send_email") & step.arg("body").matches(EVIL))
    started = time.perf_counter()
    assert _within(10, lambda: mattrace.check(t, [contract]).ok)
    assert time.perf_counter() - started < 5


def test_a_contract_file_pattern_is_linear_too(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[[contract]]\nuse = "never"\nstep = {{ result = "{EVIL}" }}\n')
    [contract] = load_contracts(path)
    t = trace(user("x"), tool_call("fetch", {"url": "x"}, PAGE, trusted=False))
    assert _within(10, lambda: mattrace.check(t, [contract]).ok)


@pytest.mark.parametrize(("pattern", "hint"), [
    (r"(?<=Bearer )\w+", "RE2 has no lookbehind"),
    (r"secret(?!s)", "RE2 has no negative lookahead: use not_matches"),
    (r"(\w)\1", "RE2 has no backreferences"),
    (r"done\Z", r"RE2 writes the end of the text as \z"),
])
def test_what_re2_cannot_do_is_a_contract_error_saying_how_to_write_it(pattern: str, hint: str) -> None:
    with pytest.raises(ContractError, match=re.escape(hint)):
        step.arg("body").matches(pattern)


def test_case_folding_surrogates_and_compiled_patterns() -> None:
    """ignore_case folds; a lone surrogate in recorded text is searched, not an encoding crash; an ``re.Pattern``
    the caller compiled is used as given."""
    assert compile_linear("YES", ignore_case=True).search("oh yes")
    assert compile_linear("x").search("bad \udcff x") is not None
    t = trace(user("ok"), message("user", "yes please", to="desk"), tool_call("pay", {"n": 1}, side_effect=True))
    assert mattrace.check(t, [confirmed_before("pay")]).ok
    compiled = re.compile(r"(?<=pay)ment")
    assert step.arg("x").matches(compiled) is not None
