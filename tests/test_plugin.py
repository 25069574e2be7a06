"""The pytest plugin loads through its entry point and registers the mattrace marker."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_plugin_registers_the_mattrace_marker(pytester: pytest.Pytester) -> None:
    """A suite using @pytest.mark.mattrace passes under --strict-markers, so the marker is known."""
    pytester.makepyfile(test_marked="""
        import pytest

        @pytest.mark.mattrace(trials=1)
        def test_marked():
            assert True
    """)
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_plugin_is_listed_by_pytest(pytester: pytest.Pytester) -> None:
    """`pytest --markers` lists the mattrace marker, which only the plugin defines."""
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.mattrace(*"])
