"""No secret reaches an artefact: a run that carries one in every place a secret can sit is
recorded (with a cassette and a governor's audit log), and the trace, the cassette, the
audit log, the store, ``mattrace show``, the OTLP export and the HTML report are searched
for it, along with the names of the files written.

Each secret form below is one case; each case records one run with the secret in an
argument, an argument dict's key, a result, a bytes result, an exception's message and
attributes, a label, a memory key, a memory value under a secret-like key, message
content, attrs, the config and the run's name. A last case puts a value with no secret
shape under secret-like keys only (attrs, labels, args, results, exception attributes,
memory, name/value header pairs): only the key can tell it is a secret.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rich.console import Console

import mattrace
from mattrace.cli import main
from mattrace.governance import Governor, audit_path
from mattrace.io.otlp_export import export_traces
from mattrace.replay import cassette_path
from mattrace.report import print_trace

_RNG = random.Random(20240517)
_ALNUM = string.ascii_letters + string.digits
_UPPER_DIGITS = string.ascii_uppercase + string.digits
WINDOW = 12   # a secret counts as leaked when any WINDOW characters of it appear


def _r(n: int, alphabet: str = _ALNUM) -> str:
    """n random characters with at least one digit, one lower and one upper case letter where
    the alphabet has them (as every real key does)."""
    while True:
        text = "".join(_RNG.choice(alphabet) for _ in range(n))
        kinds = [any(c.isdigit() for c in text), any(c.islower() for c in text), any(c.isupper() for c in text)]
        wanted = [any(c.isdigit() for c in alphabet), any(c.islower() for c in alphabet),
                  any(c.isupper() for c in alphabet)]
        if kinds == wanted:
            return text


def _b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _basic(user: str) -> tuple[str, str]:
    """A Basic credential whose base64 has no '+', '/' or '=' (so it is searched for verbatim)."""
    length = 14 + (-(len(user) + 1 + 14)) % 3   # a multiple of 3 bytes: no '=' padding
    while True:
        password = _r(length)
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        if not any(c in encoded for c in "+/="):
            return encoded, password


def _pem(kind: str) -> tuple[str, list[str]]:
    lines = [_r(64) for _ in range(3)]
    label = f"{kind} PRIVATE KEY" if kind else "PRIVATE KEY"
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----", lines


@dataclass(frozen=True)
class Form:
    """A secret as it is written (``text``) and the parts of it that must never be seen (``raw``)."""

    text: str
    raw: tuple[str, ...]


def _forms() -> dict[str, Form]:
    forms: dict[str, Form] = {}

    def add(name: str, text: str, *raw: str) -> None:
        forms[name] = Form(text, raw or (text,))

    add("aws-access-key-id", "AKIA" + _r(16, _UPPER_DIGITS))
    add("aws-session-key-id", "ASIA" + _r(16, _UPPER_DIGITS))
    aws_secret = _r(40)
    add("aws-secret-access-key", f"aws_secret_access_key = {aws_secret}", aws_secret)
    add("github-classic-token", "ghp_" + _r(36))
    add("github-oauth-token", "gho_" + _r(36))
    add("github-fine-grained-token", "github_pat_" + _r(22) + "_" + _r(59))
    add("gitlab-token", "glpat-" + _r(20))
    add("slack-bot-token", "xoxb-" + _r(12, string.digits) + "-" + _r(13, string.digits) + "-" + _r(24))
    hook = _r(24)
    add("slack-webhook", f"https://hooks.slack.com/services/T{_r(8, _UPPER_DIGITS)}/B{_r(8, _UPPER_DIGITS)}/{hook}",
        hook)
    add("stripe-secret-key", "sk_" + "live_" + _r(24))
    add("stripe-restricted-key", "rk_" + "live_" + _r(24))
    add("google-api-key", "AIza" + _r(35))
    jwt = (_b64url({"alg": "HS256", "typ": "JWT"}) + "." + _b64url({"sub": _r(10), "name": "Ann", "iat": 1516239022})
           + "." + _r(43, _ALNUM + "_-"))
    add("jwt", jwt, jwt.split(".", 1)[1])
    pem, lines = _pem("RSA")
    add("pem-rsa-private-key", pem, *lines)
    pem, lines = _pem("OPENSSH")
    add("pem-openssh-private-key", pem, *lines)
    pem, lines = _pem("")
    add("pem-pkcs8-private-key", pem, *lines)
    encoded, password = _basic("admin")
    add("basic-auth-header", f"Authorization: Basic {encoded}", encoded, password)
    encoded, password = _basic("ci")
    add("basic-auth-bare", f"Basic {encoded}", encoded, password)
    bearer = _r(40, _ALNUM + "._-")
    add("bearer-token", f"Bearer {bearer}", bearer)
    password = _r(16)
    add("url-credentials", f"https://deploy:{password}@db.example.com:5432/app", password)
    password = _r(12)
    add("dsn-credentials", f"postgresql://admin:{password}@10.1.2.3/orders", password)
    password = _r(12)
    add("password-assignment", f"password={password}", password)
    token = _r(20)
    add("token-assignment", f"token: {token}", token)
    key = _r(24)
    add("api-key-json-text", f'{{"api_key": "{key}"}}', key)
    add("openai-key", "sk-proj-" + _r(48))
    add("anthropic-key", "sk-ant-api03-" + _r(80, _ALNUM + "_-") + "AA")
    add("huggingface-token", "hf_" + _r(34, string.ascii_letters))
    add("sendgrid-key", "SG." + _r(22) + "." + _r(43))
    add("npm-token", "npm_" + _r(36))
    return forms


FORMS = _forms()
PLAIN = "Plain" + _r(14)   # no secret shape: only the key it is stored under says it is one
# the cases whose every step's detail view is searched too (a multi-line value, a partly
# redacted one, a header, and the shapeless one)
DETAILED = frozenset({"pem-rsa-private-key", "url-credentials", "basic-auth-header", "plain-value-under-secret-keys"})
ARTEFACTS = ("file names", "trace", "cassette", "audit log", "store", "show", "otlp export", "html report")


class AuthError(Exception):
    """An exception that carries the credential it was refused for as attributes."""

    def __init__(self, message: str, token: str, detail: str) -> None:
        super().__init__(message)
        self.token = token
        self.detail = detail


@mattrace.tool
def call_service(payload: dict[str, Any], note: str) -> str:
    return "ok"


@mattrace.tool
def fetch(text: str) -> str:
    return f"the result is {text}"


@mattrace.tool
def fetch_bytes(text: str) -> bytes:
    return f"raw bytes {text}".encode()


@mattrace.tool
def login(text: str) -> None:
    raise AuthError(f"login refused for {text}", token=text, detail=f"detail {text}")


@mattrace.tool
def issue(user: str) -> dict[str, Any]:
    return {"user": user, "client_secret": PLAIN, "headers": [{"name": "X-Api-Key", "value": PLAIN}]}


def _record_form(text: str, dir: Path) -> Path:
    """One run with ``text`` in every place a secret can sit; returns its trace file."""
    memory = mattrace.Memory("vault")
    with mattrace.record(f"deploy {text}", dir=dir, governor=Governor(), labels={"note": f"see {text}", text: "x"},
                         config={"note": text}) as rec:
        call_service({text: 1, "note": text}, note=text)
        fetch(text)
        fetch_bytes(text)
        with pytest.raises(AuthError):
            login(text)
        memory[text] = "v"
        assert memory[text] == "v"
        memory["svc_api_token"] = text
        assert memory["svc_api_token"] == text
        mattrace.message("agent", f"the content holds {text}", attrs={"note": text})
    return rec.path


def _record_plain(dir: Path) -> Path:
    """One run with a shapeless secret under secret-like keys only."""
    memory = mattrace.Memory("vault")

    @mattrace.tool
    def deploy(target: str, password: str, env: list[dict[str, str]]) -> str:
        raise AuthError("deploy refused", token=PLAIN, detail="see the token")

    with mattrace.record("deploy plain", dir=dir, governor=Governor(), labels={"access_token": PLAIN},
                         config={"db": {"Password": PLAIN}}) as rec:
        with pytest.raises(AuthError):
            deploy("prod", PLAIN, [{"name": "API_TOKEN", "value": PLAIN}])
        issue("ann")
        memory["svc_api_token"] = PLAIN
        assert memory["svc_api_token"] == PLAIN
        mattrace.message("agent", "done", attrs={"apiKey": PLAIN, "session": {"refresh_token": PLAIN}})
    return rec.path


def _cassette_text(path: Path) -> str:
    """The cassette, plus the decoded content of every bytes value it stores as base64."""
    text = path.read_text(encoding="utf-8")
    decoded: list[str] = []

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("$mt") == "bytes" and isinstance(value.get("b64"), str):
                decoded.append(base64.b64decode(value["b64"]).decode("utf-8", "replace"))
            for v in value.values():
                visit(v)
        elif isinstance(value, list):
            for v in value:
                visit(v)

    for line in text.splitlines():
        visit(json.loads(line))
    return "\n".join([text, *decoded])


def _cli(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0, argv
    return out.getvalue()


def _show(path: Path, details: bool) -> str:
    """``mattrace show``: the table and the JSON; with ``details``, also each step's details as
    ``show --step`` renders them (rendering costs ~15 ms a step, so only some cases ask). A
    value wrapped across lines is still caught: a leak is any WINDOW characters of a secret."""
    parts = [_cli("show", "--width", "200", str(path)), _cli("show", "--json", str(path))]
    trace = mattrace.load(path)
    for step in trace.steps if details else ():
        out = io.StringIO()
        print_trace(trace, Console(file=out, width=200, color_system=None), step=step.index, around=0, width=200,
                    path=path)
        parts.append(out.getvalue())
    return "\n".join(parts)


def _otlp(path: Path) -> str:
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    memory = InMemorySpanExporter()
    assert export_traces([mattrace.load(path)], memory) == 1
    return json.dumps(MessageToDict(encode_spans(memory.get_finished_spans())))


def _store_text(db: Path) -> str:
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [row[0] for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()]
        return "\n".join(f"{table}: {con.execute(f'SELECT * FROM {table}').fetchall()!r}" for table in tables)


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Case name -> artefact name -> the artefact's text, for every case recorded once."""
    root = tmp_path_factory.mktemp("secrets")
    traces: dict[str, Path] = {}
    for name, form in FORMS.items():
        traces[name] = _record_form(form.text, root / "traces" / name)
    traces["plain-value-under-secret-keys"] = _record_plain(root / "traces" / "plain")
    db = root / "store.duckdb"
    _cli("ingest", "--store", str(db), str(root / "traces"))
    store = _store_text(db)
    report = root / "report.html"
    _cli("report", "--store", str(db), "--out", str(report))
    html = report.read_text(encoding="utf-8")
    found: dict[str, dict[str, str]] = {}
    for name, path in traces.items():
        assert cassette_path(path).exists() and audit_path(path).exists()
        found[name] = {
            "file names": "\n".join(p.name for p in path.parent.iterdir()),
            "trace": path.read_text(encoding="utf-8"),
            "cassette": _cassette_text(cassette_path(path)),
            "audit log": audit_path(path).read_text(encoding="utf-8"),
            "store": store,
            "show": _show(path, details=name in DETAILED),
            "otlp export": _otlp(path),
            "html report": html,
        }
    return found


def _windows(secret: str) -> Iterator[str]:
    if len(secret) <= WINDOW:
        yield secret
        return
    for i in range(len(secret) - WINDOW + 1):
        yield secret[i:i + WINDOW]


def _leaks(raw: tuple[str, ...], artefacts: dict[str, str]) -> list[str]:
    leaks = []
    for artefact in ARTEFACTS:
        text = artefacts[artefact]
        for secret in raw:
            hit = next((w for w in _windows(secret) if w in text), None)
            if hit is not None:
                at = text.index(hit)
                leaks.append(f"{artefact}: …{text[max(0, at - 60):at + 40]!r}…")
                break
    return leaks


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_secret_form_reaches_no_artefact(form: str, artefacts: dict[str, dict[str, str]]) -> None:
    """The secret, in every place of a recorded run, is in none of the run's artefacts."""
    leaks = _leaks(FORMS[form].raw, artefacts[form])
    assert not leaks, f"{form} leaked into:\n" + "\n".join(leaks)


def test_a_shapeless_secret_under_secret_like_keys_reaches_no_artefact(
        artefacts: dict[str, dict[str, str]]) -> None:
    """attrs, labels, args, results, exception attributes, memory values and name/value pairs
    under secret-like keys are redacted whatever the value looks like."""
    leaks = _leaks((PLAIN,), artefacts["plain-value-under-secret-keys"])
    assert not leaks, "leaked into:\n" + "\n".join(leaks)


def test_the_recorded_run_keeps_what_is_not_secret(artefacts: dict[str, dict[str, str]]) -> None:
    """Redaction is targeted: the words around each secret, the tool names and the marker are kept."""
    trace = artefacts["stripe-secret-key"]["trace"]
    for kept in ("deploy [REDACTED]", "the result is [REDACTED]", "login refused for [REDACTED]",
                 "the content holds [REDACTED]", "call_service", "svc_api_token"):
        assert kept in trace, kept
    url = artefacts["url-credentials"]["trace"]
    assert "https://deploy:[REDACTED]@db.example.com:5432/app" in url


pytest_plugins = ["pytester"]


def test_a_secret_in_a_test_id_reaches_no_file_of_the_pytest_plugin(pytester: pytest.Pytester) -> None:
    """pytest makes a parametrised test's id from its argument: a key passed as one is in the id,
    which names the plugin's runs, their cassettes and their results rows; none of the files
    the session writes (store and report included) holds it."""
    key = FORMS["stripe-secret-key"].text
    pytester.makepyfile(test_keyed=f"""
import pytest
import mattrace

@mattrace.tool
def charge(key: str) -> str:
    return "ok"

@pytest.mark.parametrize("key", [{key!r}])
@pytest.mark.mattrace
def test_charge(mat, key):
    with mat.run():
        charge(key)
""")
    result = pytester.runpytest("-p", "no:cacheprovider", "--mattrace-report", "report.html")
    result.assert_outcomes(passed=1)
    written = [p for p in pytester.path.rglob("*") if p.is_file() and p.name != "test_keyed.py"
               and "__pycache__" not in p.parts]
    assert {".cassette", ".duckdb", ".html"} <= {p.suffix for p in written}
    leaks = [str(p.relative_to(pytester.path)) for p in written
             if key in str(p.relative_to(pytester.path)) or key.encode() in p.read_bytes()]
    assert not leaks


def test_an_imported_chat_log_is_written_redacted(tmp_path: Path) -> None:
    """``mattrace import openai`` writes a trace like a recorded run's: the keys in a chat log
    (a tool's arguments and result, the text) do not reach the file, its name or the store."""
    key, token = FORMS["openai-key"].text, FORMS["github-classic-token"].text
    log = tmp_path / f"chat {key}.json"
    log.write_text(json.dumps([
        {"role": "user", "content": f"deploy with {key}"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "deploy", "arguments": json.dumps({"password": PLAIN, "token": token})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": f"deployed; the session key is {token}"},
        {"role": "assistant", "content": "done"},
    ]))
    out = tmp_path / "imported"
    _cli("import", "openai", str(log), "--out", str(out))   # the run is named after the file
    [written] = out.iterdir()
    text = written.read_text(encoding="utf-8")
    assert not _leaks((key, token, PLAIN), {a: text if a == "trace" else written.name if a == "file names" else ""
                                            for a in ARTEFACTS})
    assert mattrace.load(written).steps[0].content == "deploy with [REDACTED]"
