"""API keys and tenants, as values and pure functions (the store keeps them, the API checks).

A key reads `ap_<key_id>_<secret>`: `key_id` (12 hex digits) is public — it names the key in
`agentprod keys list|revoke` and in logs — and `secret` (32 random bytes, URL-safe base64) is
shown once, at creation. Only the SHA-256 of the whole key is stored: the key is random, so a
fast hash is as strong as a slow one, and a lookup is one read by `key_id` plus a constant-time
digest comparison.

Each key is bound to one tenant and carries that tenant's limits: requests per window per key
(`rate`, in the `limits` library's notation, e.g. `600/minute`) and the number of unfinished
tasks the tenant may have (`max_queued`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import re
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import limits

KEY_PREFIX = "ap"
KEY_ID_HEX = 12
SECRET_BYTES = 32
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
#: The tenant of every caller when authentication is off (`API_AUTH=off`, `agentprod dev`).
OPEN_TENANT = "public"

_KEY = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{{KEY_ID_HEX}}})_([A-Za-z0-9_-]{{20,100}})$")
_TENANT = re.compile(TENANT_PATTERN)


class InvalidLimit(ValueError):
    """A rate that the `limits` notation cannot read, or a negative task cap."""


@dataclasses.dataclass(frozen=True)
class NewKey:
    """A key just made: `plaintext` goes to its owner once, the rest to the store."""

    plaintext: str
    key_id: str
    digest: str


@dataclasses.dataclass(frozen=True)
class ApiKey:
    """A stored key: who it belongs to and what it may do (never the key itself)."""

    key_id: str
    tenant: str
    name: str
    digest: str
    created_at: float
    rate: str  # e.g. "600/minute"
    max_queued: int
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_key() -> NewKey:
    key_id = secrets.token_hex(KEY_ID_HEX // 2)
    plaintext = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return NewKey(plaintext=plaintext, key_id=key_id, digest=digest_of(plaintext))


def digest_of(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def key_id_of(plaintext: str) -> str | None:
    """The key's public id, or None when the text is not shaped like one of our keys."""
    match = _KEY.match(plaintext)
    return match.group(1) if match else None


def matches(stored: ApiKey, plaintext: str) -> bool:
    """True when `plaintext` is the active key `stored` was made from (constant time)."""
    return stored.active and hmac.compare_digest(stored.digest, digest_of(plaintext))


def valid_tenant(name: str) -> bool:
    return bool(_TENANT.match(name))


def parse_rate(text: str) -> limits.RateLimitItem:
    """`600/minute`, `10/second`, `1000 per hour` → the limiter's item; InvalidLimit otherwise."""
    import limits  # loaded where a rate is read (the API, `agentprod keys`), not in the worker

    try:
        return limits.parse(text)
    except ValueError as error:
        raise InvalidLimit(f"{text!r} is not a rate like '600/minute': {error}") from None


@dataclasses.dataclass(frozen=True)
class Window:
    """Where a caller stands in its rate window after this request."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the window has room again


def rate_headers(window: Window, *, now: float) -> dict[str, str]:
    """The IETF `RateLimit-*` fields (reset in seconds) and the common `X-RateLimit-*` ones
    (reset as epoch seconds), plus `Retry-After` when the request was refused."""
    reset_in = max(0, math.ceil(window.reset_at - now))
    headers = {
        "RateLimit-Limit": str(window.limit),
        "RateLimit-Remaining": str(max(0, window.remaining)),
        "RateLimit-Reset": str(reset_in),
        "X-RateLimit-Limit": str(window.limit),
        "X-RateLimit-Remaining": str(max(0, window.remaining)),
        "X-RateLimit-Reset": str(math.ceil(window.reset_at)),
    }
    if not window.allowed:
        headers["Retry-After"] = str(max(1, reset_in))
    return headers
