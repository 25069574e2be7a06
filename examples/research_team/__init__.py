"""A research team written against litellm, under three orchestration designs, with planted weaknesses.

One task (answer a question with cited sources, keep the findings in shared memory,
optionally e-mail the requester) run by the same agents and tools under a ``central``
planner, a ``roundrobin`` group chat and a ``hierarchical`` team of leads. ``weakness=``
switches on one failure class of multi-agent orchestration, each caught by a stock
contract. Offline it runs on the scripted model ``mattrace/research_team``; set
``MATTRACE_MODEL`` to any litellm model (and that provider's key) to run it live.

This module is a suite for ``mattrace compare examples/research_team``.
"""

from __future__ import annotations

from examples.research_team.app import DESIGNS, Result, oracle, run
from examples.research_team.contracts import CONTRACTS
from examples.research_team.data import TASKS
from examples.research_team.governance import governor

__all__ = ["CONTRACTS", "DESIGNS", "governor", "oracle", "Result", "run", "TASKS"]
