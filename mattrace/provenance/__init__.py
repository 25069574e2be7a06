"""Where each value of a run came from, computed from the trace (a pure, incremental analysis).

A trace records facts: what each step read and wrote, and how far each source is trusted.
This package infers, for every input value of a step (each argument of a tool call, each
agent message), the earlier outputs it was copied from and a trust class (``user``,
``trusted``, ``untrusted``, ``mixed`` or ``generated``): the *data* flow. It also infers the
*context* flow: which earlier outputs each step's input held (a prompt holding a tool's
result), the ``reads`` edges no one recorded. Contracts (``no_untrusted_action``,
``flows(..., via="data" | "context")``), fault containment, the search's margin, the
governance guard and the report use them; they run at analysis time, so recording pays
nothing for them and a better analysis applies to old traces too. See docs/provenance.md
for what they can and cannot see.

    from mattrace.provenance import context_reads, origins_of
    for step_origins in origins_of(trace.steps):
        for value in step_origins.values:
            print(step_origins.index, value.path, value.trust, [o.step for o in value.origins])
    for read in context_reads(trace.steps):
        print(read.index, read.explicit, read.inferred)
"""

from mattrace.provenance._analysis import (
    ANALYSED_KINDS,
    Origin,
    Provenance,
    StepOrigins,
    TrustClass,
    ValueOrigin,
    origins_of,
    output_class,
)
from mattrace.provenance._context import (
    MAX_FRAGMENTS,
    MIN_FRAGMENT,
    ContextFlow,
    StepReads,
    context_reads,
    fragments,
    haystack,
    text_leaves,
)
from mattrace.provenance._text import FIELD_MAX, SPAN, Leaf, identifiers, leaves, name_parts, names, normalise

__all__ = [
    "ANALYSED_KINDS",
    "context_reads",
    "ContextFlow",
    "FIELD_MAX",
    "fragments",
    "haystack",
    "identifiers",
    "Leaf",
    "leaves",
    "MAX_FRAGMENTS",
    "MIN_FRAGMENT",
    "name_parts",
    "names",
    "normalise",
    "Origin",
    "origins_of",
    "output_class",
    "Provenance",
    "SPAN",
    "StepOrigins",
    "StepReads",
    "text_leaves",
    "TrustClass",
    "ValueOrigin",
]
