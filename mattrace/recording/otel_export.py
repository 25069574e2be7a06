"""Deprecated alias of :mod:`mattrace.io.otlp_export`, where this module moved."""

from mattrace._moved import alias

__alias__ = True
alias(__name__, "mattrace.io.otlp_export")
