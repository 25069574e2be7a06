"""Replay treats traces and cassettes as data: it never runs, builds or imports code a file names."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import mattrace
from mattrace.errors import RecordedError, ReplayMismatch, ReplayRefused
from mattrace.replay import allow_modules, cassette_path, read_cassette, replay_trace
from mattrace.tracefile import CASSETTE, RecordWriter

HERE = __name__   # "tests.test_replay_trust": the module replay may be told to trust

# -- code a trace or cassette could name --------------------------------------------------------


@mattrace.tool
def fetch() -> Any:
    """The one boundary call of the flows below; its recorded answer is what a cassette forges."""
    return "fresh"


CAUGHT: list[BaseException] = []
GOT: list[Any] = []


def plain_flow() -> None:
    """An entry point nobody registered: it runs only when the user names it."""
    mattrace.message("main", "plain")


@mattrace.replayable
def registered_flow() -> None:
    """An entry point the user's code registered: it replays with no flag."""
    GOT.append(fetch())


@mattrace.replayable
def catching_flow() -> None:
    """Calls the tool and keeps what it raised, so a test can look at the replayed error."""
    try:
        GOT.append(fetch())
    except Exception as exc:
        CAUGHT.append(exc)


@dataclasses.dataclass
class Order:
    """A dataclass nobody allowed replay to build."""

    id: int
    note: str = ""


@mattrace.replayable
@dataclasses.dataclass
class AllowedOrder:
    """A dataclass the user's code registered for replay."""

    id: int


class Quote(BaseModel):
    """A pydantic model nobody allowed replay to build."""

    amount: int


class PaymentDeclined(Exception):
    """An exception class of the program: imported, so replay may rebuild it (without its code)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"declined {code}")
        self.code = code


class Trap(Exception):
    """An exception whose attribute setter is code: replay must not run it."""

    @property
    def note(self) -> str:
        return "fixed"

    @note.setter
    def note(self, value: str) -> None:
        Path(os.environ["MATTRACE_TEST_MARKER"]).touch()


# -- helpers --------------------------------------------------------------------------------------


def _hostile_trace(tmp_path: Path, target: str, args: list[Any]) -> Path:
    with mattrace.record("hostile", dir=tmp_path / "traces",
                         entrypoint={"target": target, "args": args, "kwargs": {}}) as rec:
        mattrace.message("main", "hello")
    return rec.path


def _forge(tape: Path, change: dict[str, Any], target: str = "fetch") -> None:
    """Rewrite the cassette with the first ``target`` entry changed: a forger can always make a
    well-chained file, since sha256 needs no key (only HMAC would stop it)."""
    found = read_cassette(tape)
    entries = [dict(e) for e in found.entries]
    entry = next(e for e in entries if e["target"] == target)
    entry.pop("result", None)
    entry.pop("error", None)
    entry.update(change)
    tape.unlink()
    writer = RecordWriter(tape, CASSETTE, found.header)
    for e in entries:
        writer.write_entry(e)
    writer.seal()


def _recorded_fetch(tmp_path: Path) -> Path:
    tape = tmp_path / "fetch.cassette"
    with mattrace.record("fetch", dir=tmp_path / "traces", cassette=tape):
        fetch()
    return tape


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file that hostile code would create; every test asserts it never appears."""
    path = tmp_path / "PWNED"
    monkeypatch.setenv("MATTRACE_TEST_MARKER", str(path))
    return path


@pytest.fixture(autouse=True)
def _clear() -> None:
    CAUGHT.clear()
    GOT.clear()


HOSTILE_ENTRYPOINTS = [
    ("subprocess:run", lambda m: [["touch", m]]),
    ("os:system", lambda m: [f"touch {m}"]),
    ("builtins:eval", lambda m: [f"__import__('pathlib').Path({m!r}).touch()"]),
]

# -- entry points ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "args"), HOSTILE_ENTRYPOINTS, ids=[t for t, _ in HOSTILE_ENTRYPOINTS])
def test_replay_refuses_an_entry_point_a_trace_names(tmp_path: Path, marker: Path, target: str, args: Any) -> None:
    """A header naming subprocess:run, os:system or builtins:eval is refused, typed, with the command to allow it."""
    path = _hostile_trace(tmp_path, target, args(str(marker)))
    with pytest.raises(ReplayRefused) as refused:
        replay_trace(path)
    text = str(refused.value)
    assert str(path) in text and target in text and "touch" in text   # the stored entry point, with its args
    assert f"mattrace replay {path} --entrypoint {target}" in text
    assert refused.value.path == str(path) and refused.value.target == target
    assert not marker.exists()


@pytest.mark.parametrize(("target", "args"), HOSTILE_ENTRYPOINTS, ids=[t for t, _ in HOSTILE_ENTRYPOINTS])
def test_the_replay_command_refuses_it_too(tmp_path: Path, marker: Path, target: str, args: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`mattrace replay` exits 2 on a hostile entry point, prints it and the flag, and runs nothing."""
    from mattrace.cli import main

    path = _hostile_trace(tmp_path, target, args(str(marker)))
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--entrypoint {target}" in err and str(path) in err
    assert not marker.exists()


def test_verify_vouches_for_the_file_not_for_its_entry_point(tmp_path: Path, marker: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`mattrace verify` still says the file is intact, prints the stored entry point and says it is not vetted."""
    from mattrace.cli import main

    path = _hostile_trace(tmp_path, "subprocess:run", [["touch", str(marker)]])
    assert main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK") and "intact" in out
    assert 'entry point: subprocess:run(["touch"' in out
    assert "not vetted" in out
    assert main(["verify", "--json", str(path)]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["entrypoint"]["target"] == "subprocess:run"
    assert main(["show", str(path)]) == 0
    assert "subprocess:run" in capsys.readouterr().out
    assert not marker.exists()


def test_a_stored_entry_point_cannot_restyle_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The entry point is printed as data: control characters in it come out escaped."""
    from mattrace.cli import main

    path = _hostile_trace(tmp_path, "os:system\x1b[2J", ["\x1b]0;owned\x07"])
    assert main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\u001b" in out
    with pytest.raises(ReplayMismatch, match="is not module:function") as refused:
        replay_trace(path)
    assert "\x1b" not in str(refused.value)


def test_the_old_name_of_the_stand_in_error_still_resolves() -> None:
    """mattrace.replay.ReplayedError is RecordedError now, with a deprecation warning."""
    with pytest.warns(DeprecationWarning, match="RecordedError"):
        from mattrace.replay import ReplayedError  # type: ignore[attr-defined]
    assert ReplayedError is RecordedError


def test_an_entry_point_the_user_names_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unregistered entry point replays once named (as text, as the function, or on the command line)."""
    from mattrace.cli import main

    target = f"{HERE}:plain_flow"
    with mattrace.record("plain", dir=tmp_path / "traces",
                         entrypoint={"target": target, "args": [], "kwargs": {}}) as rec:
        plain_flow()
    with pytest.raises(ReplayRefused, match=re.escape(f"--entrypoint {target}")):
        replay_trace(rec.path)
    assert replay_trace(rec.path, entrypoint=target).identical
    assert replay_trace(rec.path, entrypoint=plain_flow).identical
    assert main(["replay", str(rec.path), "--entrypoint", target]) == 0
    assert "identical" in capsys.readouterr().out
    with pytest.raises(ReplayRefused, match=r"names tests\.test_replay_trust:plain_flow.*you named os:system"):
        replay_trace(rec.path, entrypoint="os:system")


def test_a_registered_entry_point_replays_without_ceremony(tmp_path: Path) -> None:
    """A function the program registered (@mattrace.replayable, @mattrace.record) replays with no flag."""
    with mattrace.record("registered", dir=tmp_path / "traces",
                         entrypoint={"target": f"{HERE}:registered_flow", "args": [], "kwargs": {}}) as rec:
        registered_flow()
    result = replay_trace(rec.path)
    assert result.identical and result.error is None and GOT == ["fresh", "fresh"]


def test_replayable_checks_what_it_is_given() -> None:
    """replayable() takes a named function or a dataclass, pydantic model or exception class, and nothing else."""
    def local() -> None: ...

    with pytest.raises(mattrace.RecordingError, match="module level"):
        mattrace.replayable(local)
    with pytest.raises(mattrace.RecordingError, match="dataclass, a pydantic model or an exception"):
        mattrace.replayable(int)
    with pytest.raises(mattrace.RecordingError, match="a function or a class"):
        mattrace.replayable("subprocess:run")   # type: ignore[arg-type]


@pytest.mark.slow
def test_allow_module_imports_a_package_for_its_registered_entry_points(tmp_path: Path, marker: Path) -> None:
    """In a fresh process nothing is imported until the user allows the package; then only its
    registered functions run, and the current directory is never put on sys.path."""
    pkg = tmp_path / "proj" / "shop"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "flows.py").write_text(
        "import mattrace\n"
        "@mattrace.record('checkout')\n"
        "def checkout(n: int) -> None:\n"
        "    mattrace.message('main', f'items: {n}')\n"
        "def helper(path: str) -> None:\n"
        "    open(path, 'w').close()\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "proj")}
    recorded = subprocess.run([sys.executable, "-c", "import shop.flows as f; f.checkout(3)"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
    assert recorded.returncode == 0, recorded.stderr
    (trace,) = (tmp_path / ".mattrace" / "traces").glob("*.jsonl")

    def replay(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mattrace", "replay", *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    refused = replay(str(trace))
    assert refused.returncode == 2 and "--entrypoint shop.flows:checkout" in refused.stderr
    allowed = replay(str(trace), "--allow-module", "shop")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "identical" in allowed.stdout
    with mattrace.record("helper", dir=tmp_path / "other",
                         entrypoint={"target": "shop.flows:helper", "args": [str(marker)], "kwargs": {}}) as rec:
        pass
    unregistered = replay(str(rec.path), "--allow-module", "shop")
    assert unregistered.returncode == 2 and "not registered" in unregistered.stderr
    assert "--entrypoint shop.flows:helper" in unregistered.stderr
    assert not marker.exists()


# -- values ---------------------------------------------------------------------------------------

HOSTILE_VALUES = [
    {"$mt": "dataclass", "type": "subprocess:run", "fields": {"args": ["touch", "{m}"]}},
    {"$mt": "model", "type": "subprocess:run", "data": {"args": ["touch", "{m}"]}},
    {"$mt": "dataclass", "type": "subprocess:getoutput", "fields": {"cmd": "touch {m}"}},
    {"$mt": "dataclass", "type": "os:system", "fields": {"command": "touch {m}"}},
    {"$mt": "model", "type": "builtins:eval", "data": {},
     "private": {"x": "__import__('pathlib').Path('{m}').touch()"}},
]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=[f"{v['$mt']}-{v['type']}" for v in HOSTILE_VALUES])
def test_a_cassette_value_never_calls_what_it_names(tmp_path: Path, marker: Path, value: dict[str, Any]) -> None:
    """A stored value naming subprocess:run, os:system or eval is refused at its step, naming the cassette."""
    tape = _recorded_fetch(tmp_path)
    _forge(tape, {"result": json.loads(json.dumps(value).replace("{m}", str(marker)))})
    with pytest.raises(ReplayRefused) as refused, \
            mattrace.record("fetch", dir=tmp_path / "traces", cassette=tape, record_mode="none"):
        fetch()
    text = str(refused.value)
    assert text.startswith("step 0:") and str(tape) in text and value["type"] in text
    assert not marker.exists()


@pytest.mark.parametrize(("cls", "value"), [
    (Order, {"$mt": "dataclass", "type": f"{HERE}:Order", "fields": {"id": 7, "note": "x"}}),
    (Quote, {"$mt": "model", "type": f"{HERE}:Quote", "data": {"amount": 3}}),
], ids=["dataclass", "pydantic"])
def test_a_type_nobody_allowed_is_refused_until_its_module_is_allowed(tmp_path: Path, cls: type,
                                                                      value: dict[str, Any]) -> None:
    """The program's own dataclass or model is rebuilt only once its module is allowed, and the
    refusal says how to allow it."""
    tape = _recorded_fetch(tmp_path)
    _forge(tape, {"result": value})
    with pytest.raises(ReplayRefused, match=r"mattrace\.replayable|--allow-module tests"), \
            mattrace.record("fetch", dir=tmp_path / "a", cassette=tape, record_mode="none"):
        fetch()
    with allow_modules("tests"), mattrace.record("fetch", dir=tmp_path / "b", cassette=tape, record_mode="none"):
        got = fetch()
    assert isinstance(got, cls)


def test_a_registered_dataclass_is_rebuilt(tmp_path: Path) -> None:
    """A class registered with @mattrace.replayable needs no allowance; a field of it that names code stays data."""
    tape = _recorded_fetch(tmp_path)
    _forge(tape, {"result": {"$mt": "dataclass", "type": f"{HERE}:AllowedOrder", "fields": {"id": 5}}})
    with mattrace.record("fetch", dir=tmp_path / "traces", cassette=tape, record_mode="none"):
        assert fetch() == AllowedOrder(5)


def test_a_type_that_only_re_exports_another_is_refused(tmp_path: Path) -> None:
    """An allowed module's name for a class defined elsewhere does not make that class allowed."""
    tape = _recorded_fetch(tmp_path)
    # tests.test_replay_trust imports BaseModel from pydantic: allowing tests is not allowing pydantic
    _forge(tape, {"result": {"$mt": "model", "type": f"{HERE}:BaseModel", "data": {}}})
    with pytest.raises(ReplayRefused, match="pydantic"), allow_modules("tests"), \
            mattrace.record("fetch", dir=tmp_path / "traces", cassette=tape, record_mode="none"):
        fetch()


def test_a_malformed_stored_value_is_a_typed_error(tmp_path: Path) -> None:
    """A stored value with a missing part is a ReplayMismatch naming the step, not a KeyError."""
    tape = _recorded_fetch(tmp_path)
    _forge(tape, {"result": {"$mt": "tuple"}})
    with pytest.raises(ReplayMismatch, match=r"step 0: .*malformed"), \
            mattrace.record("fetch", dir=tmp_path / "traces", cassette=tape, record_mode="none"):
        fetch()


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", ["evil_mod:E", "os:system", "builtins:eval", "subprocess:run"])
def test_an_error_type_a_cassette_names_is_never_imported(tmp_path: Path, marker: Path, type_name: str) -> None:
    """An error type naming a module in the current directory (or a function) comes back as a
    RecordedError with its type name, message and attributes; nothing is imported, and replay
    leaves sys.path alone."""
    (tmp_path / "evil_mod.py").write_text(
        "import os, pathlib\n"
        "pathlib.Path(os.environ['MATTRACE_TEST_MARKER']).touch()\n"
        "class E(Exception):\n    pass\n")
    with mattrace.record("caught", dir=tmp_path / "traces",
                         entrypoint={"target": f"{HERE}:catching_flow", "args": [], "kwargs": {}}) as rec:
        catching_flow()
    _forge(cassette_path(rec.path), {"error": {"type": type_name, "message": "boom", "args": ["boom"],
                                               "attrs": {"code": 7}}})
    before = list(sys.path)
    result = replay_trace(rec.path)
    assert sys.path == before and str(tmp_path) not in sys.path and "" not in sys.path
    [error] = CAUGHT
    assert isinstance(error, RecordedError)
    assert (error.type_name, error.message, error.attrs) == (type_name, "boom", {"code": 7})
    assert error.code == 7   # type: ignore[attr-defined]
    assert type_name in str(error) and "boom" in str(error)
    assert not result.identical   # the replay says the error was not the recorded class
    assert "evil_mod" not in sys.modules
    assert not marker.exists()


def test_errors_of_known_classes_still_replay_as_themselves(tmp_path: Path, marker: Path) -> None:
    """Builtin exceptions and the program's own (already imported) ones come back as their class,
    built without running their __init__ or an attribute setter."""
    tape = _recorded_fetch(tmp_path)
    cases: list[tuple[dict[str, Any], type[BaseException]]] = [
        ({"type": "builtins:KeyError", "message": "'k'", "args": ["k"], "attrs": {}}, KeyError),
        ({"type": f"{HERE}:PaymentDeclined", "message": "declined 5", "args": ["declined 5"],
          "attrs": {"code": 5}}, PaymentDeclined),
        ({"type": f"{HERE}:Trap", "message": "t", "args": ["t"], "attrs": {"note": "x"}}, Trap),
    ]
    raised: list[BaseException] = []
    for data, cls in cases:
        _forge(tape, {"error": data})
        with pytest.raises(cls) as caught, \
                mattrace.record("fetch", dir=tmp_path / "traces", cassette=tape, record_mode="none"):
            fetch()
        assert type(caught.value) is cls and caught.value.args == tuple(data["args"])
        raised.append(caught.value)
    declined, trap = raised[1], raised[2]
    assert isinstance(declined, PaymentDeclined) and declined.code == 5
    assert isinstance(trap, Trap) and trap.note == "fixed"   # the setter never ran
    assert not marker.exists()


# -- scripts --------------------------------------------------------------------------------------

_SCRIPT = ("import sys\n"
           "import mattrace\n"
           "@mattrace.record('trip')\n"
           "def trip(city: str) -> str:\n"
           "    mattrace.message('planner', f'to {city} on day {mattrace.now() > 0}')\n"
           "    return city\n"
           "if __name__ == '__main__':\n"
           "    trip(sys.argv[1])\n")


@pytest.mark.slow
def test_a_script_run_as_python_app_py_replays_when_the_user_names_it(tmp_path: Path, marker: Path) -> None:
    """``python app.py`` records the script's path; replay says exactly how to name it, and
    ``--entrypoint app.py:trip`` (or the stored path) re-runs it without its ``__main__`` block."""
    app = tmp_path / "proj" / "app.py"
    app.parent.mkdir()
    app.write_text(_SCRIPT + f"    open({str(marker)!r}, 'w').close()\n")
    recorded = subprocess.run([sys.executable, str(app), "Paris"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
    assert recorded.returncode == 0, recorded.stderr
    marker.unlink()
    (trace,) = (tmp_path / ".mattrace" / "traces").glob("*.jsonl")
    entry = mattrace.load(trace).entrypoint
    assert entry is not None and entry["target"] == "__main__:trip" and entry["args"] == ["Paris"]
    assert Path(entry["script"]) == app.resolve()

    def replay(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mattrace", "replay", *argv], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    refused = replay(str(trace))
    assert refused.returncode == 2
    assert "python" in refused.stderr and f"--entrypoint {Path('proj') / 'app.py'}:trip" in refused.stderr
    wrong = replay(str(trace), "--entrypoint", "proj/app.py:other")
    assert wrong.returncode == 2 and "trip" in wrong.stderr
    named = replay(str(trace), "--entrypoint", "proj/app.py:trip")
    assert named.returncode == 0, named.stdout + named.stderr
    assert "identical" in named.stdout
    assert not marker.exists(), "the script's __main__ block must not run on replay"


def test_the_stored_script_is_shown_for_judging_and_escaped() -> None:
    """``show`` and ``verify`` print the script a ``__main__`` entry point would load; a hostile path is escaped."""
    from mattrace.trace import describe_entrypoint

    entry = {"target": "__main__:trip", "script": "/home/ana/app.py", "args": ["Paris"], "kwargs": {}}
    assert describe_entrypoint(entry) == '__main__:trip("Paris") in the script /home/ana/app.py'
    hostile = describe_entrypoint({**entry, "script": "/x\x1b[2J.py"})
    assert "\x1b" not in hostile and "\\u001b" in hostile


def test_a_script_of_another_name_is_refused(tmp_path: Path) -> None:
    """Naming a different file than the one the trace recorded is refused before it is loaded."""
    from mattrace.errors import ReplayRefused
    from mattrace.replay import replay_trace

    other = tmp_path / "other.py"
    other.write_text("raise SystemExit('must not be loaded')\n")
    with mattrace.record("trip", dir=tmp_path / "t", entrypoint={
            "target": "__main__:trip", "script": str(tmp_path / "app.py"), "args": [], "kwargs": {}}) as rec:
        pass
    with pytest.raises(ReplayRefused, match=r"app\.py"):
        replay_trace(rec.path, entrypoint=f"{other}:trip")


@pytest.mark.slow
def test_a_script_run_with_python_m_records_its_module(tmp_path: Path) -> None:
    """``python -m pkg.app`` records ``pkg.app:trip``, which ``--allow-module pkg`` replays as any module."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "app.py").write_text(_SCRIPT)
    recorded = subprocess.run([sys.executable, "-m", "pkg.app", "Rome"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
    assert recorded.returncode == 0, recorded.stderr
    (trace,) = (tmp_path / ".mattrace" / "traces").glob("*.jsonl")
    entry = mattrace.load(trace).entrypoint
    assert entry is not None and entry["target"] == "pkg.app:trip"
    allowed = subprocess.run([sys.executable, "-m", "mattrace", "replay", str(trace), "--allow-module", "pkg"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
