"""Budgeted counterexample search over bounded perturbations, shrunk to the minimal failure.

```python
from mattrace.search import P, Budget, find_counterexample

space = P.one_of(P.inject("retrieval:*"), P.reorder("retrieval:*"))
result = find_counterexample(run, space, CONTRACTS, budget=Budget(runs=50, tokens=2e5, usd=1.0), seed=0)
result.found, result.perturbation, result.violation, result.trace_path
result.replay()        # the counterexample again, from its cassette
```

A canary run first finds where text can be planted and which of those points reach a
model; hypothesis then generates, targets (on how close each run came to a violation)
and shrinks; the budget, read from the recorded LLM usage, stops it. See docs/search.md.

``run_search`` (the search for any executor, which gets a ``RunRequest`` per run),
``check_arguments``, ``database_for`` and ``search_key`` are exported for the pytest
plugin's search tests, which run the same search with the test body as the executor.
"""

from mattrace.search._budget import Budget, OutOfBudget, Spend
from mattrace.search._constructors import P
from mattrace.search._corpus import DEFAULT_GOAL, INJECTION_STYLES, injections
from mattrace.search._margin import margins
from mattrace.search._perturbations import (
    Combined,
    Distractor,
    Drop,
    Edit,
    FaultPerturbation,
    Inject,
    Noise,
    Paraphrase,
    Perturbation,
    Reorder,
    Typos,
)
from mattrace.search._runner import Attempt, RunRequest
from mattrace.search._search import (
    SearchResult,
    check_arguments,
    database_for,
    find_counterexample,
    run_search,
    search_key,
)
from mattrace.search._sites import CallSite, Point, Sites
from mattrace.search._space import Context, Space

__all__ = [
    "Attempt",
    "Budget",
    "CallSite",
    "check_arguments",
    "Combined",
    "Context",
    "database_for",
    "DEFAULT_GOAL",
    "Distractor",
    "Drop",
    "Edit",
    "FaultPerturbation",
    "find_counterexample",
    "Inject",
    "INJECTION_STYLES",
    "injections",
    "margins",
    "Noise",
    "OutOfBudget",
    "P",
    "Paraphrase",
    "Perturbation",
    "Point",
    "Reorder",
    "run_search",
    "RunRequest",
    "search_key",
    "SearchResult",
    "Sites",
    "Space",
    "Spend",
    "Typos",
]
