"""Where each value of a run came from, computed from the trace (a pure, incremental analysis).

A trace records facts: what each step read and wrote, and how far each source is trusted.
This package infers, for every input value of a step (each argument of a tool call, each
agent message), the earlier outputs it was copied from and a trust class (``user``,
``trusted``, ``untrusted``, ``mixed`` or ``generated``). Contracts (``no_untrusted_action``,
``flows(..., via="data")``), the governance guard and the report use it; it runs at
analysis time, so recording pays nothing for it and a better analysis applies to old
traces too. See docs/provenance.md for what it can and cannot see.

    from mattrace.provenance import origins_of
    for step_origins in origins_of(trace.steps):
        for value in step_origins.values:
            print(step_origins.index, value.path, value.trust, [o.step for o in value.origins])
"""

from mattrace.provenance._analysis import (
    Origin,
    Provenance,
    StepOrigins,
    TrustClass,
    ValueOrigin,
    origins_of,
    output_class,
)
from mattrace.provenance._text import FIELD_MAX, SPAN, Leaf, identifiers, leaves, name_parts, names, normalise

__all__ = [
    "FIELD_MAX",
    "identifiers",
    "Leaf",
    "leaves",
    "name_parts",
    "names",
    "normalise",
    "Origin",
    "origins_of",
    "output_class",
    "Provenance",
    "SPAN",
    "StepOrigins",
    "TrustClass",
    "ValueOrigin",
]
