"""Redaction of secrets from everything a step records, on by default.

Trace files get committed, attached to CI runs and shared in bug reports, so an API key
passed through a tool argument, returned by a tool or pasted into a message must never
reach one. Secret *keys* are redacted in args, attrs and results; secret-shaped *values*
(bearer tokens, provider keys) wherever they occur, message text included. Redaction
happens before a step is written; what is redacted is replaced by a marker, never
silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_SECRET_KEYS",
    "DEFAULT_SECRET_VALUES",
    "REDACTED",
    "Redactor",
]

REDACTED = "[REDACTED]"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# names of keys whose values are secrets: a key matches when it is the name or ends with
# it after a separator (``client_secret``, ``X-Api-Key``), case-insensitively; so
# ``access_token`` is redacted while ``max_tokens`` and ``prompt_tokens`` are kept.
DEFAULT_SECRET_KEYS: tuple[str, ...] = (
    "api_key", "apikey", "api-key", "secret", "password", "passwd", "pwd", "token",
    "authorization", "cookie", "set-cookie", "credential", "credentials", "private_key",
)
# values that are secrets wherever they appear (bearer tokens, common key shapes)
DEFAULT_SECRET_VALUES: tuple[str, ...] = (
    r"(?i:\bbearer)\s+[A-Za-z0-9._~+/=-]{8,}",
    r"\bsk-[A-Za-z0-9_-]{16,}",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"\bxox[abpr]-[A-Za-z0-9-]{10,}",
)


@dataclass(frozen=True)
class Redactor:
    """Replaces secret-looking keys and values with ``[REDACTED]``.

    Args:
        keys: names of dict keys whose values are secrets (see DEFAULT_SECRET_KEYS).
        values: regexes of secret values, replaced wherever they occur inside strings.
        enabled: False records everything verbatim (for local debugging only).
    """

    keys: tuple[str, ...] = DEFAULT_SECRET_KEYS
    values: tuple[str, ...] = DEFAULT_SECRET_VALUES
    enabled: bool = True
    _key_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _value_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = "|".join(re.escape(k) for k in self.keys) or r"(?!x)x"
        key_re = re.compile(rf"(?:^|[_\-. ])(?:{names})$", re.IGNORECASE)
        object.__setattr__(self, "_key_re", key_re)
        value_re = "|".join(f"(?:{v})" for v in self.values)
        object.__setattr__(self, "_value_re", re.compile(value_re) if value_re else None)

    def extend(self, keys: Iterable[str] = (), values: Iterable[str] = ()) -> Redactor:
        """A redactor with more secret keys/values on top of these."""
        return Redactor(self.keys + tuple(keys), self.values + tuple(values), self.enabled)

    def __call__(self, value: Any) -> Any:
        """A copy of ``value`` with secrets replaced; the input is not modified."""
        if not self.enabled:
            return value
        return self._walk(value)

    def _secret_key(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        # camelCase keys (accessToken, clientSecret) match like their snake_case forms
        return bool(self._key_re.search(_CAMEL.sub("_", key)))

    def _walk(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (REDACTED if v is not None and self._secret_key(k) else self._walk(v))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, str) and self._value_re is not None:
            return self._value_re.sub(REDACTED, value)
        return value
