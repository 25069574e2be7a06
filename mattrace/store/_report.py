"""What an ingest did: counts, the files it skipped (``path:line: reason``), and warnings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["IngestReport"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class IngestReport:
    """The outcome of :meth:`mattrace.store.Store.ingest`.

    ``errors`` holds one ``path:line: reason`` per file that was skipped (nothing of it
    was stored); ``warnings`` the files stored with a caveat (an unsealed trace: its
    complete steps were stored and the trace is marked unsealed). ``added_files`` are the
    trace files whose traces were added or replaced, so a caller can check them.
    """

    files_seen: int = 0
    trace_files: int = 0
    results_files: int = 0
    traces_added: int = 0
    traces_replaced: int = 0
    traces_unchanged: int = 0
    steps_added: int = 0
    verdicts_added: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    run_id: str | None = None
    added_files: list[str] = field(default_factory=list)

    @property
    def files_skipped(self) -> int:
        """Files (or named paths) that could not be ingested at all."""
        return len(self.errors)

    @property
    def ok(self) -> bool:
        """True when no file was skipped."""
        return not self.errors

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able form for ``mattrace ingest --json``."""
        return asdict(self) | {"files_skipped": self.files_skipped}

    def summary(self) -> str:
        """One line of counts."""
        added = self.traces_added + self.traces_replaced
        parts = [f"{_plural(self.files_seen, 'file')} seen",
                 f"{_plural(added, 'trace')} added ({_plural(self.steps_added, 'step')})"]
        if self.traces_replaced:
            parts[-1] += f", {self.traces_replaced} of them replacing an earlier version"
        parts.append(f"{self.traces_unchanged} unchanged")
        if self.results_files or self.verdicts_added:
            parts.append(f"{_plural(self.verdicts_added, 'verdict')} from "
                         f"{_plural(self.results_files, 'results file')}")
        parts.append(f"{_plural(self.files_skipped, 'file')} skipped")
        return "ingest: " + ", ".join(parts) + f" in {self.seconds:.2f} s"

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"skipped {e}" for e in self.errors]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)
