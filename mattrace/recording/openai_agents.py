"""Deprecated alias of :mod:`mattrace.integrations.openai_agents`, where this module moved."""

from mattrace._moved import alias

__alias__ = True
alias(__name__, "mattrace.integrations.openai_agents")
