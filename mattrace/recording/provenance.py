"""Deprecated alias of :mod:`mattrace.provenance`, where the context flow (the ``reads`` a
step's input text shows) moved: it is inferred at analysis time now, not while recording."""

from mattrace._moved import alias

__alias__ = True
alias(__name__, "mattrace.provenance")
