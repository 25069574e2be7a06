"""Offline conversion between trace files and other formats.

* :func:`import_openai`: chat logs in OpenAI message format → traces
  (``mattrace import openai FILE``).
* :func:`import_otlp`: OTLP/JSON span files (collector file exporter) → traces.
* :func:`export_traces`: traces → OpenTelemetry spans for any OTLP collector
  (``mattrace export --otlp``).

Nothing here runs at recording time; the trace file stays the source of truth.
"""

from typing import TYPE_CHECKING, Any

from mattrace.io.openai_chat import CHAT_ROLES, import_openai, trace_from_messages, write_trace

if TYPE_CHECKING:
    from mattrace.io.otlp_export import export_traces, step_attributes
    from mattrace.io.otlp_json import import_otlp, read_otlp

# the OTLP converters need OpenTelemetry (~0.1 s to import); importing a chat log must not
_LAZY = {"export_traces": "otlp_export", "step_attributes": "otlp_export",
         "import_otlp": "otlp_json", "read_otlp": "otlp_json"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"mattrace.io.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "CHAT_ROLES",
    "export_traces",
    "import_openai",
    "import_otlp",
    "read_otlp",
    "step_attributes",
    "trace_from_messages",
    "write_trace",
]
