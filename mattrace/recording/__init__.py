"""How steps get into a trace: the recorder, boundary wrappers, messages, agents, the
interceptor chain, redaction.

This is the core: it imports only the standard library, pydantic and mattrace's lowest
layers. Adapters for third-party libraries live in :mod:`mattrace.integrations` (the
recorder knows them by name only, see ``AUTO_INSTRUMENT``); offline converters in
:mod:`mattrace.io`; the scripted model in :mod:`mattrace.testing`.
"""

from mattrace._moved import moved_names as _moved_names
from mattrace.recording.blocks import record, unrecorded
from mattrace.recording.boundaries import Doc, Memory, retriever, tool
from mattrace.recording.context import active_recorder, agent, current_agent, tool_call_id
from mattrace.recording.events import delegate, message
from mattrace.recording.extensions import recorder_extension
from mattrace.recording.interceptors import Answer, Call, CallOutcome, Interceptor
from mattrace.recording.options import RecordMode, RecordOptions
from mattrace.recording.recorder import Recorder
from mattrace.recording.redact import Redactor
from mattrace.recording.replayable import replayable

__all__ = [
    "active_recorder",
    "agent",
    "Answer",
    "Call",
    "CallOutcome",
    "current_agent",
    "delegate",
    "Doc",
    "Interceptor",
    "Memory",
    "message",
    "record",
    "Recorder",
    "recorder_extension",
    "RecordMode",
    "RecordOptions",
    "Redactor",
    "replayable",
    "retriever",
    "tool",
    "tool_call_id",
    "unrecorded",
]


# import_openai lived here before the offline converters moved to mattrace.io
__getattr__ = _moved_names(__name__, {"import_openai": "mattrace.io"})
