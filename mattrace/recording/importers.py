"""Deprecated alias of :mod:`mattrace.io.openai_chat`, where this module moved."""

from mattrace._moved import alias

__alias__ = True
alias(__name__, "mattrace.io.openai_chat")
