"""mattrace's pytest plugin (loaded through the ``pytest11`` entry point).

For now it registers the ``mattrace`` marker so suites can tag tests; fixtures, contract
checking and the metrics summary build on this. It imports nothing heavy, so suites that
do not use mattrace collect as fast as before.
"""

from __future__ import annotations

import warnings

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mattrace(contracts=..., trials=k, config=...): check this test's traces")
    # litellm's logging threads build pydantic types that use typing.ReadOnly after a test
    # has ended, outside pytest's per-test warning capture; without this every session
    # that recorded an LLM call ends with two screens of pydantic warnings.
    warnings.filterwarnings("ignore", message=r"Items? .* using the `ReadOnly` qualifier",
                            category=UserWarning)
