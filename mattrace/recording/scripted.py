"""Deprecated alias of :mod:`mattrace.testing.provider`, where this module moved."""

from mattrace._moved import alias

__alias__ = True
alias(__name__, "mattrace.testing.provider")
