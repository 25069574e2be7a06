"""Applications built on the library: ``mattrace compare`` and ``mattrace demo``.

They use every layer below (recording, contracts, search, store, report), so nothing in
the library imports them.
"""

__all__: list[str] = []
