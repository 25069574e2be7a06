"""The shared reader of TOML files people write: located decode errors, typed getters, located errors."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from mattrace._config import ConfigFile, read_config
from mattrace.contracts import load_contracts
from mattrace.errors import ContractError, FaultSpecError, GovernanceError, LocatedError
from mattrace.faults import load_faults
from mattrace.governance import load_policy


def write(tmp_path: Path, text: str | bytes, name: str = "file.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def config(tmp_path: Path, text: str) -> ConfigFile[ContractError]:
    return read_config(write(tmp_path, text), ContractError, "test file")


# -- decoding ------------------------------------------------------------------------------


def test_a_toml_syntax_error_names_the_file_and_its_line(tmp_path: Path) -> None:
    """An invalid TOML text is an error of the format's type at the line tomllib names, with the column."""
    path = write(tmp_path, 'a = 1\n\nb = "unclosed\n')
    with pytest.raises(FaultSpecError) as info:
        read_config(path, FaultSpecError, "fault plan")
    assert (info.value.path, info.value.line) == (str(path), 3)
    assert str(info.value).startswith(f"{path}:3: invalid TOML: ")
    assert "(column " in str(info.value)


def test_a_syntax_error_at_the_end_of_the_document_is_on_its_last_line(tmp_path: Path) -> None:
    """tomllib's "end of document" becomes the file's last non-blank line."""
    path = write(tmp_path, 'a = 1\nb = [1,\n\n')
    with pytest.raises(ContractError) as info:
        read_config(path, ContractError, "contract file")
    assert info.value.line == 2 and "(at the end of the file)" in str(info.value)


def test_a_byte_that_is_not_utf8_is_located_at_its_line(tmp_path: Path) -> None:
    """A non-UTF-8 byte is reported at its line, unless the format keeps the codec's plain message."""
    path = write(tmp_path, b'a = 1\nb = "caf\xe9"\n')
    with pytest.raises(ContractError) as info:
        read_config(path, ContractError, "contract file")
    assert str(info.value) == f"{path}:2: contract file is not UTF-8 text (invalid continuation byte at byte 14)"
    with pytest.raises(GovernanceError) as plain:
        read_config(path, GovernanceError, "policy file", plain_read_errors=True)
    assert str(plain.value).startswith(f"{path}: cannot read policy file: 'utf-8' codec can't decode")
    assert plain.value.line is None


def test_a_missing_file_names_the_file_and_no_line(tmp_path: Path) -> None:
    """A file that is not there is "<noun> not found", with path set and line None."""
    path = tmp_path / "gone.toml"
    with pytest.raises(GovernanceError) as info:
        read_config(path, GovernanceError, "policy file")
    assert str(info.value) == f"{path}: policy file not found"
    assert (info.value.path, info.value.line, info.value.reason) == (str(path), None, "policy file not found")


# -- typed getters -------------------------------------------------------------------------

TEXT = """\
[server]
name = "api"
port = "80"
ratio = true
debug = 1
tags = ["a", 2]
mode = "fast"
"""


@pytest.mark.parametrize(("key", "get", "message"), [
    ("port", lambda c, at, v: c.integer(at, v), "port must be an integer, got a string ('80')"),
    ("ratio", lambda c, at, v: c.number(at, v), "ratio must be a number, got a boolean (true)"),
    ("debug", lambda c, at, v: c.boolean(at, v), "debug must be true or false, got an integer (1)"),
    ("tags", lambda c, at, v: c.strings(at, v), "tags must be a list of strings, got an array"),
    ("port", lambda c, at, v: c.table(at, v), "port must be a table, got a string ('80')"),
    ("debug", lambda c, at, v: c.string(at, v, name="'debug'", expected="text"),
     "'debug' must be text, got an integer (1)"),
    ("mode", lambda c, at, v: c.choice(at, v, ("slow", "safe")), "mode must be one of slow, safe, got a string"),
    ("debug", lambda c, at, v: c.integer(at, v, expected="a whole number (at least 2)", minimum=2),
     "debug must be a whole number (at least 2), got an integer (1)"),
])
def test_a_wrong_type_names_the_key_its_line_what_was_expected_and_what_was_got(
        tmp_path: Path, key: str, get: Any, message: str) -> None:
    """Each getter's error is at the line of the key and says `<key> must be <expected>, got <what>`."""
    cfg = config(tmp_path, TEXT)
    line = TEXT.splitlines().index(next(s for s in TEXT.splitlines() if s.startswith(f"{key} ="))) + 1
    with pytest.raises(ContractError) as info:
        get(cfg, ("server", key), cfg.doc["server"][key])
    assert str(info.value).startswith(f"{cfg.path}:{line}: {message}"), str(info.value)
    assert (info.value.path, info.value.line) == (cfg.path, line)


def test_getters_return_values_of_the_right_type_unchanged(tmp_path: Path) -> None:
    """A value of the expected type comes back as it is (an integer stays an integer where a number is asked)."""
    cfg = config(tmp_path, 'n = 3\nflag = false\nnames = ["a", "b"]\n[t]\nx = 1\n')
    assert cfg.number(("n",), cfg.doc["n"], minimum=0) == 3 and isinstance(cfg.doc["n"], int)
    assert cfg.integer(("n",), cfg.doc["n"], minimum=3) == 3
    assert cfg.boolean(("flag",), cfg.doc["flag"]) is False
    assert cfg.strings(("names",), cfg.doc["names"]) == ["a", "b"]
    assert cfg.table(("t",), cfg.doc["t"]) == {"x": 1}


def test_an_unknown_key_gets_a_did_you_mean_at_its_line(tmp_path: Path) -> None:
    """A key nobody reads is reported at its own line with the known keys and the closest of them."""
    cfg = config(tmp_path, '[server]\nname = "api"\n\nprot = 80\n')
    with pytest.raises(ContractError) as info:
        cfg.check_keys(("server",), cfg.doc["server"], ("name", "port"), "in [server]")
    assert str(info.value) == (f"{cfg.path}:4: unknown key 'prot' in [server] (known: name, port); "
                               "did you mean 'port'?")


def test_an_error_about_a_key_that_is_not_there_falls_back_to_its_table(tmp_path: Path) -> None:
    """A missing key is located at the table that should hold it; the whole document has no line."""
    cfg = config(tmp_path, 'a = 1\n\n[[entry]]\nx = 1\n')
    assert cfg.fail(("entry", 0, "missing"), "needs 'missing'").line == 3
    assert str(cfg.fail((), "empty")) == f"{cfg.path}: empty"


def test_a_function_reference_imports_or_says_why_not(tmp_path: Path) -> None:
    """`module:function` is imported; a malformed or unimportable one is located, named and explained."""
    cfg = config(tmp_path, 'ok = "pathlib:Path"\nbad = "pathlib"\ngone = "pathlib:Nope"\n')
    assert cfg.function(("ok",), cfg.doc["ok"]) is Path
    with pytest.raises(ContractError, match=r":2: X.fn must be \"module:function\", got a string \('pathlib'\)$"):
        cfg.function(("bad",), cfg.doc["bad"], name="X.fn")
    with pytest.raises(ContractError, match=r":3: 'pathlib:Nope' does not import \(module 'pathlib' has no"):
        cfg.function(("gone",), cfg.doc["gone"])


# -- LocatedError --------------------------------------------------------------------------


@pytest.mark.parametrize("error", [ContractError, FaultSpecError, GovernanceError])
def test_located_errors_carry_path_line_and_reason(error: type[LocatedError]) -> None:
    """Each file error type is a LocatedError: path and line when located, None when raised by the Python API."""
    located = error("bad key", path=Path("a.toml"), line=3)
    assert isinstance(located, LocatedError)
    assert (str(located), located.path, located.line, located.reason) == ("a.toml:3: bad key", "a.toml", 3, "bad key")
    assert str(error("no line", path="a.toml")) == "a.toml: no line"
    bare = error("from Python")
    assert (str(bare), bare.path, bare.line) == ("from Python", None, None)
    copy = pickle.loads(pickle.dumps(located))
    assert (type(copy), str(copy), copy.path, copy.line) == (error, "a.toml:3: bad key", "a.toml", 3)


# -- the three formats, through the shared code --------------------------------------------


@pytest.mark.parametrize(("load", "error", "text", "line", "message"), [
    (load_contracts, ContractError, '[[contract]]\nuse = "terminates"\n\nmax_steps = "ten"\n', 4,
     "'max_steps' must be a whole number (at least 1), got a string ('ten')"),
    (load_faults, FaultSpecError, '[[fault]]\ntype = "Timeout"\n\nseconds = "5"\n', 4,
     "Timeout.seconds must be a finite number, got a string ('5')"),
    (load_policy, GovernanceError, '[capabilities.writer]\ntools = ["a"]\n\nmemory = "no"\n', 4,
     "memory must be true or false, got a string ('no')"),
    (load_policy, GovernanceError, '[[rule]]\nuse = "block"\n\nstep = { tool = 3 }\n', 4,
     "'tool' must be a name, a glob such as \"send_*\", or a non-empty list of them, got an integer (3)"),
])
def test_each_format_raises_its_own_located_error(tmp_path: Path, load: Any, error: type[LocatedError], text: str,
                                                  line: int, message: str) -> None:
    """Contract files, fault plans and policies (step patterns too) raise their own error type with path and line."""
    path = write(tmp_path, text)
    with pytest.raises(error) as info:
        load(path)
    assert str(info.value) == f"{path}:{line}: {message}"
    assert (info.value.path, info.value.line, info.value.reason) == (str(path), line, message)


def test_values_nested_thousands_deep_are_a_located_error_not_a_crash(tmp_path: Path) -> None:
    """tomllib recurses per nesting level: a hostile file 2,000 arrays deep is an error of the format's type."""
    path = write(tmp_path, "x = " + "[" * 2000 + "]" * 2000 + "\n")
    for load, error in ((load_contracts, ContractError), (load_faults, FaultSpecError), (load_policy, GovernanceError)):
        with pytest.raises(error, match="nested too deep"):
            load(path)


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
def test_a_number_that_is_not_finite_is_refused(tmp_path: Path, raw: str) -> None:
    """A bound of nan is never exceeded: a contract with one could never fail, so it is not a number."""
    cfg = config(tmp_path, f"seconds = {raw}\n")
    with pytest.raises(ContractError, match=":1: seconds must be a number"):
        cfg.number(("seconds",), cfg.doc["seconds"], name="seconds")
