"""How steps get into a trace: the recorder, boundary wrappers, messages, agents.

LLM integrations (``mattrace.recording.llm``) import litellm and are loaded lazily.
"""

from mattrace.recording.boundaries import Doc, Memory, retriever, tool
from mattrace.recording.context import active_recorder, agent, current_agent
from mattrace.recording.events import delegate, message
from mattrace.recording.importers import import_openai
from mattrace.recording.interceptors import Answer, Call, CallOutcome, Interceptor
from mattrace.recording.recorder import Recorder, record
from mattrace.recording.redact import Redactor

__all__ = [
    "active_recorder",
    "agent",
    "Answer",
    "Call",
    "CallOutcome",
    "current_agent",
    "delegate",
    "Doc",
    "import_openai",
    "Interceptor",
    "Memory",
    "message",
    "record",
    "Recorder",
    "Redactor",
    "retriever",
    "tool",
]
