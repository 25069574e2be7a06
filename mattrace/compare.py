"""Deprecated alias of :mod:`mattrace.apps.compare`, where this module moved."""

from mattrace._moved import alias

__alias__ = True
alias(__name__, "mattrace.apps.compare")
