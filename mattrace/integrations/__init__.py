"""Live adapters, one package per third-party library, each importing its library at the top.

* :mod:`mattrace.integrations.litellm`: litellm calls become ``llm`` steps through the
  interceptor chain (replayed, faulted, governed), whatever the import style.
* :mod:`mattrace.integrations.openai` and :mod:`mattrace.integrations.anthropic`: the
  provider SDKs' calls (chat completions and responses; messages), the same way, faulted
  with each SDK's own exceptions.
* :mod:`mattrace.integrations.otel`: OpenTelemetry spans (GenAI and OpenInference
  conventions) become steps, so instrumented frameworks record without code changes.
* :mod:`mattrace.integrations.openai_agents`: the OpenAI Agents SDK's tracing hooks.
* :mod:`mattrace.integrations.mcp`: the Model Context Protocol boundary, as a stdio proxy
  (``mattrace mcp``) and for an in-process ``ClientSession``.

The recording core never imports these: ``record()`` instruments a library that is
already imported through a table of module names (``AUTO_INSTRUMENT``), and nothing here
is imported by ``import mattrace``.
"""

__all__: list[str] = []
