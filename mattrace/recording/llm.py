"""Deprecated alias of :mod:`mattrace.integrations.litellm`, where this module moved."""

from mattrace._moved import alias

__alias__ = True
alias(__name__, "mattrace.integrations.litellm")
