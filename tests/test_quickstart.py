"""docs/quickstart.md runs as written: every snippet, in order, offline.

``python`` blocks run in one namespace (a block starting ``# file: NAME`` is written to
that file instead); in ``console`` blocks each ``$ `` line runs — ``mattrace`` through the
CLI's ``main``, ``pytest`` in a subprocess — and must exit 0, or the code a trailing
``# exit N`` names. ``pip install`` lines set up the environment this test already runs in.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mattrace.cli import main

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "quickstart.md"
BLOCK = re.compile(r"```(python|console)\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(GUIDE.read_text(encoding="utf-8"))


def _command(line: str, cwd: Path) -> int:
    command, _, code = line.partition("# exit")
    argv = [a for arg in shlex.split(command) for a in (sorted(glob.glob(arg, root_dir=cwd)) or [arg])]
    if argv[0] == "mattrace":
        return main(argv[1:])
    if argv[0] == "pytest":
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("MATTRACE_MODEL", None)
        done = subprocess.run([sys.executable, "-m", "pytest", *argv[1:], "-p", "no:cacheprovider", "-q"],
                              cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == (int(code) if code else 0), done.stdout[-3000:]
        return done.returncode
    raise AssertionError(f"the quickstart runs a command this test does not know: {line!r}")


def test_the_guide_has_every_step() -> None:
    kinds = [kind for kind, _ in _blocks()]
    assert kinds.count("python") >= 5 and kinds.count("console") >= 4


@pytest.mark.slow
def test_the_quickstart_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.delenv("MATTRACE_MODEL", raising=False)
    namespace: dict[str, object] = {"__name__": "quickstart"}
    ran = 0
    for kind, body in _blocks():
        if kind == "python":
            first, _, rest = body.partition("\n")
            if first.startswith("# file: "):
                (tmp_path / first.removeprefix("# file: ").strip()).write_text(rest, encoding="utf-8")
            else:
                exec(compile(body, str(GUIDE), "exec"), namespace)   # the guide's own code
            ran += 1
            continue
        for line in body.splitlines():
            if not line.startswith("$ ") or line[2:].startswith("pip "):
                continue
            expected = int(line.partition("# exit")[2] or 0)
            assert _command(line[2:], tmp_path) == expected, line
            ran += 1
    out = capsys.readouterr().out
    assert ran >= 8 and "Timeout" in out and "Poisoned" in out and "counterexample" in out
    assert (tmp_path / "report.html").exists() and (tmp_path / "compare.html").exists()
