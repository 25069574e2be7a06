"""The redactor: which values and keys count as secrets, which look-alikes do not, and how a
redacted value is stored (trace, cassette) and served back on replay."""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

import mattrace
from mattrace.errors import RecordingError
from mattrace.recording.jsonable import to_jsonable
from mattrace.recording.redact import REDACTED, Redactor
from mattrace.recording.secret_patterns import DEFAULT_SECRET_KEYS, DEFAULT_SECRET_VALUES
from mattrace.replay import cassette_path
from mattrace.replay._file import read_cassette

REDACT = Redactor()


JWT_SIGNATURE = "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"


def _jwt(header: dict[str, Any], payload: dict[str, Any], signature: str = JWT_SIGNATURE) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part(header)}.{part(payload)}.{signature}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# (text, the secret inside it): each must come out with the secret gone and the rest kept
TRUE_POSITIVES: list[tuple[str, str]] = [
    ("aws AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
    ("sts ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("ghp_" + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5", "ghp_" + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"),
    ("ghs_" + "16C7e42F292c6912E7710c838347Ae178B4a", "ghs_" + "16C7e42F292c6912E7710c838347Ae178B4a"),
    ("github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF",
     "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF"),
    ("glpat-" + "xYz12AbC34dEf56GhI78", "glpat-" + "xYz12AbC34dEf56GhI78"),
    ("xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-" + "123456789012-1234567890123"),
    ("xoxp-" + "2222222222-3333333333-4444444444-abcdef", "xoxp-" + "2222222222-3333333333"),
    ("hook https://hooks.slack.com/services/" + "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
     "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
    ("sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc", "sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("sk_" + "test_4eC39HqLyjWDarjtT1zdp7dc", "sk_" + "test_4eC39HqLyjWDarjtT1zdp7dc"),
    ("rk_" + "live_51H8u2kLmNoPqRsTuVwXyZ012", "rk_" + "live_51H8u2kLmNoPqRsTuVwXyZ012"),
    ("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("key=AIza" + "SyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&x=1", "AIza" + "SyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI"),
    ("GOCSPX-" + "1a2B3c4D5e6F7g8H9i0JkLmN", "GOCSPX-" + "1a2B3c4D5e6F7g8H9i0JkLmN"),
    (_jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "1234567890", "name": "John Doe", "iat": 1516239022}),
     "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
    ("unsigned " + _jwt({"alg": "none"}, {"sub": "ann"}, ""), _jwt({"alg": "none"}, {"sub": "ann"}, "")[20:]),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAxyz123\nAbCdEf==\n-----END RSA PRIVATE KEY-----",
     "MIIEowIBAAKCAQEAxyz123"),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END PRIVATE KEY-----", "MIIEvQIBADANBgkqhkiG9w0B"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n-----END OPENSSH PRIVATE KEY-----",
     "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU"),
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oo",     # cut off: no END line
     "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oo"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0yZ2kBCAC\n-----END PGP PRIVATE KEY BLOCK-----", "lQOYBF0yZ2kBCAC"),
    ("PuTTY-User-Key-File-2: ssh-rsa\nPrivate-Lines: 1\nAAAAgCd8s7m5Q\nPrivate-MAC: 8a9b", "AAAAgCd8s7m5Q"),
    ("Authorization: Basic " + _b64("admin:hunter2"), _b64("admin:hunter2")),
    ("curl -H 'authorization: basic " + _b64("ci:s3cret") + "'", _b64("ci:s3cret")),
    ("Basic " + _b64("user:pass"), _b64("user:pass")),
    ("Authorization: Bearer abcdefghij0123456789", "abcdefghij0123456789"),
    ("bearer 9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706"),
    ("https://deploy:Tr0ub4dor-3@db.example.com/x", "Tr0ub4dor-3"),
    ("redis://:p4ssw0rd@cache:6379/0", "p4ssw0rd"),
    ("postgresql://app:s3cr%40t@10.0.0.5:5432/orders", "s3cr%40t"),
    ("password=hunter2", "hunter2"),
    ("DB_PASSWORD='correct horse'", "correct horse"),
    ("api_key: k3y-abc-123", "k3y-abc-123"),
    ('{"client_secret": "cs-9f8e7d"}', "cs-9f8e7d"),
    ("{'Password': 'password123'}", "password123"),
    ("https://example.com/cb?access_token=at-abc123&state=x", "at-abc123"),
    ("accessToken: t0k3n", "t0k3n"),
    ("X-Api-Key: xyz-789", "xyz-789"),
    ("Set-Cookie: session=abc123; Path=/", "session=abc123"),
    ("export AWS_SECRET_ACCESS_KEY=abcdEFGH1234", "abcdEFGH1234"),
    ('args: {\\"password\\": \\"hunter2\\"}', "hunter2"),
    ("passwd := p4ss", "p4ss"),
    ("sk-" + "A1b2C3d4E5f6G7h8I9j0", "sk-" + "A1b2C3d4E5f6G7h8I9j0"),
    ("sk-proj-" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90", "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90"),
    ("sk-ant-api03-" + "aBcD1234_eFgH5678-iJkL9012mNoP3456qRsT", "aBcD1234_eFgH5678-iJkL9012mNoP3456qRsT"),
    ("hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"),
    ("npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"),
    ("pypi-AgEIcHlwaS5vcmc" + "CJDk5ZWNmOGMtYjM4ZS00YTQ3LWI1ZjYtYmE1NTdjZmRmNmI5AAI", "CJDk5ZWNmOGMtYjM4ZS00YTQ3"),
    ("SG." + "ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr", "TwL2iGABf9DHoTf-09kqeF8tAmbih"),
]

# look-alikes that must be kept exactly as they are
NEAR_MISSES: list[str] = [
    "max_tokens=512", "prompt_tokens: 77", "maxTokens: 5", "tokenizer: bpe", "tokens=3", "passwords: 3 rotated",
    "The password is strong", "mytoken=abc", "ACCESSTOKEN=abc", "password:\n  nested: yes",
    "123e4567-e89b-12d3-a456-426614174000",                                  # a uuid
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",      # a sha256 (the chain's hashes)
    "4901367084574de5b33c2f9354f9a19b",                                      # a trace id
    "d41d8cd98f00b204e9800998ecf8427e",
    "sk-learn-compatible-models", "scikit-learn", "task-12345678901234567890", "disk-0123456789abcdefghij",
    "Basic understanding of Python", "basic auth is off", "Bearer authentication", "bearer tokens",
    "https://example.com:8080/path?q=1", "git@github.com:org/repo.git", "mailto:ann@example.com",
    "ann@example.com", "ssh://git@host:22/repo", "http://[::1]:8080/",
    "eyJhbGciOi", "eyJfoo.bar", "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIDXTCCAkWgAwIBAgIJ\n-----END CERTIFICATE-----",
    "pk_" + "live_4eC39HqLyjWDarjtT1zdp7dc",                                # a publishable key is public
    "AKIA1234", "ghp_short", "AIzaShort", "xoxo and hugs", "hf_hub_download", "npm_config_cache",
    "ratio=1:2 at 12:30:45", "time: 12:30", "step 3: token count", "KEY=value", "monkey=business",
    "secretary: Ann", "tokenize: true", "the cookies are ready",
]


@pytest.mark.parametrize(("text", "secret"), TRUE_POSITIVES, ids=[t[:24] for t, _ in TRUE_POSITIVES])
def test_a_secret_in_text_is_replaced(text: str, secret: str) -> None:
    out = REDACT.text(text)
    assert secret not in out and REDACTED in out, out


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_a_look_alike_is_kept(text: str) -> None:
    assert REDACT.text(text) == text


def test_only_the_secret_part_of_an_assignment_or_url_is_replaced() -> None:
    """The key, the scheme, the host and the quotes stay: the reader still sees what was there."""
    assert REDACT.text("password=hunter2 then") == "password=[REDACTED] then"
    assert REDACT.text('{"api_key": "k-1"}') == '{"api_key": "[REDACTED]"}'
    assert REDACT.text("Authorization: Bearer abcdefghij0123456789") == "Authorization: [REDACTED]"
    assert REDACT.text("https://deploy:pw-123@db.example.com/x") == "https://deploy:[REDACTED]@db.example.com/x"
    assert REDACT.text("use Bearer abcdefghij0123456789 now") == "use [REDACTED] now"


def test_secret_like_keys_redact_their_values_anywhere() -> None:
    """Keys match with separators, camelCase and prefixes; look-alike keys are kept; name/value
    pairs (headers, environment variables) count as keys; a value of None stays None."""
    value = {
        "api_key": "a", "X-Api-Key": "b", "clientSecret": "c", "db.password": "d", "AWS_SECRET_ACCESS_KEY": "e",
        "accessToken": {"nested": 1}, "set-cookie": ["x"], "passphrase": "f", "token": None,
        "max_tokens": 5, "tokenizer": "bpe", "prompt_tokens": 7, "secretary": "Ann", "keyboard": "us",
        "headers": [{"name": "Authorization", "value": "g"}, {"name": "Accept", "value": "json"}],
        "env": [{"key": "API_TOKEN", "value": "h"}],
    }
    assert REDACT(value) == {
        "api_key": REDACTED, "X-Api-Key": REDACTED, "clientSecret": REDACTED, "db.password": REDACTED,
        "AWS_SECRET_ACCESS_KEY": REDACTED, "accessToken": REDACTED, "set-cookie": REDACTED, "passphrase": REDACTED,
        "token": None, "max_tokens": 5, "tokenizer": "bpe", "prompt_tokens": 7, "secretary": "Ann", "keyboard": "us",
        "headers": [{"name": "Authorization", "value": REDACTED}, {"name": "Accept", "value": "json"}],
        "env": [{"key": "API_TOKEN", "value": REDACTED}],
    }


def test_dict_keys_are_redacted_and_kept_apart() -> None:
    key1, key2 = "sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc", "sk_" + "live_5fD40IrMzkXEbskuU2aeq8ed"
    out = REDACT({key1: 1, key2: 2, "plain": 3})
    assert out == {REDACTED: 1, f"{REDACTED}#2": 2, "plain": 3}


def test_exception_attributes_under_secret_names_are_scrubbed_from_its_message() -> None:
    """An exception's token attribute has no secret shape, yet its message repeating it is redacted."""
    class AuthError(Exception):
        def __init__(self, token: str) -> None:
            super().__init__(f"token {token} was refused (tried {token})")
            self.token = token
            self.user = "ann"

    error = AuthError("plain-value-1")
    assert REDACT.for_error(error).text(str(error)) == "token [REDACTED] was refused (tried [REDACTED])"
    assert REDACT.for_error(ValueError("x")) is REDACT


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: float
    label: str


class Model(BaseModel):
    name: str
    tags: set[str] = set()


@pytest.mark.parametrize("value", [
    None, True, 3, 2.5, math.nan, -math.inf, "text", b"bytes \xff", (1, "a"), {3, 1}, frozenset({"b"}),
    Colour.RED, Point(1.0, "p"), Model(name="m", tags={"x"}), {1: "int key", "k": [1, {"n": None}]}, object,
], ids=repr)
def test_jsonable_converts_like_to_jsonable(value: Any) -> None:
    """One walk converts and redacts; without secrets it gives exactly what to_jsonable gives."""
    assert REDACT.jsonable(value) == to_jsonable(value) or (
        isinstance(value, float) and math.isnan(value) and REDACT.jsonable(value) == "NaN")


def test_jsonable_redacts_inside_every_kind_of_value() -> None:
    key = "ghp_" + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"
    out = REDACT.jsonable({"t": (key,), "s": {key}, "b": key.encode(), "m": Model(name=key), "d": Point(1.0, key),
                           "r": Colour.RED, "o": type("Odd", (), {"__repr__": lambda self: f"<odd {key}>"})()})
    assert key not in json.dumps(out)
    assert out["m"] == {"name": REDACTED, "tags": []} and out["o"] == f"<odd {REDACTED}>"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)


@given(json_values)
def test_redaction_is_idempotent(value: Any) -> None:
    """Redacting what was redacted changes nothing: a replayed or re-imported trace stays the same."""
    once = REDACT(value)
    assert REDACT(once) == once


@given(st.sampled_from([s for s, _ in TRUE_POSITIVES]), st.text(max_size=30), st.text(max_size=30))
def test_a_secret_is_found_whatever_surrounds_it(secret_text: str, before: str, after: str) -> None:
    """A secret is found inside any text, once a separator sets it off from it."""
    _, secret = next(p for p in TRUE_POSITIVES if p[0] == secret_text)
    assert secret not in REDACT.text(f"{before}\n{secret_text}\n{after}")


def test_every_default_pattern_starts_with_a_literal() -> None:
    """So ``re`` looks for the characters that can start a secret rather than trying every position
    of every string (redacting a 200-character message costs a few µs, not ~100)."""
    for pattern in DEFAULT_SECRET_VALUES:
        assert re.match(r"[A-Za-z0-9:-][^?*+{|]", pattern), pattern


def test_added_keys_and_patterns_count_everywhere() -> None:
    """extend(keys=...) covers dict keys and assignments in text; an added pattern with a group
    named secret replaces that group only."""
    redact = Redactor().extend(keys=["ssn"], values=[r"\bemp-(?P<secret>\d{6})\b"])
    assert redact({"customer_ssn": "123-45-6789"}) == {"customer_ssn": REDACTED}
    assert redact.text("ssn: 123-45-6789") == "ssn: [REDACTED]"
    assert redact.text("badge emp-123456 ok") == "badge emp-[REDACTED] ok"
    assert redact.text("sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc") == REDACTED   # the defaults still apply


@pytest.mark.parametrize("pattern", ["(unclosed", r"(?P<other>x)", r"(a)\1", "(?i)abc"])
def test_a_pattern_that_cannot_be_used_is_a_recording_error(pattern: str) -> None:
    with pytest.raises(RecordingError, match="Redactor"):
        Redactor().extend(values=[pattern])


def test_disabled_redaction_records_everything_verbatim(trace_dir: Path) -> None:
    key = "sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc"
    with mattrace.record(f"run {key}", dir=trace_dir, redact=Redactor(enabled=False)) as rec:
        mattrace.message("a", key, attrs={"api_key": key})
    assert key in rec.path.name and rec.trace.name == f"run {key}"
    assert rec.trace.steps[0].content == key and rec.trace.steps[0].attrs == {"api_key": key}


# -- what the trace and the cassette store ------------------------------------------------------


class Refused(Exception):
    """A refusal that carries the credential it refused, in its args and as an attribute."""

    def __init__(self, message: str, token: str) -> None:
        super().__init__(message, token)
        self.token = token


def test_a_run_named_with_a_secret_records_the_redacted_name_and_file_name(trace_dir: Path) -> None:
    key = "AKIAIOSFODNN7EXAMPLE"
    with mattrace.record(f"deploy {key}", dir=trace_dir) as rec:
        pass
    assert rec.name == "deploy [REDACTED]" and mattrace.load(rec.path).name == "deploy [REDACTED]"
    assert rec.path.name.startswith("deploy-REDACTED-")
    assert all(key not in p.name for p in trace_dir.iterdir())


def test_memory_under_a_secret_like_key_is_redacted_in_trace_and_cassette(trace_dir: Path) -> None:
    memory = mattrace.Memory("vault")
    with mattrace.record("memory", dir=trace_dir) as rec:
        memory["svc_api_token"] = "plain-value-1"
        assert memory["svc_api_token"] == "plain-value-1"     # the code under test gets the real value
        memory["city"] = "Lyon"
        assert memory["city"] == "Lyon"
    write, read, city_write, city_read = mattrace.load(rec.path).steps[:4]
    assert write.args == {"key": "svc_api_token", "value": REDACTED} and read.result == REDACTED
    assert city_write.args == {"key": "city", "value": "Lyon"} and city_read.result == "Lyon"
    entries = read_cassette(cassette_path(rec.path)).entries
    assert [e.get("result") for e in entries if e["kind"] == "memory_read"] == [REDACTED, "Lyon"]


def test_the_cassette_redacts_results_bytes_and_errors_and_replay_serves_the_redacted_run(
        trace_dir: Path) -> None:
    """Bytes keep their type and every byte that is not a secret (binary included); an error keeps
    its class with message, args and attributes redacted; replay reproduces the recorded trace."""
    key = "sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc"

    @mattrace.tool
    def download() -> bytes:
        return b"\xff\x00 header " + key.encode() + b" trailer"

    @mattrace.tool
    def unordered() -> dict[str, Any]:
        return {"z": 1, "password": "hunter2", "a": key}     # not in sorted order: stored as items

    @mattrace.tool
    def login() -> None:
        raise Refused("refused plain-token-7", "plain-token-7")

    def run() -> tuple[bytes, dict[str, Any], BaseException]:
        blob, data = download(), unordered()
        with pytest.raises(Exception) as caught:
            login()
        return blob, data, caught.value

    tape = trace_dir / "run.cassette"
    with mattrace.record("refusal", dir=trace_dir, cassette=tape) as live:
        assert run()[0].startswith(b"\xff\x00")
    text = tape.read_text()
    assert key not in text and "hunter2" not in text and "plain-token-7" not in text
    for entry in read_cassette(tape).entries:
        if entry.get("result", {}).get("$mt") == "bytes":
            assert key.encode() not in base64.b64decode(entry["result"]["b64"])
    with mattrace.record("refusal", dir=trace_dir, cassette=tape, record_mode="none") as again:
        blob, data, error = run()
    assert blob == b"\xff\x00 header [REDACTED] trailer"
    assert data == {"z": 1, "password": REDACTED, "a": REDACTED} and list(data) == ["z", "password", "a"]
    assert isinstance(error, Refused) and error.token == REDACTED and error.args == ("refused [REDACTED]", REDACTED)
    assert "plain-token-7" not in str(error)
    assert again.trace.fingerprint() == live.trace.fingerprint()


# -- the prefilter: a secret is never missed by the quick scan ------------------------------

_KEY_FORMS = [k for key in DEFAULT_SECRET_KEYS for k in (key, key.upper(), key.title().replace("_", ""))]
_ODD_CASES = {"s": "\u017f", "k": "\u212a", "i": "\u0131"}   # what re.IGNORECASE also matches


def _odd_case(text: str) -> str:
    return "".join(_ODD_CASES.get(ch, ch) for ch in text)


@pytest.mark.parametrize("text", [t for t, _ in TRUE_POSITIVES]
                         + [f"{k}={'x' * 12}" for k in _KEY_FORMS]
                         + [f"a{_odd_case('pi_key')}: s3cr3tvalue99", f"{_odd_case('Bearer')} abcdefgh1234567",
                            "\ttoken=hunter22", "x\npassword: hunter22", "\u0007secret=hunter22"])
def test_the_prefilter_flags_every_secret_and_its_json(text: str) -> None:
    """Whatever the full patterns replace, the one-scan prefilter flags, in the text and in
    the JSON line holding it (so a step with no flag really has nothing to redact)."""
    assert REDACT.may_hold_secret(text)
    assert REDACT.may_hold_secret(json.dumps({"content": text}, ensure_ascii=False).encode())


@given(st.sampled_from([s for s, _ in TRUE_POSITIVES] + [f"{k}: hunter22" for k in _KEY_FORMS]),
       st.text(max_size=30), st.text(max_size=30))
def test_whatever_the_full_patterns_change_the_prefilter_flags(secret_text: str, before: str, after: str) -> None:
    text = before + secret_text + after
    if REDACT.text(text) != text:
        assert REDACT.may_hold_secret(text)
        assert REDACT.may_hold_secret(json.dumps([before, text], ensure_ascii=False).encode("utf-8", "surrogatepass"))


@given(st.dictionaries(st.sampled_from([*_KEY_FORMS, "apiKey", "clientSecret", "X-Api-Key", "name"]),
                       st.text(min_size=4, max_size=10), min_size=1))
def test_a_secret_key_in_a_dict_is_flagged(value: dict[str, str]) -> None:
    if REDACT(value) != value:
        assert REDACT.may_hold_secret(json.dumps(value).encode())


def test_the_prefilter_passes_ordinary_text_and_defers_to_added_patterns() -> None:
    prose = "turn 4: refund order policy customer shipping invoice warehouse delivery account " * 3
    assert not REDACT.may_hold_secret(prose)
    assert not REDACT.may_hold_secret(json.dumps({"usage": {"input_tokens": 3, "max_tokens": 9}}))
    assert REDACT.extend(values=[r"\bINTERNAL-\d+"]).may_hold_secret(prose)   # no superset known: always look
    assert not Redactor(enabled=False).may_hold_secret("api_key=abc")
