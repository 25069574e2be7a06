"""``identifiers`` tries each pattern only where a character it needs is present: that skips no match.

The reference below runs every pattern on every text, as ``identifiers`` did before it learnt
to skip the patterns a text cannot match (no "@", no digit, no "/" ...).
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mattrace.provenance import _text as t
from mattrace.provenance import identifiers


def _every_pattern(text: str) -> set[str]:
    found: set[str] = set()
    for m in t._EMAIL.finditer(text):
        email = m.group().lower().strip(".")
        found |= {f"email:{email}", f"domain:{email.rsplit('@', 1)[1]}"}
    for m in t._URL.finditer(text):
        url = re.sub(r"^(?:https?://)?(?:www\.)?", "", m.group().lower()).rstrip("/.")
        if url:
            found |= {f"url:{url}", f"domain:{url.split('/', 1)[0]}", f"site:{url.split('/', 1)[0]}"}
    for m in t._DOMAIN.finditer(text):
        if m.start() and text[m.start() - 1] == "@":
            continue
        host = m.group().lower().removeprefix("www.")
        found |= {f"domain:{host}", f"site:{host}"}
    for m in t._IBAN.finditer(text):
        found.add(f"account:{t._SPACE.sub('', m.group()).upper()}")
    for m in t._PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if len(digits) >= 7:
            found.add(f"phone:{digits}")
    for m in t._PATH.finditer(text):
        if "://" not in text[max(0, m.start() - 3):m.start() + 3]:
            found.add(f"path:{m.group().lower()}")
    for m in t._SLUG.finditer(text):
        found.add(f"path:{m.group().lower()}")
    for m in t._ID.finditer(text):
        token = m.group().lower()
        if len(token) >= 3 and not token.isdigit():
            found.add(f"id:{token}")
    for m in t._NUMBER.finditer(text):
        digits = m.group().replace(",", "")
        whole = digits.split(".", 1)[0]
        if len(whole.lstrip("0")) >= t._MIN_NUMBER_DIGITS and not t._YEAR.fullmatch(whole):
            found.add(f"number:{float(digits):g}" if "." in digits else f"number:{int(whole)}")
    return found


_PIECES = ("bob@x.com", "https://evil.io/a/b", "www.Site.org", "WWW.SITE.ORG", "wWw.x.io", "HTTP://X.COM",
           "GB82WEST12345698765432", "gb82 west 1234 5698 7654 32", "+1 (555) 123-4567", "src/main.py",
           "team/chan", "P123", "12,345.67", "2024", "a.b.c", "٣٤٥٦٧٨٩", "Ünïcödé", "x:y", "ok")
_texts = st.lists(st.sampled_from(_PIECES) | st.text(alphabet="aZ09@./:-_ w+,()É٣", max_size=12),
                  max_size=5).map(" ".join)


@settings(max_examples=600, deadline=None)
@given(_texts | st.text(max_size=40))
def test_skipping_patterns_finds_what_running_every_pattern_finds(text: str) -> None:
    assert identifiers(text) == _every_pattern(text)
