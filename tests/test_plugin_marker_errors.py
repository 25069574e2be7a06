"""Marker mistakes are reported whole: every unknown keyword, positional arguments by type, a missing file by path."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_every_misspelt_marker_argument_gets_its_own_hint(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_typos="""
import pytest

pytest_plugins = ["pytester"]

@pytest.mark.mattrace(contract=[], trails=3)
def test_typos(mat):
    pass
""")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    assert "unknown arguments 'contract' (did you mean 'contracts'?), 'trails' (did you mean 'trials'?)" in text


def test_positional_marker_arguments_are_named_by_type_not_dumped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_positional="""
import pytest

pytest_plugins = ["pytester"]
from mattrace.contracts import never, step

RULE = never(step.tool("send") & step.arg("to").matches("evil")).named("no evil mail")

@pytest.mark.mattrace(RULE, 3)
def test_positional(mat):
    pass
""")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    assert "takes keyword arguments only; got 2 positional argument(s): Always, int" in text
    assert "contracts=[...]" in text
    assert "no evil mail" not in text and "Pred(" not in text


def test_a_missing_contract_file_names_the_path_it_resolved_and_against_what(pytester: pytest.Pytester) -> None:
    pytester.mkdir("suite")
    pytester.path.joinpath("suite", "test_missing.py").write_text("""
import pytest

pytest_plugins = ["pytester"]

@pytest.mark.mattrace(contracts="contract.toml")
def test_missing(mat):
    pass
""")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    text = result.stdout.str().replace("\n", "")
    near = pytester.path / "suite" / "contract.toml"
    cwd = pytester.path / "contract.toml"
    assert "contract.toml" in text and "not found" in text
    assert str(near) in text and str(cwd) in text
    assert "the test file's directory" in text and "the working directory" in text
