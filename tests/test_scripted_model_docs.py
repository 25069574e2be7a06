"""docs/scripted-model.md: every Python block runs, in order, as the page promises."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "scripted-model.md"


def test_the_scripted_model_page_runs() -> None:
    """The page's examples (a registered script answering before any record block, templates,
    after_tool by call id, seeded choices, responders) run and their assertions hold."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) >= 4
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
