"""The package layout: moved modules keep their old import paths (with a warning), and the
demo ships inside the package so a plain (non-editable) install runs it from anywhere."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

MOVED = {
    "mattrace.recording.llm": "mattrace.integrations.litellm",
    "mattrace.recording.otel": "mattrace.integrations.otel",
    "mattrace.recording.openai_agents": "mattrace.integrations.openai_agents",
    "mattrace.recording.importers": "mattrace.io.openai_chat",
    "mattrace.recording.otlp_json": "mattrace.io.otlp_json",
    "mattrace.recording.otel_export": "mattrace.io.otlp_export",
    "mattrace.recording.provenance": "mattrace.provenance",
    "mattrace.recording.script": "mattrace.testing",
    "mattrace.recording.scripted": "mattrace.testing.provider",
    "mattrace.compare": "mattrace.apps.compare",
}
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_import_path_warns_and_is_the_new_module(old: str, new: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing a moved module by its old name warns with the new name and yields the new module itself."""
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_the_old_recording_import_openai_warns_and_still_imports() -> None:
    """``from mattrace.recording import import_openai`` (the old home) warns and gives the io function."""
    import mattrace.io
    import mattrace.recording

    with pytest.warns(DeprecationWarning, match="mattrace.io.import_openai"):
        fn = mattrace.recording.import_openai
    assert fn is mattrace.io.import_openai


def test_the_deprecation_warning_points_at_the_importing_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warning names the file that wrote the old import, not the import machinery."""
    monkeypatch.delitem(sys.modules, "mattrace.recording.otel", raising=False)
    with pytest.warns(DeprecationWarning) as caught:
        import mattrace.recording.otel  # noqa: F401
    assert caught[0].filename == __file__


@pytest.mark.slow
def test_the_demo_runs_from_a_non_editable_install_in_any_directory(tmp_path: Path) -> None:
    """A wheel built from the source, unpacked as a plain install, runs ``mattrace demo`` in an empty directory."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "mattrace", src / "mattrace", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                            "--no-index", "-q", "-w", str(wheels)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    site = tmp_path / "site"
    with zipfile.ZipFile(next(wheels.glob("mattrace-*.whl"))) as wheel:
        wheel.extractall(site)  # what pip install puts in site-packages for a pure-Python wheel
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MATTRACE_MODEL", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run([sys.executable, "-c", "import json, mattrace; print(json.dumps(mattrace.__file__))"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert Path(json.loads(where.stdout)).is_relative_to(site), where.stdout + where.stderr
    demo = subprocess.run([sys.executable, "-m", "mattrace", "demo", "--runs", "1", "--dir", "traces"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    contracts = "mattrace.apps.demo.support_desk.contracts:CONTRACTS"
    (folder,) = (work / "traces").glob("demo-*")
    assert f"mattrace check traces/{folder.name}/*.jsonl --contracts {contracts}" in demo.stdout
    assert sorted(p.name for p in folder.glob("*.jsonl"))
    assert (work / "report.html").is_file()


def test_names_that_left_the_recorder_module_still_import_with_a_warning() -> None:
    """``from mattrace.recording.recorder import record`` (its old home) warns and gives the function itself."""
    import mattrace.recording
    import mattrace.recording.recorder as recorder_module

    with pytest.warns(DeprecationWarning, match=r"recorder\.record moved to mattrace\.recording\.blocks\.record"):
        moved = recorder_module.record
    assert moved is mattrace.recording.record
