"""mattrace: Message-Action Traces for multi-agent LLM systems.

Record every run as a trace of messages and boundary actions, check contracts over it,
replay it, stress it, govern it and measure it. This module re-exports the public API;
litellm is only imported by the LLM integration, on first use.
"""

import os as _os

# litellm fetches its model price map over the network at import unless told otherwise;
# a recorded test run must never reach the network, so say so before anyone imports it.
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from mattrace.contracts import Report, Violation, check
from mattrace.errors import (
    BudgetExhausted,
    ContractError,
    EscapedCall,
    EscapedCallWarning,
    FaultSpecError,
    GovernanceError,
    ImportGapWarning,
    LocatedError,
    MatTraceError,
    MatTraceWarning,
    RecordedError,
    RecordingError,
    ReplayMismatch,
    ReplayRefused,
    StoreError,
    TornTailWarning,
    TraceFormatError,
    TraceWriteWarning,
)
from mattrace.recording import (
    Doc,
    Memory,
    Recorder,
    Redactor,
    active_recorder,
    agent,
    delegate,
    message,
    record,
    replayable,
    retriever,
    tool,
    tool_call_id,
)
from mattrace.replay import now, random
from mattrace.trace import Outcome, Source, Step, StepError, StepKind, Trace, canonical_json
from mattrace.tracefile import load, verify

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "active_recorder",
    "agent",
    "BudgetExhausted",
    "canonical_json",
    "check",
    "ContractError",
    "delegate",
    "Doc",
    "EscapedCall",
    "EscapedCallWarning",
    "FaultSpecError",
    "GovernanceError",
    "ImportGapWarning",
    "load",
    "LocatedError",
    "MatTraceError",
    "MatTraceWarning",
    "Memory",
    "message",
    "now",
    "Outcome",
    "random",
    "record",
    "RecordedError",
    "Recorder",
    "RecordingError",
    "Redactor",
    "replayable",
    "ReplayMismatch",
    "ReplayRefused",
    "Report",
    "retriever",
    "Source",
    "Step",
    "StepError",
    "StepKind",
    "StoreError",
    "tool",
    "tool_call_id",
    "TornTailWarning",
    "Trace",
    "TraceFormatError",
    "TraceWriteWarning",
    "verify",
    "Violation",
]
