"""The plugin's options: declared and checked by the entry module (``_mattrace_pytest``);
the budget, which needs mattrace's search package to read, is parsed here.
"""

from __future__ import annotations

from typing import Any

import pytest

from _mattrace_pytest import Settings

__all__ = ["parse_budget", "Settings"]


def parse_budget(settings: Settings) -> Any:
    """The ``--mattrace-budget`` cap as a :class:`mattrace.search.Budget`, or None."""
    if not settings.budget:
        return None
    from mattrace.errors import SearchError
    from mattrace.search import Budget

    try:
        return Budget.parse(settings.budget)
    except SearchError as exc:
        raise pytest.UsageError(f"mattrace: --mattrace-budget: {exc}") from None
