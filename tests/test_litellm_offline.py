"""litellm never reaches the network for its price map in a test run, whatever the import order."""

from __future__ import annotations

import os
import socket

import pytest

pytest_plugins = ["pytester"]

LITELLM_FIRST = """
import threading

import litellm
import mattrace


def test_litellm_imported_before_mattrace_used_its_local_price_map():
    assert litellm.model_cost, "the bundled price map is loaded"
    retrying = [t.name for t in threading.enumerate() if "cost-map" in t.name]
    assert retrying == [], f"litellm is still fetching its price map: {retrying}"
    with mattrace.record("offline", cassette=False) as rec:
        litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], mock_response="ok")
    assert rec.trace.steps[0].attrs["cost_usd"] > 0, "priced from the local map"
"""


def _closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_a_test_module_importing_litellm_before_mattrace_does_not_fetch_the_price_map(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """`import litellm; import mattrace` in a test module: no network attempt, no warning, no retry thread."""
    monkeypatch.delenv("LITELLM_LOCAL_MODEL_COST_MAP", raising=False)
    proxy = f"http://127.0.0.1:{_closed_port()}"   # any fetch fails fast, and says so in a warning
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert "LITELLM_LOCAL_MODEL_COST_MAP" not in os.environ
    pytester.makepyfile(test_litellm_first=LITELLM_FIRST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "ignore::UserWarning", timeout=240)
    output = result.stdout.str() + result.stderr.str()
    assert "cost map" not in output.lower(), output[-3000:]
    result.assert_outcomes(passed=1)
