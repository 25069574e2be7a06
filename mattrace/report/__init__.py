"""Views of traces for people: the rich terminal view (and, later, a static HTML report).

Importing this package imports rich but nothing heavier, so ``mattrace show`` starts fast.
"""

from mattrace.report._format import step_summary
from mattrace.report.terminal import KIND_STYLES, print_trace, render_trace

__all__ = ["KIND_STYLES", "print_trace", "render_trace", "step_summary"]
