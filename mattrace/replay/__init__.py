"""Deterministic replay: cassettes, modes, and comparing traces."""

__all__: list[str] = []
