"""Fault injection at service, retrieval, memory and LLM boundaries.

``mattrace.record(..., faults=[Timeout("tool:search", on_call=2), Poisoned("retrieval:*")])``
injects faults into a run without changing the code under test; each hit is a ``fault``
step, and the step it affects reads it (so taint and containment follow the faulty data).
See docs/faults.md.
"""

from mattrace.faults._containment import Containment, ContainmentClass, containment
from mattrace.faults._errors import (
    InjectedConnectionError,
    InjectedRateLimit,
    InjectedServiceError,
    InjectedTimeout,
)
from mattrace.faults._injector import FaultInjector, FaultPlan, join_run
from mattrace.faults._matrix import FaultCase, FaultMatrix, matrix
from mattrace.faults._plan_file import load_faults
from mattrace.faults._specs import (
    FAULT_CLASSES,
    ConnectionFailed,
    ContentFiltered,
    Duplicate,
    Empty,
    Fault,
    Irrelevant,
    Latency,
    Malformed,
    MemoryCorrupt,
    MemoryLoss,
    Plausible,
    Poisoned,
    RateLimited,
    ServiceError,
    Stale,
    Timeout,
)
from mattrace.faults._target import Target, parse_target

__all__ = [
    "ConnectionFailed",
    "containment",
    "Containment",
    "ContainmentClass",
    "ContentFiltered",
    "Duplicate",
    "Empty",
    "Fault",
    "FAULT_CLASSES",
    "FaultCase",
    "FaultInjector",
    "FaultMatrix",
    "FaultPlan",
    "InjectedConnectionError",
    "InjectedRateLimit",
    "InjectedServiceError",
    "InjectedTimeout",
    "Irrelevant",
    "join_run",
    "Latency",
    "load_faults",
    "Malformed",
    "matrix",
    "MemoryCorrupt",
    "MemoryLoss",
    "parse_target",
    "Plausible",
    "Poisoned",
    "RateLimited",
    "ServiceError",
    "Stale",
    "Target",
    "Timeout",
]
