"""What a secret looks like: the key names and value patterns redaction looks for, the
checks that keep look-alikes, and the linear RE2 prefilter that says when text holds none.

Kept apart from :mod:`mattrace.recording.redact` (which applies them to every recorded
value) so the list can be read, reviewed and extended in one place. The value patterns
follow the formats secret scanners (detect-secrets' plugins) recognise.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import re2  # type: ignore[import-untyped]   # google-re2 ships no type information

__all__ = ["CHECKS", "DEFAULT_SECRET_KEYS", "DEFAULT_SECRET_VALUES", "assignments", "prefilter"]

# names of keys whose values are secrets: a key matches when it is the name or ends with
# it after a separator (``client_secret``, ``X-Api-Key``), case-insensitively, camelCase
# included (``accessToken``); so ``access_token`` is redacted while ``max_tokens`` and
# ``prompt_tokens`` are kept. The same names make ``name=value`` and ``name: value`` in text
# secret assignments.
DEFAULT_SECRET_KEYS: tuple[str, ...] = (
    "api_key", "apikey", "api-key", "secret", "password", "passwd", "pwd", "passphrase", "token",
    "authorization", "cookie", "set-cookie", "credential", "credentials", "private_key",
    "access_key", "secret_key", "account_key",
)

# values that are secrets wherever they appear. A pattern with a group named ``secret`` has
# only that group replaced (the password of a URL, not its host). Each starts with a literal
# character, its word boundary checked just after it (``g(?<!\wg)``), so that ``re`` scans a
# string for the few characters that can start a secret instead of trying every position:
# this keeps redaction of ordinary text at a few µs.
_PEM = (r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----(?:(?!-----END)[\s\S])*"
        r"(?:-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----)?")
_PUTTY = r"PuTTY-User-Key-File-\d+:(?:(?!Private-MAC:)[\s\S])*(?:Private-MAC:[ \t]*[0-9a-fA-F]*)?"
_JWT = r"e(?<!\we)yJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,3}"
_URL_PASSWORD = r"://[^\s:/?#@\"'<>\[\]]{0,256}:(?P<secret>[^\s/?#@\"'<>]{1,256})@"
_BEARER = (r"B(?<!\wB)(?i:earer)[ \t]+[A-Za-z0-9._~+/=-]{8,}", r"b(?<!\wb)(?i:earer)[ \t]+[A-Za-z0-9._~+/=-]{8,}")
_BASIC = (r"B(?<!\wB)(?i:asic)[ \t]+[A-Za-z0-9+/]{6,}={0,2}(?![A-Za-z0-9+/=])",
          r"b(?<!\wb)(?i:asic)[ \t]+[A-Za-z0-9+/]{6,}={0,2}(?![A-Za-z0-9+/=])")
_AWS_KEY_ID = r"A(?:3T[A-Z0-9]|KIA|SIA|BIA|CCA)(?<!\w.{4})[A-Z0-9]{16}\b"
_GITHUB = r"g(?<!\wg)(?:h[pousr]_[A-Za-z0-9]{20,}|ithub_pat_[A-Za-z0-9_]{22,})"
_GITLAB = r"g(?<!\wg)lpat-[A-Za-z0-9_-]{20,}"
_SLACK = r"x(?<!\wx)(?:ox[abposr]-[A-Za-z0-9-]{10,}|app-\d-[A-Za-z0-9-]{10,})"
_SLACK_WEBHOOK = r"https://hooks\.slack\.com/services/[A-Za-z0-9_/]{20,}"
_STRIPE = (r"s(?<!\ws)k_(?:live|test)_[A-Za-z0-9]{20,}", r"r(?<!\wr)k_(?:live|test)_[A-Za-z0-9]{20,}",
           r"w(?<!\ww)hsec_[A-Za-z0-9]{24,}")
_GOOGLE = (r"A(?<!\wA)Iza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])", r"G(?<!\wG)OCSPX-[A-Za-z0-9_-]{20,}")
_OPENAI_ANTHROPIC = r"s(?<!\ws)k-[A-Za-z0-9_-]{20,}"
_HUGGINGFACE = r"h(?<!\wh)f_[A-Za-z0-9]{30,}\b"
_NPM = r"n(?<!\wn)pm_[A-Za-z0-9]{36}\b"
_PYPI = r"p(?<!\wp)ypi-AgE[A-Za-z0-9_-]{50,}"
_SENDGRID = r"S(?<!\wS)G\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"

DEFAULT_SECRET_VALUES: tuple[str, ...] = (
    _PEM, _PUTTY, _JWT, _URL_PASSWORD, *_BEARER, *_BASIC, _AWS_KEY_ID, _GITHUB, _GITLAB, _SLACK,
    _SLACK_WEBHOOK, *_STRIPE, *_GOOGLE, _OPENAI_ANTHROPIC, _HUGGINGFACE, _NPM, _PYPI, _SENDGRID,
)


# A superset of the default value patterns, for RE2 (no look-arounds): a string none of these
# match holds no default secret, so the common case (no secret anywhere in a step) costs one
# linear scan of the step's encoded line instead of a regex walk over each of its strings.
# Matched over JSON text too, so no part relies on a character JSON escapes.
_PREFILTER_VALUES: dict[str, str] = {
    _PEM: "-----BEGIN", _PUTTY: "PuTTY-User-Key-File-", _JWT: "eyJ",
    _URL_PASSWORD: r"://[^\s/?#@]*:[^\s/?#@]+@",
    **dict.fromkeys(_BEARER, "[Bb]{earer}" + r"(?:[ ]|\\t)+[A-Za-z0-9._~+/=-]{8}"),
    **dict.fromkeys(_BASIC, "[Bb]{asic}" + r"(?:[ ]|\\t)+[A-Za-z0-9+/]{6}"),
    _AWS_KEY_ID: "A(?:3T|KIA|SIA|BIA|CCA)", _GITHUB: "gh[pousr]_|github_pat_", _GITLAB: "glpat-",
    _SLACK: "xox[abposr]-|xapp-", _SLACK_WEBHOOK: r"hooks\.slack\.com",
    **dict.fromkeys(_STRIPE, "[sr]k_(?:live|test)_|whsec_"), **dict.fromkeys(_GOOGLE, "AIza|GOCSPX-"),
    _OPENAI_ANTHROPIC: "sk-", _HUGGINGFACE: "hf_", _NPM: "npm_", _PYPI: "pypi-AgE", _SENDGRID: r"SG\.",
}
# the characters Python's re.IGNORECASE takes for an ASCII letter besides its two cases
_FOLDS = {"i": "\u0131\u0130", "k": "\u212a", "s": "\u017f"}


def _caseless(word: str) -> str:
    """``word`` as an RE2 pattern matching what ``re.IGNORECASE`` matches, plus a ``_`` that
    may be missing (camelCase ``apiKey`` is the key ``api_key``)."""
    parts = []
    for ch in word:
        if ch.isascii() and ch.isalpha():
            parts.append(f"[{ch.lower()}{ch.upper()}{_FOLDS.get(ch.lower(), '')}]")
        elif ch == "_":
            parts.append("_?")
        else:
            parts.append(re.escape(ch))
    return "".join(parts)


# what may stand before a secret key name: nothing, a non-alphanumeric character, or a JSON
# escape (``\t`` ends in a letter but stands for a tab); after it: no letter, digit or ``_``
_NAME_START = r"(?:^|[^A-Za-z0-9]|\\[nrtbf]|\\u[0-9a-fA-F]{4})"
_NAME_END = r"(?:[^A-Za-z0-9_]|$)"


def _key_name(key: str) -> str:
    """Where a secret key name can count: as a key (``client_secret``, ``X-Api-Key``,
    camelCase ``accessToken``) or in an assignment (``token = ...``), never inside a longer
    word (``max_tokens``, ``tokenizer``), which is what keeps usage fields off the slow path."""
    rest = _caseless(key[1:])
    start = f"{_NAME_START}{_caseless(key[0])}{rest}"
    camel = f"{key[0].upper()}{rest}" if key[0].isascii() and key[0].isalpha() else None
    return f"(?:{start}|{camel}){_NAME_END}" if camel else f"{start}{_NAME_END}"


def prefilter(values: Iterable[str], keys: Iterable[str]) -> Callable[[bytes], Any] | None:
    """A function of UTF-8 bytes, truthy when they hold anything a secret key or default value
    pattern could match (one linear RE2 scan), or None when a pattern has no known superset
    (then every string is searched)."""
    parts = []
    for pattern in values:
        superset = _PREFILTER_VALUES.get(pattern)
        if superset is None:
            return None
        parts.append(re.sub(r"\{([a-z]+)\}", lambda m: _caseless(m.group(1)), superset))
    parts += [_key_name(key) for key in keys if key]
    # a one-pattern RE2 Set: it only answers "any match?", about a microsecond cheaper per call
    # than search(), which also works out where
    found = re2.Set.SearchSet()
    found.Add("|".join(f"(?:{p})" for p in parts) if parts else r"\b\B")
    found.Compile()
    # the compiled set's own Match takes bytes as they are; the wrapper's adds a call and a
    # type test to every step recorded (a wrapper without one is used as it is)
    compiled = getattr(found, "_set", None)
    match: Callable[[bytes], Any] = getattr(compiled, "Match", None) or found.Match
    return match


def _random_like(token: str) -> bool:
    """Whether a token looks generated rather than written: it has a digit, or mixes cases
    over a length no word has (``Bearer authentication`` and ``sk-learn-models`` are prose)."""
    if any(c.isdigit() for c in token):
        return True
    return len(token) >= 20 and any(c.islower() for c in token) and any(c.isupper() for c in token)


def _b64_decode(text: str, alphabet: bytes = b"+/") -> bytes | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        return None


def _is_jwt(token: str) -> bool:
    """A JWT's header decodes to a JSON object (as detect-secrets checks): base64 of other JSON
    that happens to start with ``eyJ`` and has a dot is rare, but a header that is not JSON is
    not a token."""
    raw = _b64_decode(token.split(".", 1)[0], b"-_")
    try:
        return raw is not None and isinstance(json.loads(raw.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError):
        return False


def _is_basic(match: str) -> bool:
    """``Basic <base64 of user:password>``, not the word "basic" before an ordinary word."""
    raw = _b64_decode(match.split()[-1])
    if raw is None:
        return False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return ":" in text and text.isprintable()


def _bearer(match: str) -> bool:
    return _random_like(match.split()[-1])


# the checks a match of a default pattern must pass to count (its false-positive guard)
CHECKS: dict[str, Callable[[str], bool]] = {
    _JWT: _is_jwt,
    **dict.fromkeys(_BASIC, _is_basic),
    **dict.fromkeys(_BEARER, _bearer),
    _OPENAI_ANTHROPIC: lambda m: _random_like(m[3:]),
    _HUGGINGFACE: lambda m: _random_like(m[3:]),
}


def assignments(keys: Iterable[str]) -> tuple[str, ...]:
    """``key = value``, ``key: value``, ``"key": "value"`` and ``key => value`` for each secret
    key name, the name starting a word (``db_password=``, ``accessToken:``) and not going on
    (``max_tokens=`` is not ``token=``); the value is the secret, an auth scheme included.

    One pattern per name and case of its first letter, each starting with that letter (see
    the value patterns): a lower-case start follows no letter or digit, an upper-case one no
    upper-case letter (the camelCase ``accessToken``).
    """
    value = (r"(?:\\?[\"'])?[ \t]*(?::=|=>|[:=])[ \t]*(?!-----BEGIN)"
             r"(?P<secret>(?:(?i:bearer|basic|token|digest)[ \t]+)?"
             r"(?:\\\"[^\"\\\n]+\\\"|\"[^\"\n]+\"|'[^'\n]+'|[^\s\"',;&]+))")
    patterns = []
    for key in sorted(set(keys), key=len, reverse=True):
        if not key:
            continue
        rest = f"(?i:{re.escape(key[1:])})" if len(key) > 1 else ""
        for first in dict.fromkeys((key[0].lower(), key[0].upper())):
            before = "[A-Z]" if first.isupper() else "[A-Za-z0-9]"
            patterns.append(f"{re.escape(first)}(?<!{before}{re.escape(first)}){rest}{value}")
    return tuple(patterns)
