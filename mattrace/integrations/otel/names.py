"""The span attribute names mattrace reads and writes, kept here rather than imported.

The OpenTelemetry GenAI conventions are still marked *development* and have renamed
attributes before (``gen_ai.system`` → ``gen_ai.provider.name``, the cache-token
counters, the per-message events → ``gen_ai.input.messages``); OpenInference has its own
flattened names. Owning the constants means a rename upstream is one edit here, and an
older instrumentation keeps working because both spellings are read.
"""

from __future__ import annotations

__all__ = [
    "AGENT_ID",
    "AGENT_NAME",
    "AGENT_OPERATIONS",
    "CACHE_CREATION_TOKENS",
    "CACHE_READ_TOKENS",
    "CHOICE_EVENT",
    "CONVERSATION_ID",
    "DATA_SOURCE_ID",
    "EMBEDDING_OPERATIONS",
    "FINAL_RESULT",
    "FINISH_REASONS",
    "FIRST_VIOLATION",
    "INPUT_MESSAGES",
    "INPUT_TOKENS",
    "LANGGRAPH_NODE",
    "LLM_OPERATIONS",
    "MESSAGE_EVENTS",
    "OI_AGENT_NAME",
    "OI_CACHE_READ_TOKENS",
    "OI_COMPLETION_TOKENS",
    "OI_DOCUMENTS",
    "OI_INPUT_MESSAGES",
    "OI_INPUT_VALUE",
    "OI_METADATA",
    "OI_MODEL",
    "OI_NODE_NAME",
    "OI_OUTPUT_MESSAGES",
    "OI_OUTPUT_VALUE",
    "OI_PROMPT_TOKENS",
    "OI_PROVIDER",
    "OI_SYSTEM",
    "OI_TOOL_CALL_ID",
    "OI_TOOL_NAME",
    "OI_TOOL_PARAMETERS",
    "OI_TOTAL_TOKENS",
    "OPERATION",
    "OUTPUT_MESSAGES",
    "OUTPUT_TOKENS",
    "PROVIDER",
    "PYDANTIC_AI_MESSAGES",
    "PYDANTIC_AI_NEW_MESSAGES",
    "REQUEST_MODEL",
    "RESPONSE_ID",
    "RESPONSE_MODEL",
    "RETRIEVAL_DOCUMENTS",
    "RETRIEVAL_OPERATIONS",
    "RETRIEVAL_QUERY",
    "SPAN_KIND",
    "STEP",
    "SYSTEM",
    "SYSTEM_INSTRUCTIONS",
    "TOOL_CALL_ARGUMENTS",
    "TOOL_CALL_ID",
    "TOOL_CALL_RESULT",
    "TOOL_NAME",
    "TOOL_OPERATIONS",
    "TRACE",
    "TRUSTED",
    "VERDICTS",
    "WARNING",
    "WORKFLOW_OPERATIONS",
]

# -- OpenTelemetry GenAI semantic conventions ---------------------------------------------------------

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"                      # the older name of the provider
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ_TOKENS = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
CACHE_CREATION_TOKENS = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens")
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
DATA_SOURCE_ID = "gen_ai.data_source.id"
RETRIEVAL_QUERY = "gen_ai.retrieval.query.text"
RETRIEVAL_DOCUMENTS = "gen_ai.retrieval.documents"
FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_ID = "gen_ai.response.id"
CONVERSATION_ID = "gen_ai.conversation.id"
# the per-message span events of the conventions up to v1.36
MESSAGE_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                  "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}
CHOICE_EVENT = "gen_ai.choice"

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
EMBEDDING_OPERATIONS = frozenset({"embeddings"})
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
TOOL_OPERATIONS = frozenset({"execute_tool"})
RETRIEVAL_OPERATIONS = frozenset({"retrieval", "retrieve", "search"})
WORKFLOW_OPERATIONS = frozenset({"invoke_workflow"})

# -- OpenInference -------------------------------------------------------------------------------------------

SPAN_KIND = "openinference.span.kind"
OI_MODEL = "llm.model_name"
OI_PROVIDER = "llm.provider"
OI_SYSTEM = "llm.system"
OI_INPUT_MESSAGES = "llm.input_messages"       # flattened: llm.input_messages.0.message.role ...
OI_OUTPUT_MESSAGES = "llm.output_messages"
OI_PROMPT_TOKENS = "llm.token_count.prompt"
OI_COMPLETION_TOKENS = "llm.token_count.completion"
OI_TOTAL_TOKENS = "llm.token_count.total"
OI_CACHE_READ_TOKENS = "llm.token_count.prompt_details.cache_read"
OI_TOOL_NAME = "tool.name"
OI_TOOL_PARAMETERS = "tool.parameters"
OI_TOOL_CALL_ID = "tool_call.id"
OI_DOCUMENTS = "retrieval.documents"           # flattened: retrieval.documents.0.document.content ...
OI_INPUT_VALUE = "input.value"
OI_OUTPUT_VALUE = "output.value"
OI_AGENT_NAME = "agent.name"
OI_NODE_NAME = "graph.node.name"

# -- frameworks' own, where the conventions have no place yet ---------------------------------------------------

PYDANTIC_AI_MESSAGES = "pydantic_ai.all_messages"      # an agent run's whole conversation (role + parts)
PYDANTIC_AI_NEW_MESSAGES = "pydantic_ai.new_message_index"
FINAL_RESULT = "final_result"                         # pydantic-ai: what the agent run returned
OI_METADATA = "metadata"                              # OpenInference/LangChain: run metadata as JSON
LANGGRAPH_NODE = "langgraph_node"                     # ... in which LangGraph names the graph node

# -- mattrace's own, written by the exporter so a MAT survives a trip through OTLP exactly -----------------------

STEP = "mattrace.step"                 # the step as JSON
TRACE = "mattrace.trace"               # name, config, labels, outcome as JSON (on the root span)
VERDICTS = "mattrace.verdicts"
FIRST_VIOLATION = "mattrace.first_violation"
WARNING = "mattrace_warning"           # an attrs key on steps read from a span that was not all readable
TRUSTED = "mattrace.trusted"           # a label on a tool or retrieval span (bool): wins over configured trust
