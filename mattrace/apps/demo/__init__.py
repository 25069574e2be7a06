"""``mattrace demo``: the support desk (:mod:`mattrace.apps.demo.support_desk`) recorded,
checked, faulted, governed, searched and reported, from any directory.

The trace entry points (:func:`demo_ticket`, :func:`poisoned_ticket`,
:func:`governed_ticket`) are registered with ``@mattrace.replayable``, so every demo trace
replays with ``mattrace replay TRACE --allow-module mattrace.apps.demo`` (a trace is data:
replay imports the demo to find them only when told to).
"""

from mattrace.apps.demo._run import demo_ticket, governed_ticket, poisoned_ticket, run_demo, untrusted_actions

__all__ = [
    "demo_ticket",
    "governed_ticket",
    "poisoned_ticket",
    "run_demo",
    "untrusted_actions",
]
