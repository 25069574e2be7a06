"""Text as the analysis sees it: leaves with a region, identifier tokens, and spans.

Three ways a value is recognised in an earlier output, from the strongest evidence down:

* **whole**: the value (normalised) is an entire leaf of the output;
* **span**: a run of at least :data:`SPAN` characters of the value, starting at a word,
  occurs in the output (a sentence copied into an e-mail body);
* **identifier**: a token that names something (e-mail address, URL, domain, IBAN or
  account number, phone number, id, amount, file path) occurs in the output after
  normalisation, even inside a long text (an IBAN copied out of a web page).

An output is split into *leaves*: the strings of a JSON or Python-literal value, or the
lines of plain text (``key: value`` lines give their value). A leaf is a **field** when it
is short (a record's value: an id, a sender, a price) and **text** when it is prose,
where instructions can hide. The distinction matters for trust: a tool's output may be
untrusted as a whole (a product listing with reviews), but the agent acting on a listed
product id is what the user asked for, while acting on an address that appears only in
a review's prose is following someone else's instructions.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "FIELD_MAX",
    "WEAK",
    "identifiers",
    "Leaf",
    "leaves",
    "name_parts",
    "names",
    "normalise",
    "Region",
    "SPAN",
    "span_starts",
]

SPAN = 24
"""Characters of a copied span (after normalisation): long enough that a match is a copy."""
FIELD_MAX = 64
"""Leaves up to this many characters are fields; longer ones are text."""

Region = Literal["field", "text"]

_SPACE = re.compile(r"\s+")
_QUOTES = str.maketrans({c: " " for c in "'\"`\\"})


def normalise(text: str) -> str:
    """Lower case, quotes and backslashes dropped, runs of white space as one space: the form
    copies survive (tools re-serialise text as JSON, YAML or Python reprs)."""
    return _SPACE.sub(" ", text.translate(_QUOTES).lower()).strip()


@dataclass(frozen=True)
class Leaf:
    """One string of an output and where it sits."""

    text: str
    region: Region
    path: str


def _value_leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield path, str(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _value_leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple | set):
        for i, item in enumerate(value):
            yield from _value_leaves(item, f"{path}[{i}]")


_KEY_LINE = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][\w .-]{0,40}):\s+(.*)$")


_OPEN = re.compile(r"[\[{(]")


def _parsed(text: str) -> Any:
    stripped = text.strip()
    start = _OPEN.search(stripped[:8])   # a literal a defence wrapped in markers: <<{...}>>
    if start is None:
        return None
    stripped = stripped[start.start():]
    end = max(stripped.rfind(c) for c in "]})")
    stripped = stripped[:end + 1]
    if not stripped:
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    if len(stripped) > 200_000:
        return None
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


PROSE_WORDS = 5
"""A value of this many words is a sentence (text), however short: ``Email the notes to x``."""


def _prose(text: str) -> bool:
    return len(text.split()) >= PROSE_WORDS


def leaves(value: Any, path: str = "") -> Iterator[Leaf]:
    """The leaves of an output or input value, each a field or text.

    A string holding JSON or a Python literal is split into its own leaves. A structured
    leaf is a field when short and not a sentence (fewer than :data:`PROSE_WORDS` words).
    Plain text is split into lines: the value of a ``key: value`` line (YAML, ``Name: Bob``)
    is a field on the same terms; any other line is text, however short (a sentence of
    prose is where an instruction hides).
    """
    if isinstance(value, str) and len(value) <= FIELD_MAX and "\n" not in value:   # a short output: itself
        yield Leaf(value, "text" if _prose(value) else "field", path)
        return
    for where, raw in _value_leaves(value, path):
        parsed = _parsed(raw) if isinstance(raw, str) and len(raw) > FIELD_MAX else None
        if parsed is not None and not isinstance(parsed, str):
            yield from leaves(parsed, where)
            continue
        if len(raw) <= FIELD_MAX and "\n" not in raw:
            yield Leaf(raw, "text" if _prose(raw) else "field", where)
            continue
        for line in raw.splitlines():
            match = _KEY_LINE.match(line)
            part = (match.group(2) if match else line).strip().strip("'\"")
            if not part:
                continue
            key = match.group(1).strip() if match else ""
            literal = _parsed(part) if part[:1] in "[{" else None
            if isinstance(literal, list | dict):   # a line that is a record: ['ssh-rsa AAA...']
                yield from leaves(literal, f"{where}.{key}" if where and key else (key or where))
                continue
            region: Region = "field" if match and len(part) <= FIELD_MAX and not _prose(part) else "text"
            yield Leaf(part, region, f"{where}.{key}" if where and key else (key or where))


# -- identifiers ----------------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"(?:https?://|www\.)[^\s'\"<>()\[\]{},]+", re.IGNORECASE)
_DOMAIN = re.compile(r"\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|dev|ai|co|uk|de|fr|ch|info|biz|app|xyz|ru|cn|us|eu)\b",
                     re.IGNORECASE)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]){10,30}\b")
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d ().-]{6,}\d(?![\w-])")
_PATH = re.compile(r"(?:[\w.-]*/)+[\w.-]+\.\w{1,5}\b|/(?:[\w.-]+/)+[\w.-]*")
_SLUG = re.compile(r"(?<![\w/.:@-])[A-Za-z][\w.-]*/[\w.-]*[A-Za-z0-9](?![\w/@])")
_ID = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[a-z])[a-z0-9]+(?:[_-][a-z0-9]+)*\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w])")
_MIN_NUMBER_DIGITS = 3
_YEAR = re.compile(r"(?:19|20)\d\d")
_DIGIT = re.compile(r"\d")
_WWW = re.compile(r"www\.", re.IGNORECASE)


WEAK = ("domain:", "site:", "number:")
"""Token kinds that are parts of stronger ones (a domain of an address, digits of an IBAN):
they speak for a value only when it holds no stronger identifier."""


def identifiers(text: str) -> set[str]:
    """The identifier tokens of ``text``, normalised (``kind:value``).

    E-mail addresses, URLs (without scheme and trailing slash) and their domains (a domain
    named as a web site, in a URL or on its own, is also a ``site:``), IBANs
    and account numbers (without spaces), phone numbers (digits only), file paths and
    ``owner/name`` slugs, ids
    (letters and digits together: ``attacker-account-9981``, ``P123``) and numbers of three
    or more digits (amounts, order numbers).
    """
    found: set[str] = set()
    # each pattern is tried only where what it cannot match without is present (an address
    # needs "@", a URL "://" or "www.", a domain ".", a path "/", an IBAN a capital, the rest
    # a digit):
    # most text is words, and is done with in a few substring tests
    dotted = "." in text
    if "@" in text:
        for m in _EMAIL.finditer(text):
            email = m.group().lower().strip(".")
            found.add(f"email:{email}")
            found.add(f"domain:{email.rsplit('@', 1)[1]}")
    if "://" in text or (dotted and _WWW.search(text) is not None):
        for m in _URL.finditer(text):
            url = re.sub(r"^(?:https?://)?(?:www\.)?", "", m.group().lower()).rstrip("/.")
            if url:
                found.add(f"url:{url}")
                found.add(f"domain:{url.split('/', 1)[0]}")
                found.add(f"site:{url.split('/', 1)[0]}")
    if dotted:
        for m in _DOMAIN.finditer(text):
            start = m.start()
            if start and text[start - 1] == "@":
                continue
            host = m.group().lower().removeprefix("www.")
            found.add(f"domain:{host}")
            found.add(f"site:{host}")
    digits_in = _DIGIT.search(text) is not None
    if digits_in:
        if not text.islower():   # an IBAN starts with two capitals
            for m in _IBAN.finditer(text):
                account = _SPACE.sub("", m.group()).upper()
                found.add(f"account:{account}")
        for m in _PHONE.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if len(digits) >= 7:
                found.add(f"phone:{digits}")
    if "/" in text:
        for m in _PATH.finditer(text):
            if "://" not in text[max(0, m.start() - 3):m.start() + 3]:
                found.add(f"path:{m.group().lower()}")
        for m in _SLUG.finditer(text):   # owner/repo, team/channel
            found.add(f"path:{m.group().lower()}")
    if digits_in:
        for m in _ID.finditer(text):
            token = m.group().lower()
            if len(token) >= 3 and not token.isdigit():
                found.add(f"id:{token}")
        for m in _NUMBER.finditer(text):
            digits = m.group().replace(",", "")
            whole = digits.split(".", 1)[0]
            if len(whole.lstrip("0")) >= _MIN_NUMBER_DIGITS and not _YEAR.fullmatch(whole):
                found.add(f"number:{float(digits):g}" if "." in digits else f"number:{int(whole)}")
    return found


def span_starts(norm: str) -> Iterator[int]:
    """Where spans begin in normalised text: at the start of each word."""
    if len(norm) < SPAN:
        return
    yield 0
    for m in re.finditer(r" (?=\S)", norm):
        start = m.end()
        if start + SPAN > len(norm):
            return
        yield start


# -- names ----------------------------------------------------------------------------------

_NAME_RUN = re.compile(r"\b[A-Z][a-z]{2,}(?:[ ]+[A-Z][a-z]{2,})*\b")
_NAMED_KINDS = ("email:", "url:", "path:")


def names(text: str) -> set[str]:
    """The proper names a message says, lower case: each capitalised word of three or more
    letters, and each two such words in a row run together (``Emma Johnson`` gives ``emma``,
    ``johnson`` and ``emmajohnson``, the forms user names and addresses take)."""
    found: set[str] = set()
    for run in _NAME_RUN.finditer(text):
        words = run.group().lower().split()
        found.update(words)
        found.update(a + b for a, b in itertools.pairwise(words))
    return found


def name_parts(token: str) -> list[str]:
    """The words of an identifier that can name a person or an account: an e-mail address's
    local part (``bob.olive``), a URL's path (``shared/lily_white/doc``, not its host) and a
    path's or slug's segments (``emmajohnson/new_project``), split at punctuation, three
    letters or more."""
    if not token.startswith(_NAMED_KINDS):
        return []
    kind, body = token.split(":", 1)
    if kind == "email":
        body = body.split("@", 1)[0]
    elif kind == "url":
        body = body.split("/", 1)[1] if "/" in body else ""
    return [part for part in re.split(r"[^a-z0-9]+", body) if len(part) >= 3]
