"""Offline conversion between trace files and other formats.

* :func:`import_openai`: chat logs in OpenAI message format → traces
  (``mattrace import openai FILE``).
* :func:`import_otlp`: OTLP/JSON span files (collector file exporter) → traces.
* :func:`export_traces`: traces → OpenTelemetry spans for any OTLP collector
  (``mattrace export --otlp``).
* :func:`chat_gaps`, :func:`otlp_gaps`: what an import could not map exactly (results
  matched by position, spans of no known kind ...), as :class:`ImportGap` records;
  :func:`describe_gaps` says it in one line, as ``mattrace import`` prints it.

Nothing here runs at recording time; the trace file stays the source of truth.
"""

from typing import TYPE_CHECKING, Any

from mattrace.io.gaps import ImportGap, describe_gaps
from mattrace.io.openai_chat import CHAT_ROLES, chat_gaps, import_openai, trace_from_messages, write_trace

if TYPE_CHECKING:
    from mattrace.io.otlp_export import export_traces, step_attributes
    from mattrace.io.otlp_json import import_otlp, otlp_gaps, read_otlp

# the OTLP converters need OpenTelemetry (~0.1 s to import); importing a chat log must not
_LAZY = {"export_traces": "otlp_export", "step_attributes": "otlp_export",
         "import_otlp": "otlp_json", "otlp_gaps": "otlp_json", "read_otlp": "otlp_json"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"mattrace.io.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "CHAT_ROLES",
    "chat_gaps",
    "describe_gaps",
    "export_traces",
    "ImportGap",
    "import_openai",
    "import_otlp",
    "otlp_gaps",
    "read_otlp",
    "step_attributes",
    "trace_from_messages",
    "write_trace",
]
